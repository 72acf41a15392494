#ifndef DISTILL_SERVICES_COORDINATOR_COORDINATOR_SERVICE_H_
#define DISTILL_SERVICES_COORDINATOR_COORDINATOR_SERVICE_H_

// The gRPC adapter of the coordinator: distillation jobs over gRPC. Every handler authenticates through
// rpc::Handle and maps the core's absl::Status in one place; the work is JobManager's.

#include <memory>

#include "common/rpc/handler.h"
#include "common/rpc/service_main.h"
#include "distill/v1/jobs.grpc.pb.h"
#include "services/coordinator/job_manager.h"

namespace distill::services {

// Thread-safe.
class CoordinatorService final : public v1::DistillationJobs::Service {
 public:
  CoordinatorService(rpc::CallGuard guard, coordinator::JobManager* manager) : guard_(guard), manager_(manager) {}

  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::GetJobResponse* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::WatchJobResponse>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::CancelJobResponse* response) override;

 private:
  // An unknown teacher backend → INVALID_ARGUMENT, when the gateway can be asked (a gateway that is down
  // does not block submissions: the job waits for it in TEACH).
  absl::Status CheckTeacherBackend(const v1::JobSpec& spec) const;

  const rpc::CallGuard guard_;
  coordinator::JobManager* const manager_;
};

// The binary's name, embedded defaults and module factory, shared by `distill-coordinator` and `distill up`.
// `distill up` passes the other services' addresses through the `coordinator:` config section.
rpc::ServiceDefinition CoordinatorDefinition();

}  // namespace distill::services

#endif  // DISTILL_SERVICES_COORDINATOR_COORDINATOR_SERVICE_H_
