#ifndef DISTILL_COMMON_RPC_SERVER_H_
#define DISTILL_COMMON_RPC_SERVER_H_

// The one server bootstrap every distill service runs on. A Server hosts one ServiceModule (the gRPC
// services of one distill service) with everything a production gRPC server needs around it:
//
//  - grpc.health.v1 health checking, per service name and overall ("");
//  - server reflection (grpcurl and friends work without .proto files);
//  - per-method request counts, latencies and in-flight calls (metrics_interceptor.h);
//  - bearer-token authentication (auth.h) and optional TLS (mutual when a client CA is given);
//  - a configurable maximum message size;
//  - an admin HTTP port serving /metrics, /healthz and /readyz (common/metrics/admin_server.h);
//  - graceful shutdown: NOT_SERVING, stop accepting, let in-flight calls finish until a deadline,
//    then cancel the rest.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/admin_server.h"
#include "common/metrics/registry.h"
#include "common/rpc/auth.h"
#include "common/rpc/handler.h"
#include "grpcpp/server.h"

namespace distill::rpc {

struct TlsOptions {
  // PEM server certificate chain and private key. TLS is on when both are set.
  std::string cert_file;
  std::string key_file;
  // PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS).
  std::string client_ca_file;
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

struct ServerOptions {
  // HOST:PORT for gRPC. Port 0 picks a free port (see Server::grpc_address()).
  std::string grpc_address = "127.0.0.1:0";
  // HOST:PORT for the admin HTTP server (/metrics, /healthz, /readyz). Port 0 picks a free port.
  std::string metrics_address = "127.0.0.1:0";
  // Largest gRPC message accepted or sent, in bytes.
  int64_t max_message_bytes = 64 << 20;
  // How long in-flight calls may run after shutdown begins before they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(10);
  TlsOptions tls;
  AuthOptions auth;
};

// The part of a distill service that a Server hosts. Implemented once per service
// (services/<svc>/<svc>_service.h); the same module runs in its own binary and inside `distill up`.
class ServiceModule {
 public:
  virtual ~ServiceModule() = default;
  // The gRPC services to register. Owned by the module; valid until it is destroyed.
  virtual std::vector<grpc::Service*> services() = 0;
  // Their fully qualified names ("distill.v1.Curator"), for health checking and method metrics.
  virtual std::vector<std::string> service_names() const = 0;
  // Whether the module can do its job (a model loaded, a database open). Drives /readyz; gRPC health
  // takes its value at start-up.
  virtual bool Ready() const { return true; }
  // Called once when shutdown begins, before in-flight calls are drained: stop long-running work. After it
  // returns, the module must no longer call the readiness listener.
  virtual void BeginShutdown() {}
  // Called once the server is serving, with a function to call (from any thread) whenever Ready() may have
  // changed, so gRPC health follows it (/readyz asks Ready() on every request anyway).
  virtual void SetReadinessListener(std::function<void()> changed) {}
  // Other addresses the module listens on, for the listening line: " http=HOST:PORT" (leading space), or
  // empty.
  virtual std::string ExtraListening() const { return {}; }
};

// What a module is built from. Everything here outlives the module.
struct ModuleContext {
  metrics::Registry* registry = nullptr;
  CallGuard guard;
};

// Thread-safe. Destroying a Server that was not shut down shuts it down with the configured grace.
class Server {
 public:
  // Creates the module's dependencies, builds and starts the gRPC server and the admin server.
  // `name` is the short service name ("curator", "teacher_gateway"), used in metric names and logs.
  // Fails with INVALID_ARGUMENT for bad options (naming the field) and UNAVAILABLE when a port cannot be
  // bound.
  using ModuleFactory = std::function<absl::StatusOr<std::unique_ptr<ServiceModule>>(const ModuleContext&)>;
  static absl::StatusOr<std::unique_ptr<Server>> Start(std::string name, const ServerOptions& options,
                                                       const ModuleFactory& factory);

  ~Server();

  const std::string& name() const { return name_; }
  // The bound addresses, with the real port when 0 was asked for.
  const std::string& grpc_address() const { return grpc_address_; }
  std::string metrics_address() const { return admin_->address(); }
  metrics::Registry& registry() { return *registry_; }
  ServiceModule& module() { return *module_; }

  // The line every distill server prints on start-up:
  // `listening service=<name> grpc=HOST:PORT metrics=HOST:PORT` (plus the module's ExtraListening()).
  std::string ListeningLine() const;

  // Graceful shutdown; returns when every call has finished or been cancelled at the deadline.
  // Idempotent. An idle connection from a gRPC 1.51 C++ client can hold it up to ~5 s past the last
  // call (that client only polls idle channels every 5 s, so it is late to acknowledge GOAWAY).
  void Shutdown();

 private:
  Server(std::string name, const ServerOptions& options);
  bool ServingNow() const;
  // Sets gRPC health to the module's readiness, unless shutting down.
  void UpdateHealth();

  const std::string name_;
  const ServerOptions options_;
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<ServiceModule> module_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::string grpc_address_;
  std::unique_ptr<metrics::AdminServer> admin_;

  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace distill::rpc

#endif  // DISTILL_COMMON_RPC_SERVER_H_
