#ifndef DISTILL_COMMON_HTTP_SERVER_LISTENER_H_
#define DISTILL_COMMON_HTTP_SERVER_LISTENER_H_

// How every HTTP port distill opens (the admin port of each service, the inference service's
// OpenAI-compatible API) is bound and served: an httplib::Server whose routes the caller has set up,
// bound to "HOST:PORT" (port 0 = a free port) without SO_REUSEPORT (so a second server cannot silently
// share a busy port) and with FD_CLOEXEC (so the port does not leak into child processes), its accept
// loop on a background thread.

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace distill::http_server {

// Thread-safe: address() and Stop() may be called from any thread.
class Listener {
 public:
  // Binds `server` to `address` and starts its accept loop; returns once httplib reports it running, so a
  // client may connect (and a Stop() is not lost) right away. Every error starts `<name> "<address>": `
  // (e.g. `admin address "x:1": `): INVALID_ARGUMENT for an address that config::ParseHostPort rejects, a
  // host that does not resolve or that is not a local address; UNAVAILABLE when the port is in use or
  // binding fails otherwise; PERMISSION_DENIED for a privileged port.
  static absl::StatusOr<std::unique_ptr<Listener>> Start(std::unique_ptr<httplib::Server> server,
                                                         std::string_view address, std::string_view name);

  // The prefix Start puts on its errors, for callers that check their own arguments first.
  static std::string ErrorPrefix(std::string_view name, std::string_view address);

  // Stops serving (see Stop()).
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // "HOST:PORT" with the port actually bound.
  const std::string& address() const { return address_; }
  httplib::Server& server() { return *server_; }

  // Closes the listening socket, waits for requests in progress to finish and joins the accept thread.
  // Afterwards new connections are refused. Idempotent.
  void Stop();

 private:
  Listener(std::string address, std::unique_ptr<httplib::Server> server);

  const std::string address_;
  const std::unique_ptr<httplib::Server> server_;
  // Set by thread_ when the accept loop has returned.
  std::atomic<bool> exited_{false};
  absl::Mutex stop_mu_;
  std::thread thread_ ABSL_GUARDED_BY(stop_mu_);
};

}  // namespace distill::http_server

#endif  // DISTILL_COMMON_HTTP_SERVER_LISTENER_H_
