#include "services/trainer/trainer_service.h"

#include <memory>

#include "common/status/macros.h"
#include "services/trainer/trainer_config.h"

namespace distill::services {
namespace {

// Owns the RunManager the service runs on.
class TrainerModule final : public rpc::ServiceModule {
 public:
  static absl::StatusOr<std::unique_ptr<rpc::ServiceModule>> Create(const trainer::TrainerConfig& config,
                                                                    const rpc::ModuleContext& context) {
    auto module = std::unique_ptr<TrainerModule>(new TrainerModule());
    ASSIGN_OR_RETURN(module->runs_, trainer::RunManager::Create(config, context.registry));
    module->service_ = std::make_unique<TrainerService>(context.guard, module->runs_.get());
    return module;
  }

  std::vector<grpc::Service*> services() override { return {service_.get()}; }
  std::vector<std::string> service_names() const override { return {v1::Trainer::service_full_name()}; }
  bool Ready() const override { return runs_->Ready(); }
  // Workers stop and runs end now, so WatchRun streams finish before the drain deadline.
  void BeginShutdown() override { runs_->Shutdown(); }

 private:
  TrainerModule() = default;
  std::unique_ptr<trainer::RunManager> runs_;
  std::unique_ptr<TrainerService> service_;
};

}  // namespace

grpc::Status TrainerService::StartRun(grpc::ServerContext* context, const v1::StartRunRequest* request,
                                      v1::StartRunResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(trainer::RunManager::StartResult result, runs_->StartRun(*request));
    *response->mutable_run() = std::move(result.run);
    response->set_created(result.created);
    return absl::OkStatus();
  });
}

grpc::Status TrainerService::WatchRun(grpc::ServerContext* context, const v1::WatchRunRequest* request,
                                      grpc::ServerWriter<v1::WatchRunResponse>* writer) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    return runs_->WatchRun(
        request->run_id(), [writer](const v1::WatchRunResponse& event) { return writer->Write(event); },
        [context]() { return context->IsCancelled(); });
  });
}

grpc::Status TrainerService::CancelRun(grpc::ServerContext* context, const v1::CancelRunRequest* request,
                                       v1::CancelRunResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*response->mutable_run(), runs_->CancelRun(request->run_id()));
    return absl::OkStatus();
  });
}

grpc::Status TrainerService::GetRun(grpc::ServerContext* context, const v1::GetRunRequest* request,
                                    v1::GetRunResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*response->mutable_run(), runs_->GetRun(request->run_id()));
    return absl::OkStatus();
  });
}

grpc::Status TrainerService::ListRuns(grpc::ServerContext* context, const v1::ListRunsRequest* request,
                                      v1::ListRunsResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*response, runs_->ListRuns(*request));
    return absl::OkStatus();
  });
}

rpc::ServiceDefinition TrainerDefinition() {
  auto config = std::make_shared<trainer::TrainerConfig>();
  rpc::ServiceDefinition definition;
  definition.name = "trainer";
  definition.defaults.server.grpc_address = "0.0.0.0:50053";
  definition.defaults.server.metrics_address = "0.0.0.0:9403";
  definition.read_config = [config](config::Node& root) { trainer::ReadTrainerConfig(root, config.get()); };
  definition.factory = [config](const rpc::ModuleContext& context) {
    return TrainerModule::Create(*config, context);
  };
  return definition;
}

}  // namespace distill::services
