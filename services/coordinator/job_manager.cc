#include "services/coordinator/job_manager.h"

#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/clock/timestamp.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/coordinator/job_validation.h"

namespace distill::coordinator {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
// Watchers get at most this many updates per second per stage.
constexpr absl::Duration kWatchInterval = absl::Milliseconds(250);

}  // namespace

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Start(const CoordinatorConfig& config,
                                                              std::unique_ptr<ServiceClients> clients,
                                                              metrics::Registry* registry) {
  ASSIGN_OR_RETURN(std::unique_ptr<JobStore> store, JobStore::Open(config.database));
  ASSIGN_OR_RETURN(std::vector<v1::Job> unfinished, store->Unfinished());
  ASSIGN_OR_RETURN(auto counts, store->CountByState());
  std::unique_ptr<JobManager> manager(new JobManager(config, std::move(store), std::move(clients), registry));
  manager->metrics_->Load(counts, unfinished);
  {
    absl::MutexLock lock(&manager->mu_);
    for (v1::Job& job : unfinished) {
      logging::Info("resuming job", {{"job", job.job_id()}, {"state", v1::JobState_Name(job.state())}});
      manager->queue_.push_back(job.job_id());
      manager->Track(std::move(job));
    }
  }
  for (int i = 0; i < config.max_running_jobs; ++i) manager->workers_.emplace_back([m = manager.get()] { m->WorkerLoop(); });
  return manager;
}

JobManager::JobManager(const CoordinatorConfig& config, std::unique_ptr<JobStore> store,
                       std::unique_ptr<ServiceClients> clients, metrics::Registry* registry)
    : config_(config),
      store_(std::move(store)),
      clients_(std::move(clients)),
      metrics_(std::make_unique<JobMetrics>(*registry)) {
  env_.clients = clients_.get();
  env_.artifact_root = config_.artifact_root;
  env_.recorded_accuracy = [this](const std::string& job_id) -> std::optional<double> {
    absl::StatusOr<v1::Job> job = store_->Get(job_id);
    if (!job.ok() || job->report().students().empty()) return std::nullopt;
    return job->report().students(0).test_accuracy();
  };
}

JobManager::~JobManager() { Shutdown(); }

std::shared_ptr<JobExecution> JobManager::Track(v1::Job job) {
  const std::string id = job.job_id();
  auto exec = std::make_shared<JobExecution>(
      std::move(job),
      [this](const v1::Job& j) {
        absl::Status saved = store_->Save(j);
        if (!saved.ok()) logging::Error("cannot save job", {{"job", j.job_id()}, {"error", std::string(saved.message())}});
        return saved;
      },
      [this](const v1::Job& before, const v1::Job& after) { metrics_->Changed(before, after); });
  active_[id] = exec;
  return exec;
}

std::shared_ptr<JobExecution> JobManager::Find(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(job_id);
  return it == active_.end() ? nullptr : it->second;
}

std::string JobManager::NewJobId() const {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return strings::Cat("job-", absl::FormatTime("%Y%m%d", absl::Now(), absl::UTCTimeZone()), "-",
                      absl::StrFormat("%06x", rng() & 0xffffff));
}

absl::StatusOr<std::pair<v1::Job, bool>> JobManager::Submit(const v1::SubmitJobRequest& request) {
  absl::StatusOr<std::pair<v1::Job, bool>> submitted = DoSubmit(request);
  metrics_->Submitted(!submitted.ok() ? "rejected" : submitted->second ? "created" : "existing");
  return submitted;
}

