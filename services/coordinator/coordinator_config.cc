#include "services/coordinator/coordinator_config.h"

#include "common/strings/strings.h"

namespace distill::coordinator {

void ReadCoordinatorConfig(config::Node& root, CoordinatorConfig* config) {
  config::Node node = root.Child("coordinator");
  node.Read("database", &config->database);
  node.Read("artifact_root", &config->artifact_root);
  node.Read("teacher_gateway_address", &config->teacher_gateway_address);
  node.Read("curator_address", &config->curator_address);
  node.Read("trainer_address", &config->trainer_address);
  node.Read("inference_address", &config->inference_address);
  node.Read("service_token_env", &config->service_token_env);
  node.Read("max_running_jobs", &config->max_running_jobs);
  node.Read("rpc_timeout", &config->rpc_timeout);
  node.Check(!config->database.empty(), "database", "must not be empty");
  node.Check(!config->artifact_root.empty(), "artifact_root", "must not be empty");
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"teacher_gateway_address",
                                                                             &config->teacher_gateway_address},
                                   {"curator_address", &config->curator_address},
                                   {"trainer_address", &config->trainer_address},
                                   {"inference_address", &config->inference_address}}) {
    node.Check(!value->empty(), key, "must not be empty");
  }
  node.Check(config->max_running_jobs >= 1, "max_running_jobs",
             strings::Cat("must be >= 1, got ", config->max_running_jobs));
  node.Check(config->rpc_timeout > absl::ZeroDuration(), "rpc_timeout",
             strings::Cat("must be > 0, got ", absl::FormatDuration(config->rpc_timeout)));
}

}  // namespace distill::coordinator
