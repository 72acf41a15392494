#ifndef DISTILL_SERVICES_DISTILL_CLUSTER_H_
#define DISTILL_SERVICES_DISTILL_CLUSTER_H_

// The all-in-one cluster: every distill service in one process, each on its own gRPC and admin port,
// exactly as the separate binaries would run them. Backs `distill up`.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/rpc/server.h"
#include "common/rpc/service_main.h"

namespace distill::services {

// The five service definitions in start-up order (the coordinator last: it calls the others).
std::vector<rpc::ServiceDefinition> AllServiceDefinitions();

// What differs from the services' embedded defaults in an all-in-one cluster.
struct ClusterOptions {
  // Every service listens here, on a port the OS picks.
  std::string host = "127.0.0.1";
  // Training runs the trainer runs at once (the others wait QUEUED).
  int trainer_max_concurrent_runs = 1;
};

// Not thread-safe; Shutdown() may be called once from any thread.
class Cluster {
 public:
  // Starts every service with its embedded defaults, except for `options`. On failure, services already
  // started are shut down.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(const ClusterOptions& options);

  // The server of service `name` ("coordinator", "inference", ...); null when there is none.
  const rpc::Server* server(const std::string& name) const;

  const std::vector<std::unique_ptr<rpc::Server>>& servers() const { return servers_; }
  // Shuts the services down in reverse start-up order, each gracefully.
  void Shutdown();

 private:
  std::vector<std::unique_ptr<rpc::Server>> servers_;
};

// Where a client connects to a server bound to `address`: a wildcard host (0.0.0.0, [::]) means this machine.
std::string DialAddress(const std::string& address);

// `distill up [--host HOST]`: starts the cluster, prints one listening line per service, serves until
// SIGTERM/SIGINT. Returns the process exit code.
int RunUp(const std::vector<std::string>& args);

}  // namespace distill::services

#endif  // DISTILL_SERVICES_DISTILL_CLUSTER_H_