absl::StatusOr<std::pair<v1::Job, bool>> JobManager::DoSubmit(const v1::SubmitJobRequest& request) {
  if (request.client_request_id().empty() || request.client_request_id().size() > 128) {
    return absl::InvalidArgumentError(strings::Cat("client_request_id: must be 1-128 bytes, got ",
                                                   request.client_request_id().size()));
  }
  RETURN_IF_ERROR(ValidateJobSpec(request.spec()));
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return absl::UnavailableError("the coordinator is shutting down");
  ASSIGN_OR_RETURN(std::optional<v1::Job> existing, store_->FindByRequestId(request.client_request_id()));
  if (existing) {
    if (!google::protobuf::util::MessageDifferencer::Equals(existing->spec(), request.spec())) {
      return absl::AlreadyExistsError(strings::Cat("client_request_id: \"", request.client_request_id(),
                                                   "\" already created job ", existing->job_id(),
                                                   " with a different spec"));
    }
    if (auto it = active_.find(existing->job_id()); it != active_.end()) return std::make_pair(it->second->Snapshot(), false);
    return std::make_pair(*existing, false);
  }
  v1::Job job;
  for (int attempt = 0;; ++attempt) {
    job = NewJob(NewJobId(), request.client_request_id(), request.spec(), absl::Now());
    absl::Status created = store_->Create(job);
    if (created.ok()) break;
    // A job id drawn twice (1 in 16M per day) draws again; anything else is an error.
    if (!absl::IsAlreadyExists(created) || attempt >= 5) return created;
  }
  logging::Info("job submitted", {{"job", job.job_id()}, {"name", job.spec().name()}});
  metrics_->Created(job);
  Track(job);
  queue_.push_back(job.job_id());
  return std::make_pair(job, true);
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id: is required");
  if (std::shared_ptr<JobExecution> exec = Find(job_id)) return exec->Snapshot();
  return store_->Get(job_id);
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(const v1::ListJobsRequest& request) {
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(strings::Cat("page_size: must be in [0, ", kMaxPageSize, "], got ",
                                                   request.page_size()));
  }
  const int page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  int64_t before = 0;
  if (!request.page_token().empty()) {
    // "<state>.<seq>": the filter it was made for, and where the next page starts.
    std::vector<std::string> parts = absl::StrSplit(request.page_token(), '.');
    int state = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &state) || !absl::SimpleAtoi(parts[1], &before) ||
        before <= 0) {
      return absl::InvalidArgumentError("page_token: not a token from ListJobs");
    }
    if (state != request.state()) {
      return absl::InvalidArgumentError("page_token: was made for a different state filter");
    }
  }
  ASSIGN_OR_RETURN(JobStore::Page page, store_->List(request.state(), page_size, before));
  v1::ListJobsResponse response;
  for (v1::Job& job : page.jobs) {
    // Running jobs: the in-memory copy is the freshest.
    if (std::shared_ptr<JobExecution> exec = Find(job.job_id())) job = exec->Snapshot();
    *response.add_jobs() = std::move(job);
  }
  if (page.next_seq > 0) response.set_next_page_token(strings::Cat(static_cast<int>(request.state()), ".", page.next_seq));
  return response;
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id: is required");
  std::shared_ptr<JobExecution> exec;
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(job_id);
    if (it != active_.end()) exec = it->second;
    if (exec != nullptr && exec->Snapshot().state() == v1::JOB_STATE_QUEUED) {
      // Never started: nothing to stop.
      auto queued = std::find(queue_.begin(), queue_.end(), job_id);
      if (queued != queue_.end()) {
        queue_.erase(queued);
        (void)exec->Update([](v1::Job& job) {
          job.set_state(v1::JOB_STATE_CANCELLED);
          job.set_failure_cause("cancelled by client before it started");
          *job.mutable_end_time() = ToTimestamp(absl::Now());
        });
        active_.erase(job_id);
        return exec->Snapshot();
      }
    }
  }
  if (exec == nullptr) return store_->Get(job_id);  // ended already (or NOT_FOUND)
  const v1::Job job = exec->Snapshot();
  if (IsTerminal(job.state())) return job;
  RETURN_IF_ERROR(exec->Update([](v1::Job& j) { j.set_state(v1::JOB_STATE_CANCELLING); }));
  exec->Stop(StopReason::kCancelled);
  logging::Info("job cancelling", {{"job", job_id}});
  return exec->Snapshot();
}

absl::Status JobManager::Watch(const std::string& job_id, const std::function<bool(const v1::WatchJobResponse&)>& send,
                               const std::function<bool()>& client_gone) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id: is required");
  auto message = [](auto fill) {
    v1::WatchJobResponse response;
    *response.mutable_time() = ToTimestamp(absl::Now());
    fill(response);
    return response;
  };
  std::shared_ptr<JobExecution> exec = Find(job_id);
  if (exec == nullptr) {
    ASSIGN_OR_RETURN(v1::Job job, store_->Get(job_id));
    send(message([&](v1::WatchJobResponse& r) { *r.mutable_job() = job; }));
    return absl::OkStatus();
  }
  uint64_t seen = exec->version();
  v1::Job last = exec->Snapshot();
  if (!send(message([&](v1::WatchJobResponse& r) { *r.mutable_job() = last; }))) return absl::OkStatus();
  while (!IsTerminal(last.state())) {
    if (client_gone()) return absl::OkStatus();
    const uint64_t now = exec->WaitForChange(seen, absl::Seconds(1));
    if (now == seen) continue;
    seen = now;
    if (exec->stop_reason() == StopReason::kShutdown) {
      return absl::UnavailableError("the coordinator is shutting down; the job resumes when it restarts");
    }
    v1::Job job = exec->Snapshot();
    for (int i = 0; i < job.stages_size(); ++i) {
      using google::protobuf::util::MessageDifferencer;
      if (i < last.stages_size() && MessageDifferencer::Equals(job.stages(i), last.stages(i))) continue;
      if (!send(message([&](v1::WatchJobResponse& r) { *r.mutable_stage() = job.stages(i); }))) return absl::OkStatus();
    }
    last = std::move(job);
    if (IsTerminal(last.state())) break;
    absl::SleepFor(kWatchInterval);
  }
  send(message([&](v1::WatchJobResponse& r) { *r.mutable_job() = last; }));
  return absl::OkStatus();
}

void JobManager::WorkerLoop() {
  while (true) {
    std::shared_ptr<JobExecution> exec;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutting_down_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (shutting_down_) return;
      const std::string id = queue_.front();
      queue_.pop_front();
      auto it = active_.find(id);
      if (it == active_.end()) continue;
      exec = it->second;
    }
    RunPipeline(*exec, env_);
    absl::MutexLock lock(&mu_);
    // A finished job is read from the store from now on; an interrupted one stays for the restart.
    if (IsTerminal(exec->Snapshot().state())) active_.erase(exec->job_id());
  }
}

void JobManager::Shutdown() {
  std::vector<std::shared_ptr<JobExecution>> running;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    for (auto& [id, exec] : active_) running.push_back(exec);
  }
  for (auto& exec : running) exec->Stop(StopReason::kShutdown);
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

}  // namespace distill::coordinator
