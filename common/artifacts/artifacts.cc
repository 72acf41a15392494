#include "common/artifacts/artifacts.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/hash/sha256.h"
#include "common/strings/strings.h"

namespace distill::artifacts {

absl::StatusOr<std::string> ResolveUri(const std::string& root, const std::string& uri, std::string_view field) {
  constexpr std::string_view kFile = "file://";
  std::string_view u = uri;
  if (u.substr(0, kArtifactScheme.size()) == kArtifactScheme) {
    std::string_view rel = u.substr(kArtifactScheme.size());
    if (rel.empty() || rel.front() == '/' || rel.find("..") != std::string_view::npos) {
      return absl::InvalidArgumentError(
          strings::Cat(field, ": \"", uri, "\" must be a relative path inside the store"));
    }
    return (std::filesystem::path(root) / std::string(rel)).string();
  }
  if (u.substr(0, kFile.size()) == kFile) u = u.substr(kFile.size());
  if (!u.empty() && u.front() == '/') return std::string(u);
  return absl::InvalidArgumentError(strings::Cat(
      field, ": expected artifact://<path>, file:///<path> or an absolute path, got \"", uri, "\""));
}

absl::StatusOr<std::string> FileContentHash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(strings::Cat("cannot read \"", path, "\""));
  hash::Sha256 h;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) h.Update(std::string_view(buffer, in.gcount()));
  return strings::Cat("sha256:", h.HexDigest());
}

absl::Status VerifyContentHash(const std::string& path, const std::string& expected, std::string_view field) {
  if (expected.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> actual = FileContentHash(path);
  if (!actual.ok()) return absl::NotFoundError(strings::Cat(field, ": ", actual.status().message()));
  if (*actual != expected) {
    return absl::FailedPreconditionError(
        strings::Cat(field, ".content_hash: the file hashes to ", *actual, ", expected ", expected));
  }
  return absl::OkStatus();
}

}  // namespace distill::artifacts
