#include "services/coordinator/coordinator_service.h"

#include <cstdlib>
#include <memory>
#include <set>

#include "absl/strings/str_join.h"
#include "common/rpc/status.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "services/coordinator/coordinator_config.h"
#include "services/coordinator/pipeline/pipeline.h"

namespace distill::services {

absl::Status CoordinatorService::CheckTeacherBackend(const v1::JobSpec& spec) const {
  if (!coordinator::NeedsTeacher(spec) || spec.teacher().backend().empty()) return absl::OkStatus();
  grpc::ClientContext call;
  manager_->clients().Prepare(&call, absl::Seconds(5));
  v1::ListBackendsResponse backends;
  const grpc::Status status = manager_->clients().teacher->ListBackends(&call, v1::ListBackendsRequest(), &backends);
  if (!status.ok()) return absl::OkStatus();
  std::vector<std::string> names;
  for (const v1::BackendInfo& backend : backends.backends()) {
    if (backend.name() == spec.teacher().backend()) return absl::OkStatus();
    names.push_back(backend.name());
  }
  return absl::InvalidArgumentError(strings::Cat("teacher.backend: unknown backend \"", spec.teacher().backend(),
                                                 "\" (the teacher gateway has: ", absl::StrJoin(names, ", "), ")"));
}

grpc::Status CoordinatorService::SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                                           v1::SubmitJobResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    if (absl::Status backend = CheckTeacherBackend(request->spec()); !backend.ok()) {
      manager_->metrics().Submitted("rejected");
      return backend;
    }
    ASSIGN_OR_RETURN(auto submitted, manager_->Submit(*request));
    *response->mutable_job() = std::move(submitted.first);
    response->set_created(submitted.second);
    return absl::OkStatus();
  });
}

grpc::Status CoordinatorService::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                        v1::GetJobResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*response->mutable_job(), manager_->Get(request->job_id()));
    return absl::OkStatus();
  });
}

grpc::Status CoordinatorService::ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                                          v1::ListJobsResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*response, manager_->List(*request));
    return absl::OkStatus();
  });
}

grpc::Status CoordinatorService::WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                                          grpc::ServerWriter<v1::WatchJobResponse>* writer) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    return manager_->Watch(
        request->job_id(), [writer](const v1::WatchJobResponse& response) { return writer->Write(response); },
        [context] { return context->IsCancelled(); });
  });
}

grpc::Status CoordinatorService::CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                                           v1::CancelJobResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*response->mutable_job(), manager_->Cancel(request->job_id()));
    return absl::OkStatus();
  });
}

namespace {

// The coordinator's module: the job manager and the service over it.
class CoordinatorModule final : public rpc::ServiceModule {
 public:
  CoordinatorModule(std::unique_ptr<coordinator::JobManager> manager, rpc::CallGuard guard)
      : manager_(std::move(manager)), service_(guard, manager_.get()) {}
  ~CoordinatorModule() override { manager_->Shutdown(); }

  std::vector<grpc::Service*> services() override { return {&service_}; }
  std::vector<std::string> service_names() const override { return {v1::DistillationJobs::service_full_name()}; }
  void BeginShutdown() override { manager_->Shutdown(); }

 private:
  std::unique_ptr<coordinator::JobManager> manager_;
  CoordinatorService service_;
};

absl::StatusOr<std::unique_ptr<coordinator::ServiceClients>> MakeClients(const coordinator::CoordinatorConfig& config) {
  auto clients = std::make_unique<coordinator::ServiceClients>();
  if (!config.service_token_env.empty()) {
    const char* token = std::getenv(config.service_token_env.c_str());
    if (token == nullptr || *token == '\0') {
      return absl::InvalidArgumentError(strings::Cat("coordinator.service_token_env: environment variable ",
                                                     config.service_token_env, " is unset or empty"));
    }
    clients->token = token;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = [&](const std::string& target) {
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  };
  clients->teacher = v1::TeacherGateway::NewStub(channel(config.teacher_gateway_address));
  clients->curator = v1::Curator::NewStub(channel(config.curator_address));
  clients->trainer = v1::Trainer::NewStub(channel(config.trainer_address));
  clients->inference = v1::Inference::NewStub(channel(config.inference_address));
  clients->rpc_timeout = config.rpc_timeout;
  return clients;
}

}  // namespace

rpc::ServiceDefinition CoordinatorDefinition() {
  auto config = std::make_shared<coordinator::CoordinatorConfig>();
  rpc::ServiceDefinition definition;
  definition.name = "coordinator";
  definition.defaults.server.grpc_address = "0.0.0.0:50050";
  definition.defaults.server.metrics_address = "0.0.0.0:9400";
  definition.read_config = [config](config::Node& root) { coordinator::ReadCoordinatorConfig(root, config.get()); };
  definition.factory =
      [config](const rpc::ModuleContext& context) -> absl::StatusOr<std::unique_ptr<rpc::ServiceModule>> {
    ASSIGN_OR_RETURN(std::unique_ptr<coordinator::ServiceClients> clients, MakeClients(*config));
    ASSIGN_OR_RETURN(std::unique_ptr<coordinator::JobManager> manager,
                     coordinator::JobManager::Start(*config, std::move(clients), context.registry));
    return std::make_unique<CoordinatorModule>(std::move(manager), context.guard);
  };
  return definition;
}

}  // namespace distill::services
