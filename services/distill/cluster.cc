#include "services/distill/cluster.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/cli/flags.h"
#include "common/config/host_port.h"
#include "common/config/yaml.h"
#include "common/logging/logging.h"
#include "common/rpc/signals.h"
#include "services/coordinator/coordinator_service.h"
#include "services/curator/curator_service.h"
#include "services/inference/inference_service.h"
#include "services/teacher_gateway/teacher_gateway_service.h"

#include "services/trainer/trainer_service.h"

namespace distill::services {

std::vector<rpc::ServiceDefinition> AllServiceDefinitions() {
  return {TeacherGatewayDefinition(), CuratorDefinition(), TrainerDefinition(), InferenceDefinition(),
          CoordinatorDefinition()};
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(const std::string& host) {
  auto cluster = std::make_unique<Cluster>();
  const std::string any_port = config::HostPort{.host = host, .port = 0}.ToString();
  for (rpc::ServiceDefinition& definition : AllServiceDefinitions()) {
    if (definition.read_config) {
      // Embedded defaults, except that every listening address is on `host` with a port the OS picks
      // (the inference service's OpenAI-compatible HTTP API is the only one outside ServerOptions).
      absl::StatusOr<config::Document> doc = config::Document::Parse(
          definition.name == "inference" ? absl::StrCat("inference:\n  http_address: \"", any_port, "\"\n") : "",
          "embedded defaults");
      if (!doc.ok()) return doc.status();
      config::Node root = doc->Root();
      definition.read_config(root);
      if (absl::Status finished = doc->Finish(); !finished.ok()) return finished;
    }
    rpc::ServerOptions options = definition.defaults.server;
    options.grpc_address = any_port;
    options.metrics_address = any_port;
    absl::StatusOr<std::unique_ptr<rpc::Server>> server =
        rpc::Server::Start(definition.name, options, definition.factory);
    if (!server.ok()) {
      cluster->Shutdown();
      return absl::Status(server.status().code(),
                          absl::StrCat(definition.name, ": ", server.status().message()));
    }
    cluster->servers_.push_back(std::move(*server));
  }
  return cluster;
}

void Cluster::Shutdown() {
  for (auto it = servers_.rbegin(); it != servers_.rend(); ++it) (*it)->Shutdown();
}

int RunUp(const std::vector<std::string>& args) {
  std::string host = "127.0.0.1";
  cli::FlagSet flags("distill up [--host HOST]");
  flags.String("host", &host, "address every service listens on; ports are chosen by the OS");
  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (positional.ok() && !positional->empty()) {
    positional = absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", (*positional)[0], "\""));
  }
  if (!positional.ok()) {
    std::cerr << "distill up: " << positional.status().message() << "\n" << flags.Usage();
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(host);
  if (!cluster.ok()) {
    std::cerr << "distill up: " << cluster.status().message() << "\n";
    return 1;
  }
  for (const auto& server : (*cluster)->servers()) std::cout << server->ListeningLine() << "\n";
  std::cout << std::flush;
  const int signal_number = rpc::WaitForShutdownSignal();
  logging::Info("signal received", {{"signal", signal_number}});
  (*cluster)->Shutdown();
  return 0;
}

}  // namespace distill::services
