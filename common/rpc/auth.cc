#include "common/rpc/auth.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings/strings.h"

namespace distill::rpc {
namespace {

// Compares without an early exit so response time does not reveal how much of a guess matched.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(const AuthOptions& options) {
  std::string token;
  if (!options.token_file.empty()) {
    std::ifstream in(options.token_file, std::ios::binary);
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat("server.auth.token_file: cannot read \"", options.token_file, "\""));
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    token = std::string(absl::StripAsciiWhitespace(buffer.str()));
    if (token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("server.auth.token_file: \"", options.token_file, "\" is empty"));
    }
  } else if (!options.token_env.empty()) {
    const char* value = std::getenv(options.token_env.c_str());
    if (value == nullptr || absl::StripAsciiWhitespace(value).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("server.auth.token_env: environment variable ",
                                                     options.token_env, " is unset or empty"));
    }
    token = std::string(absl::StripAsciiWhitespace(value));
  }
  return std::unique_ptr<Authenticator>(new Authenticator(std::move(token)));
}

absl::Status Authenticator::Check(const grpc::ServerContext& context) const {
  if (token_.empty()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError("missing \"authorization: Bearer <token>\" metadata");
  }
  return CheckAuthorization(std::string_view(it->second.data(), it->second.size()));
}

absl::Status Authenticator::CheckAuthorization(std::string_view authorization) const {
  if (token_.empty()) return absl::OkStatus();
  if (authorization.empty()) return absl::UnauthenticatedError("missing \"authorization: Bearer <token>\"");
  constexpr std::string_view kPrefix = "Bearer ";
  if (!absl::StartsWithIgnoreCase(strings::ToAbsl(authorization), strings::ToAbsl(kPrefix))) {
    return absl::UnauthenticatedError("authorization is not a bearer token");
  }
  if (!ConstantTimeEquals(authorization.substr(kPrefix.size()), token_)) {
    return absl::UnauthenticatedError("invalid bearer token");
  }
  return absl::OkStatus();
}

}  // namespace distill::rpc
