#ifndef DISTILL_COMMON_METRICS_ADMIN_SERVER_H_
#define DISTILL_COMMON_METRICS_ADMIN_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "common/http_server/listener.h"
#include "common/metrics/registry.h"

namespace distill::metrics {

// A small HTTP server for operators and Prometheus, separate from a service's gRPC port:
//
//   GET /metrics  200, Content-Type "text/plain; version=0.0.4; charset=utf-8", body
//                 registry->Serialize()
//   GET /healthz  200 "ok" for as long as the process serves HTTP (liveness)
//   GET /readyz   200 "ready" when the readiness callback returns true, else 503 "not ready"
//   anything else 404
//
// Requests are served on a small pool of background threads; Start() returns once the listening
// socket is bound, so a client may connect right away. Thread-safe: address() and Stop() may be
// called from any thread.
class AdminServer {
 public:
  // Binds `address` ("HOST:PORT", "[::1]:PORT" for IPv6, "0.0.0.0:PORT" for every interface; PORT 0
  // picks a free port, see address()) and starts serving. `registry` must outlive the server. `ready` is
  // called on a server thread for each /readyz request, so it must be thread-safe and must not
  // block; an empty function means "always ready".
  //
  // Errors, each starting `admin address "<address>": `: INVALID_ARGUMENT for an address that
  // config::ParseHostPort rejects (no port, a port that is not a number in 0-65535, an empty host, an
  // unbracketed IPv6 host, a URL scheme, whitespace), a host that does not resolve, a host that is not
  // a local address, or a null registry; UNAVAILABLE when the port is in use or binding fails
  // otherwise; PERMISSION_DENIED for a privileged port.
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(std::string_view address,
                                                            const Registry* registry,
                                                            std::function<bool()> ready);

  // Stops serving (see Stop()).
  ~AdminServer();

  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // "HOST:PORT" with the port actually bound, e.g. "127.0.0.1:41234" after Start("127.0.0.1:0").
  std::string address() const { return listener_->address(); }

  // Closes the listening socket, waits for requests in progress to finish and joins the server
  // threads; an idle keep-alive connection or a stalled client can delay it by about a second.
  // Afterwards new connections are refused. Idempotent.
  void Stop();

 private:
  explicit AdminServer(std::unique_ptr<http_server::Listener> listener) : listener_(std::move(listener)) {}

  const std::unique_ptr<http_server::Listener> listener_;
};

}  // namespace distill::metrics

#endif  // DISTILL_COMMON_METRICS_ADMIN_SERVER_H_
