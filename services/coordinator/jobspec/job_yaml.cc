#include "services/coordinator/jobspec/job_yaml.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "common/config/yaml.h"
#include "common/status/macros.h"

namespace distill::jobs {
namespace {

// Whether `uri` starts with an RFC 3986 scheme: a letter, then letters, digits, "+", "-" or ".", then
// ":". A relative path whose first segment holds a colon ("a:b/c") reads as one too; job files are
// expected to write such a path as "./a:b/c".
bool HasScheme(std::string_view uri) {
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  if (!absl::ascii_isalpha(static_cast<unsigned char>(uri[0]))) return false;
  for (size_t i = 1; i < colon; ++i) {
    unsigned char c = static_cast<unsigned char>(uri[i]);
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

void Resolve(const std::filesystem::path& base, std::string* uri) {
  if (uri->empty() || HasScheme(*uri)) return;
  std::filesystem::path path(*uri);
  if (path.is_absolute()) return;
  // lexically_normal folds "./" and "../" without touching the file system, which here is the client's
  // and may not hold the files (the coordinator reads them); a directory's trailing "/" is kept.
  *uri = (base / path).lexically_normal().string();
}

}  // namespace

absl::StatusOr<v1::JobSpec> ParseJobSpecYaml(std::string_view text, std::string_view file_name) {
  ASSIGN_OR_RETURN(config::Document doc, config::Document::Parse(text, file_name));
  v1::JobSpec spec;
  config::ReadProto(doc.Root(), &spec);
  RETURN_IF_ERROR(doc.Finish());
  return spec;
}

absl::StatusOr<v1::JobSpec> LoadJobSpecFile(const std::string& path) {
  ASSIGN_OR_RETURN(config::Document doc, config::Document::LoadFile(path));
  v1::JobSpec spec;
  config::ReadProto(doc.Root(), &spec);
  RETURN_IF_ERROR(doc.Finish());
  ResolveJobPaths(&spec, std::filesystem::path(path).parent_path().string());
  return spec;
}

void ResolveJobPaths(v1::JobSpec* spec, const std::string& base_dir) {
  std::error_code error;
  std::filesystem::path base = std::filesystem::absolute(base_dir.empty() ? "." : base_dir, error);
  // absolute() fails only when the working directory cannot be read; the relative base still beats
  // leaving paths relative to nothing.
  if (error) base = base_dir;
  // Fields are only touched where set, so that resolving adds no empty submessages to the spec.
  if (spec->has_dataset()) {
    v1::DatasetSource* dataset = spec->mutable_dataset();
    Resolve(base, dataset->mutable_uri());
    if (dataset->split().has_given()) {
      Resolve(base, dataset->mutable_split()->mutable_given()->mutable_test_uri());
    }
  }
  if (spec->has_student()) {
    v1::StudentInit* student = spec->mutable_student();
    if (student->has_checkpoint()) Resolve(base, student->mutable_checkpoint()->mutable_uri());
    if (student->has_tokenizer()) Resolve(base, student->mutable_tokenizer()->mutable_uri());
  }
}

}  // namespace distill::jobs
