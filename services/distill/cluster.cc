#include "services/distill/cluster.h"

#include <cstring>
#include <iostream>

#include "absl/strings/match.h"
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

std::string DialAddress(const std::string& address) {
  for (const char* wildcard : {"0.0.0.0:", "[::]:"}) {
    if (absl::StartsWith(address, wildcard)) return absl::StrCat("127.0.0.1:", address.substr(strlen(wildcard)));
  }
  return address;
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(const ClusterOptions& options) {
  auto cluster = std::make_unique<Cluster>();
  const std::string any_port = config::HostPort{.host = options.host, .port = 0}.ToString();
  for (rpc::ServiceDefinition& definition : AllServiceDefinitions()) {
    if (definition.read_config) {
      // Embedded defaults, except that every listening address is on `host` with a port the OS picks
      // (the inference service's OpenAI-compatible HTTP API is the only one outside ServerOptions), and
      // that the coordinator calls the services started before it.
      std::string text;
      if (definition.name == "inference") text = absl::StrCat("inference:\n  http_address: \"", any_port, "\"\n");
      if (definition.name == "trainer") {
        text = absl::StrCat("trainer:\n  max_concurrent_runs: ", options.trainer_max_concurrent_runs, "\n");
      }
      if (definition.name == "coordinator") {
        text = "coordinator:\n";
        for (const auto& server : cluster->servers_) {
          absl::StrAppend(&text, "  ", server->name(), "_address: \"", DialAddress(server->grpc_address()), "\"\n");
        }
      }
      absl::StatusOr<config::Document> doc = config::Document::Parse(text, "embedded defaults");
      if (!doc.ok()) return doc.status();
      config::Node root = doc->Root();
      definition.read_config(root);
      if (absl::Status finished = doc->Finish(); !finished.ok()) return finished;
    }
    rpc::ServerOptions server_options = definition.defaults.server;
    server_options.grpc_address = any_port;
    server_options.metrics_address = any_port;
    absl::StatusOr<std::unique_ptr<rpc::Server>> server =
        rpc::Server::Start(definition.name, server_options, definition.factory);
    if (!server.ok()) {
      cluster->Shutdown();
      return absl::Status(server.status().code(),
                          absl::StrCat(definition.name, ": ", server.status().message()));
    }
    cluster->servers_.push_back(std::move(*server));
  }
  return cluster;
}

const rpc::Server* Cluster::server(const std::string& name) const {
  for (const auto& server : servers_) {
    if (server->name() == name) return server.get();
  }
  return nullptr;
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
  absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(ClusterOptions{.host = host});
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
