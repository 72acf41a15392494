#ifndef DISTILL_COMMON_RPC_AUTH_H_
#define DISTILL_COMMON_RPC_AUTH_H_

// Bearer-token authentication for distill's gRPC services. Clients send
// `authorization: Bearer <token>` metadata; a missing or wrong token is UNAUTHENTICATED.
// The token itself never appears in a log line or an error message.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

namespace distill::rpc {

struct AuthOptions {
  // File whose content (trailing whitespace trimmed) is the expected token. Takes precedence over
  // token_env when both are set.
  std::string token_file;
  // Name of an environment variable holding the expected token.
  std::string token_env;
  // Authentication is on when either source is configured; an empty token is then an error.
  bool enabled() const { return !token_file.empty() || !token_env.empty(); }
};

// Thread-safe and immutable once created.
class Authenticator {
 public:
  // Reads the token. Fails with INVALID_ARGUMENT naming the file or variable (never the token) when the
  // source is missing or empty. With no source configured, returns an authenticator that admits every
  // call.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const AuthOptions& options);

  // OK when authentication is off or the call carries the expected bearer token; UNAUTHENTICATED
  // otherwise.
  absl::Status Check(const grpc::ServerContext& context) const;

  // The same check for an HTTP request: `authorization` is the value of its Authorization header
  // ("Bearer <token>"; empty when the header is absent).
  absl::Status CheckAuthorization(std::string_view authorization) const;

  bool enabled() const { return !token_.empty(); }

 private:
  explicit Authenticator(std::string token) : token_(std::move(token)) {}
  const std::string token_;
};

}  // namespace distill::rpc

#endif  // DISTILL_COMMON_RPC_AUTH_H_
