#ifndef DISTILL_SERVICES_TRAINER_TRAINER_SERVICE_H_
#define DISTILL_SERVICES_TRAINER_TRAINER_SERVICE_H_

// The gRPC adapter of the trainer: student fine-tuning runs. Every handler authenticates through
// rpc::Handle, calls the RunManager (run_manager.h) and maps its absl::Status in one place.

#include "common/rpc/handler.h"
#include "common/rpc/service_main.h"
#include "distill/v1/trainer.grpc.pb.h"
#include "services/trainer/run_manager.h"

namespace distill::services {

// Thread-safe: handlers run concurrently on gRPC's threads; the RunManager is thread-safe.
class TrainerService final : public v1::Trainer::Service {
 public:
  // `runs` must outlive the service.
  TrainerService(rpc::CallGuard guard, trainer::RunManager* runs) : guard_(guard), runs_(runs) {}

  grpc::Status StartRun(grpc::ServerContext* context, const v1::StartRunRequest* request,
                        v1::StartRunResponse* response) override;
  // Ends with OK after the terminal snapshot, CANCELLED when the client goes away (the run goes on).
  grpc::Status WatchRun(grpc::ServerContext* context, const v1::WatchRunRequest* request,
                        grpc::ServerWriter<v1::WatchRunResponse>* writer) override;
  grpc::Status CancelRun(grpc::ServerContext* context, const v1::CancelRunRequest* request,
                         v1::CancelRunResponse* response) override;
  grpc::Status GetRun(grpc::ServerContext* context, const v1::GetRunRequest* request,
                      v1::GetRunResponse* response) override;
  grpc::Status ListRuns(grpc::ServerContext* context, const v1::ListRunsRequest* request,
                        v1::ListRunsResponse* response) override;

 private:
  const rpc::CallGuard guard_;
  trainer::RunManager* const runs_;
};

// The binary's name, embedded defaults, config section (`trainer:`, see trainer_config.h) and module
// factory, shared by `distill-trainer` and `distill up`. The module is ready while its worker binary is
// executable; on shutdown it stops every worker before in-flight calls drain.
rpc::ServiceDefinition TrainerDefinition();

}  // namespace distill::services

#endif  // DISTILL_SERVICES_TRAINER_TRAINER_SERVICE_H_
