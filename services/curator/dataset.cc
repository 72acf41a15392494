#include "services/curator/dataset.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "common/dataset/example_json.h"
#include "common/hash/sha256.h"
#include "common/strings/strings.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "services/curator/curation.h"

namespace distill::curator {
namespace {

using nlohmann::json;

// Writes a file and hashes what it wrote.
class HashingWriter {
 public:
  absl::Status Open(const std::string& path) {
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) return absl::FailedPreconditionError(strings::Cat("cannot write \"", path, "\""));
    return absl::OkStatus();
  }
  void Line(std::string_view text) {
    out_.write(text.data(), static_cast<std::streamsize>(text.size()));
    out_.put('\n');
    hash_.Update(text);
    hash_.Update("\n");
    bytes_ += static_cast<int64_t>(text.size()) + 1;
  }
  absl::Status Close(const std::string& path) {
    out_.close();
    if (!out_) return absl::FailedPreconditionError(strings::Cat("error writing \"", path, "\""));
    return absl::OkStatus();
  }
  std::string Hash() { return strings::Cat("sha256:", hash_.HexDigest()); }
  int64_t bytes() const { return bytes_; }

 private:
  std::ofstream out_;
  hash::Sha256 hash_;
  int64_t bytes_ = 0;
};

std::string_view FormatName(v1::OutputFormat f) {
  switch (f) {
    case v1::OUTPUT_FORMAT_STEP_BY_STEP:
      return "step_by_step";
    case v1::OUTPUT_FORMAT_COT_SEQUENCE:
      return "cot_sequence";
    case v1::OUTPUT_FORMAT_LABEL_ONLY:
      return "label_only";
    default:
      return "unspecified";
  }
}

}  // namespace

absl::StatusOr<v1::CurationInput> ParseInputLine(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("malformed JSON");
  v1::CurationInput in;
  if (j.is_object() && j.contains("example")) {
    // The CurationInput message itself (what the coordinator writes): {"example": {...}, "samples": [...]}.
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (!j["example"].is_object() ||
        !google::protobuf::util::JsonStringToMessage(std::string(line), &in, options).ok()) {
      return absl::InvalidArgumentError("not a CurationInput object (example: {...}, samples: [...])");
    }
    if (in.example().id().empty()) return absl::InvalidArgumentError("example.id: is required");
    return in;
  }
  absl::StatusOr<v1::Example> example = dataset::ExampleFromJson(j, "");
  if (!example.ok()) return example.status();
  v1::Example* ex = in.mutable_example();
  *ex = std::move(*example);
  if (j.contains("samples") && j["samples"].is_array() && !j["samples"].empty()) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    for (const json& s : j["samples"]) {
      v1::TeacherSample* sample = in.add_samples();
      if (!google::protobuf::util::JsonStringToMessage(s.dump(), sample, options).ok()) {
        return absl::InvalidArgumentError("samples: each must be a TeacherSample object");
      }
      sample->set_example_id(ex->id());
    }
  } else {
    if (!j.contains("completions") || !j["completions"].is_array()) {
      return absl::InvalidArgumentError("completions: expected a list of strings");
    }
    int index = 0;
    for (const json& c : j["completions"]) {
      if (!c.is_string()) return absl::InvalidArgumentError("completions: expected a list of strings");
      v1::TeacherSample* sample = in.add_samples();
      sample->set_example_id(ex->id());
      sample->set_sample_index(index++);
      sample->set_completion(c.get<std::string>());
    }
  }
  return in;
}

absl::StatusOr<CurateFileResult> CurateFile(const CurateFileOptions& options) {
  std::ifstream input(options.input_path, std::ios::binary);
  if (!input) return absl::NotFoundError(strings::Cat("cannot read \"", options.input_path, "\""));
  std::error_code ec;
  std::filesystem::create_directories(options.output_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        strings::Cat("cannot create directory \"", options.output_dir, "\": ", ec.message()));
  }
  const std::filesystem::path dir(options.output_dir);
  CurateFileResult result;
  result.records_path = (dir / "records.jsonl").string();
  HashingWriter records;
  if (absl::Status s = records.Open(result.records_path); !s.ok()) return s;
  std::string failures_path = options.failures_path;
  if (failures_path.empty() && options.config.options().include_drops())
    failures_path = (dir / "failures.jsonl").string();
  std::ofstream failures;
  if (!failures_path.empty()) {
    failures.open(failures_path, std::ios::trunc);
    if (!failures) return absl::FailedPreconditionError(strings::Cat("cannot write \"", failures_path, "\""));
  }
  // Failures are wanted in the file whenever a failures path is given.
  v1::CurateConfig config = options.config;
  if (!failures_path.empty()) config.mutable_options()->set_include_drops(true);

  absl::StatusOr<std::unique_ptr<Curation>> curation = Curation::Create(config, [&](v1::CurateResponse r) {
    if (r.has_record()) {
      records.Line(dataset::ProtoToJson(r.record()));
    } else if (r.has_dropped() && failures.is_open()) {
      failures << dataset::ProtoToJson(r.dropped()) << "\n";
    }
  });
  if (!curation.ok()) return curation.status();
  std::string line;
  for (int64_t number = 1; std::getline(input, line); ++number) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<v1::CurationInput> in = ParseInputLine(line);
    if (!in.ok()) {
      (*curation)->AddMalformed(strings::Cat("line-", number),
                                strings::Cat(options.input_path, ":", number, ": ", in.status().message()));
      continue;
    }
    (*curation)->Add(*in);
  }
  result.summary = (*curation)->Finish();
  if (absl::Status s = records.Close(result.records_path); !s.ok()) return s;
  result.records_hash = records.Hash();
  result.records_bytes = records.bytes();

  json summary = json::parse(dataset::ProtoToJson(result.summary));
  std::ofstream(dir / "summary.json", std::ios::trunc) << summary.dump(2) << "\n";
  json manifest;
  manifest["kind"] = "distill.curated_dataset";
  manifest["version"] = 1;
  manifest["format"] = FormatName(config.options().format());
  manifest["task"] = json::parse(dataset::ProtoToJson(config.task()));
  manifest["source"] = std::filesystem::path(options.input_path).filename().string();
  manifest["records"] = {{"path", "records.jsonl"},
                         {"count", result.summary.kept()},
                         {"bytes", result.records_bytes},
                         {"content_hash", result.records_hash}};
  manifest["summary"] = summary;
  const std::string manifest_text = manifest.dump(2) + "\n";
  std::ofstream(dir / "manifest.json", std::ios::trunc) << manifest_text;
  result.manifest_hash = strings::Cat("sha256:", hash::Sha256Hex(manifest_text));
  return result;
}

}  // namespace distill::curator
