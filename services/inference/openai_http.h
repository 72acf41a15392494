#ifndef DISTILL_SERVICES_INFERENCE_OPENAI_HTTP_H_
#define DISTILL_SERVICES_INFERENCE_OPENAI_HTTP_H_

// An OpenAI-compatible HTTP API over the inference server's models, so existing OpenAI clients — and the
// teacher gateway's `openai` backend — can call a distilled student:
//
//   GET  /v1/models             {"object": "list", "data": [{"id": NAME, "object": "model", ...}]}
//   POST /v1/completions        prompt -> the model's answer (see openai_http.cc for the fields)
//   POST /v1/chat/completions   the last user message -> the answer as the assistant's message
//
// Errors use OpenAI's shape {"error": {"message", "type", "param", "code"}} with the HTTP status of the
// gRPC code (400 invalid, 401 unauthenticated, 404 unknown model, 429 queue full with Retry-After, 503,
// 504). When the server has a bearer token, requests must carry it (Authorization: Bearer TOKEN).
//
// Thread-safe.

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "common/http_server/listener.h"
#include "common/rpc/auth.h"
#include "services/inference/serving/metrics.h"
#include "services/inference/serving/model_registry.h"

namespace distill::inference {

class OpenAiHttpServer {
 public:
  // Binds `address` (HOST:PORT, port 0 = any free port) and serves on background threads.
  // `registry`, `metrics` (may be null) and `authenticator` (may be null = no auth) outlive the server.
  // INVALID_ARGUMENT naming http_address for a bad address; UNAVAILABLE when it cannot bind.
  static absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> Start(const std::string& address,
                                                                 ModelRegistry* registry, InferenceMetrics* metrics,
                                                                 const rpc::Authenticator* authenticator = nullptr);
  ~OpenAiHttpServer();

  // HOST:PORT actually bound.
  const std::string& address() const { return listener_->address(); }
  // Stops accepting and waits for requests in progress. Idempotent.
  void Stop();

 private:
  explicit OpenAiHttpServer(std::unique_ptr<http_server::Listener> listener) : listener_(std::move(listener)) {}

  // The server's handlers hold the registry, metrics and authenticator they were started with.
  const std::unique_ptr<http_server::Listener> listener_;
};

}  // namespace distill::inference

#endif  // DISTILL_SERVICES_INFERENCE_OPENAI_HTTP_H_
