#ifndef DISTILL_COMMON_ARTIFACTS_ARTIFACTS_H_
#define DISTILL_COMMON_ARTIFACTS_ARTIFACTS_H_

// The artifact store: files and directories that services hand each other by URI (ArtifactRef in
// proto/distill/v1/common.proto). "artifact://<relative path>" resolves under the store's root directory
// (a shared volume in Kubernetes, distill-data/artifacts on a laptop); "file:///<absolute path>" and bare
// absolute paths name local files.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace distill::artifacts {

inline constexpr std::string_view kArtifactScheme = "artifact://";

// The local path of `uri`. INVALID_ARGUMENT naming `field` for anything else, or for an artifact path that
// is absolute or contains "..".
absl::StatusOr<std::string> ResolveUri(const std::string& root, const std::string& uri, std::string_view field);

// "sha256:<hex>" of the file's bytes. NOT_FOUND naming the path when it cannot be read.
absl::StatusOr<std::string> FileContentHash(const std::string& path);

// OK when `expected` is empty or equals FileContentHash(path); FAILED_PRECONDITION naming
// "<field>.content_hash" with both hashes otherwise; NOT_FOUND naming `field` when unreadable.
absl::Status VerifyContentHash(const std::string& path, const std::string& expected, std::string_view field);

}  // namespace distill::artifacts

#endif  // DISTILL_COMMON_ARTIFACTS_ARTIFACTS_H_
