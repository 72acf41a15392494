#ifndef DISTILL_SERVICES_COORDINATOR_JOB_MANAGER_H_
#define DISTILL_SERVICES_COORDINATOR_JOB_MANAGER_H_

// The coordinator's core behind its gRPC adapter: accepts jobs, runs each through the pipeline on a
// worker thread (at most max_running_jobs at once, the rest QUEUED), answers reads from the store, streams
// changes to watchers, cancels. On start it resumes every job the store holds unfinished.

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "distill/v1/jobs.pb.h"
#include "common/metrics/registry.h"
#include "services/coordinator/coordinator_config.h"
#include "services/coordinator/job_metrics.h"
#include "services/coordinator/pipeline/job_execution.h"
#include "services/coordinator/pipeline/pipeline.h"
#include "services/coordinator/store/job_store.h"

namespace distill::coordinator {

// Thread-safe.
class JobManager {
 public:
  // Opens the store, connects (lazily) to the other services, resumes unfinished jobs.
  // Registers its metrics (job_metrics.h) with `registry`, which must outlive the manager.
  static absl::StatusOr<std::unique_ptr<JobManager>> Start(const CoordinatorConfig& config,
                                                           std::unique_ptr<ServiceClients> clients,
                                                           metrics::Registry* registry);
  ~JobManager();

  // Validates, persists and queues a job; idempotent on client_request_id (see SubmitJob in jobs.proto).
  // Returns the job and whether it was created.
  absl::StatusOr<std::pair<v1::Job, bool>> Submit(const v1::SubmitJobRequest& request);
  absl::StatusOr<v1::Job> Get(const std::string& job_id);
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id);
  // Streams the job (see WatchJob): `send` returns false when the client is gone; `client_gone` is polled.
  absl::Status Watch(const std::string& job_id, const std::function<bool(const v1::WatchJobResponse&)>& send,
                     const std::function<bool()>& client_gone);

  // Stops every running job where it is (they stay RUNNING in the store and resume on the next start)
  // and joins the workers. Idempotent.
  void Shutdown();

  const ServiceClients& clients() const { return *clients_; }
  JobMetrics& metrics() { return *metrics_; }

 private:
  JobManager(const CoordinatorConfig& config, std::unique_ptr<JobStore> store, std::unique_ptr<ServiceClients> clients,
             metrics::Registry* registry);
  absl::StatusOr<std::pair<v1::Job, bool>> DoSubmit(const v1::SubmitJobRequest& request);
  void WorkerLoop();
  std::shared_ptr<JobExecution> Track(v1::Job job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<JobExecution> Find(const std::string& job_id);
  std::string NewJobId() const;

  const CoordinatorConfig config_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<ServiceClients> clients_;
  std::unique_ptr<JobMetrics> metrics_;
  PipelineEnv env_;

  absl::Mutex mu_;
  // Jobs not yet terminal (and terminal ones a worker is still finishing).
  std::map<std::string, std::shared_ptr<JobExecution>> active_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace distill::coordinator

#endif  // DISTILL_SERVICES_COORDINATOR_JOB_MANAGER_H_
