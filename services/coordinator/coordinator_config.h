#ifndef DISTILL_SERVICES_COORDINATOR_COORDINATOR_CONFIG_H_
#define DISTILL_SERVICES_COORDINATOR_COORDINATOR_CONFIG_H_

// The `coordinator:` section of the coordinator's config file (all keys optional):
//
//   coordinator:
//     database: distill-data/coordinator.db     # SQLite; every job's state (a volume in Kubernetes)
//     artifact_root: distill-data/artifacts     # the store the other services share (artifact://)
//     teacher_gateway_address: 127.0.0.1:50051  # gRPC targets of the services a job calls
//     curator_address: 127.0.0.1:50052
//     trainer_address: 127.0.0.1:50053
//     inference_address: 127.0.0.1:50054
//     service_token_env: DISTILL_TOKEN          # env var with the bearer token for those calls; "" = none
//     max_running_jobs: 1                       # more wait QUEUED
//     rpc_timeout: 60s                          # deadline of short calls (GetRun, Predict, LoadModel)

#include <string>

#include "absl/time/time.h"
#include "common/config/yaml.h"

namespace distill::coordinator {

struct CoordinatorConfig {
  std::string database = "distill-data/coordinator.db";
  std::string artifact_root = "distill-data/artifacts";
  std::string teacher_gateway_address = "127.0.0.1:50051";
  std::string curator_address = "127.0.0.1:50052";
  std::string trainer_address = "127.0.0.1:50053";
  std::string inference_address = "127.0.0.1:50054";
  std::string service_token_env;
  int max_running_jobs = 1;
  absl::Duration rpc_timeout = absl::Seconds(60);
};

// Reads root["coordinator"] over *config; problems are recorded in the document with file, line and key.
void ReadCoordinatorConfig(config::Node& root, CoordinatorConfig* config);

}  // namespace distill::coordinator

#endif  // DISTILL_SERVICES_COORDINATOR_COORDINATOR_CONFIG_H_
