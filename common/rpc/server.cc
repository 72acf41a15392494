#include "common/rpc/server.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/config/host_port.h"
#include "common/logging/logging.h"
#include "common/metrics/builder.h"
#include "common/rpc/metrics_interceptor.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace distill::rpc {
namespace {

constexpr char kVersion[] = "0.1.0";

absl::StatusOr<std::string> ReadFile(std::string_view field, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(strings::Cat(field, ": cannot read \"", path, "\""));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(const TlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError("server.tls: cert_file and key_file must be set together");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadFile("server.tls.cert_file", tls.cert_file));
  ASSIGN_OR_RETURN(pair.private_key, ReadFile("server.tls.key_file", tls.key_file));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile("server.tls.client_ca_file", tls.client_ca_file));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// Full method paths ("/distill.v1.Curator/Curate") of the module's services, plus the ones every
// server adds, so the metrics interceptor can bound its method label.
absl::flat_hash_set<std::string> KnownMethods(const std::vector<std::string>& service_names) {
  absl::flat_hash_set<std::string> methods = {
      "/grpc.health.v1.Health/Check",
      "/grpc.health.v1.Health/Watch",
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
  };
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : service_names) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      methods.insert(absl::StrCat("/", name, "/", service->method(i)->name()));
    }
  }
  return methods;
}

}  // namespace

Server::Server(std::string name, const ServerOptions& options)
    : name_(std::move(name)), options_(options), registry_(std::make_unique<metrics::Registry>()) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(std::string name, const ServerOptions& options,
                                                      const ModuleFactory& factory) {
  absl::StatusOr<config::HostPort> grpc_host_port = config::ParseHostPort(options.grpc_address);
  if (!grpc_host_port.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("server.grpc_address: ", grpc_host_port.status().message()));
  }
  if (options.max_message_bytes <= 0 || options.max_message_bytes > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server.max_message_bytes: must be in [1, 2147483647], got ", options.max_message_bytes));
  }
  if (options.shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("server.shutdown_grace: must be >= 0");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, MakeCredentials(options.tls));

  std::unique_ptr<Server> server(new Server(std::move(name), options));
  ASSIGN_OR_RETURN(server->authenticator_, Authenticator::Create(options.auth));
  ModuleContext context{.registry = server->registry_.get(),
                        .guard = CallGuard{.authenticator = server->authenticator_.get()}};
  ASSIGN_OR_RETURN(server->module_, factory(context));

  metrics::BuildGauge()
      .Name(absl::StrCat("distill_", server->name_, "_build_info"))
      .Help("Always 1; labels carry the running distill version.")
      .Register(*server->registry_)
      .Add({{"version", kVersion}})
      .Set(1);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.grpc_address, credentials, &port);
  // Without this, gRPC sets SO_REUSEPORT and a second server would silently share a busy port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  for (grpc::Service* service : server->module_->services()) builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MetricsInterceptorFactory>(
      server->name_, KnownMethods(server->module_->service_names()), server->registry_.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("server.grpc_address: cannot listen on ", options.grpc_address));
  }
  config::HostPort bound = *grpc_host_port;
  bound.port = static_cast<uint16_t>(port);
  server->grpc_address_ = bound.ToString();

  Server* raw = server.get();
  server->UpdateHealth();
  server->module_->SetReadinessListener([raw] { raw->UpdateHealth(); });
  auto admin = metrics::AdminServer::Start(options.metrics_address, server->registry_.get(),
                                           [raw] { return raw->ServingNow(); });
  if (!admin.ok()) {
    server->grpc_server_->Shutdown();
    return absl::Status(admin.status().code(),
                        absl::StrCat("server.metrics_address: ", admin.status().message()));
  }
  server->admin_ = std::move(*admin);
  logging::Info("server started", {{"service", server->name_},
                                   {"grpc", server->grpc_address_},
                                   {"metrics", server->metrics_address()},
                                   {"tls", options.tls.enabled()},
                                   {"auth", server->authenticator_->enabled()}});
  return server;
}

Server::~Server() { Shutdown(); }

bool Server::ServingNow() const {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return false;
  }
  return module_->Ready();
}

void Server::UpdateHealth() {
  absl::MutexLock lock(&mu_);
  if (shut_down_ || grpc_server_ == nullptr) return;
  const bool ready = module_->Ready();
  grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
  health->SetServingStatus(ready);
  for (const std::string& service_name : module_->service_names()) health->SetServingStatus(service_name, ready);
}

std::string Server::ListeningLine() const {
  return absl::StrCat("listening service=", name_, " grpc=", grpc_address_, " metrics=", metrics_address(),
                      module_->ExtraListening());
}

void Server::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_ || grpc_server_ == nullptr) return;
    shut_down_ = true;
  }
  logging::Info("shutting down", {{"service", name_}});
  // NOT_SERVING first (health Watch streams see it), then stop accepting and drain.
  grpc_server_->GetHealthCheckService()->Shutdown();
  module_->BeginShutdown();
  const auto deadline =
      std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.shutdown_grace);
  grpc_server_->Shutdown(deadline);
  grpc_server_->Wait();
  if (admin_ != nullptr) admin_->Stop();
  logging::Info("shutdown complete", {{"service", name_}});
}

}  // namespace distill::rpc
