#ifndef DISTILL_SERVICES_COORDINATOR_PIPELINE_JOB_EXECUTION_H_
#define DISTILL_SERVICES_COORDINATOR_PIPELINE_JOB_EXECUTION_H_

// One job while the coordinator holds it in memory: the authoritative copy of its distill.v1.Job, saved
// to the store on every change, a change counter that WatchJob streams wait on, and the cancellation
// hooks of the calls its running stage has in flight (a teacher stream, training runs).

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "distill/v1/jobs.pb.h"

namespace distill::coordinator {

// Why a running job is being stopped.
enum class StopReason {
  kNone,
  // CancelJob: the job ends CANCELLED.
  kCancelled,
  // The coordinator is shutting down: the job stays RUNNING in the store and resumes on restart.
  kShutdown,
};

// Whether a job in `state` can change no more.
bool IsTerminal(v1::JobState state);

// Thread-safe.
class JobExecution {
 public:
  using Persist = std::function<absl::Status(const v1::Job&)>;
  // Sees every change, before and after (for metrics); called under the job's lock, so it must not call
  // back into the JobExecution.
  using Observer = std::function<void(const v1::Job& before, const v1::Job& after)>;
  JobExecution(v1::Job job, Persist persist, Observer observer = nullptr)
      : job_id_(job.job_id()), job_(std::move(job)), persist_(std::move(persist)), observer_(std::move(observer)) {}

  v1::Job Snapshot() const;
  const std::string& job_id() const { return job_id_; }

  // Applies `mutate` to the job, saves it, tells the observer and wakes watchers. The save's error is returned (the job in
  // memory keeps the change either way).
  absl::Status Update(const std::function<void(v1::Job&)>& mutate);

  // Waits until the job changed after `seen` (see version()), or `timeout` passed; returns the version now.
  uint64_t WaitForChange(uint64_t seen, absl::Duration timeout) const;
  uint64_t version() const;

  // Stops the running stage: records why and runs every registered hook once.
  void Stop(StopReason reason);
  StopReason stop_reason() const { return stop_reason_.load(); }
  bool stopping() const { return stop_reason_.load() != StopReason::kNone; }

  // Registers `hook` to run when the job is stopped (at once if it already is). The hook is removed
  // when the returned object is destroyed; hooks run without locks held and must not block for long.
  class HookRegistration {
   public:
    HookRegistration(JobExecution* owner, std::list<std::function<void()>>::iterator it) : owner_(owner), it_(it) {}
    HookRegistration(HookRegistration&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)), it_(other.it_) {}
    HookRegistration(const HookRegistration&) = delete;
    ~HookRegistration();

   private:
    JobExecution* owner_;
    std::list<std::function<void()>>::iterator it_;
  };
  HookRegistration OnStop(std::function<void()> hook);

 private:
  const std::string job_id_;
  mutable absl::Mutex mu_;
  v1::Job job_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  const Persist persist_;
  const Observer observer_;

  absl::Mutex hooks_mu_;
  std::list<std::function<void()>> hooks_ ABSL_GUARDED_BY(hooks_mu_);
  std::atomic<StopReason> stop_reason_{StopReason::kNone};
};

}  // namespace distill::coordinator

#endif  // DISTILL_SERVICES_COORDINATOR_PIPELINE_JOB_EXECUTION_H_
