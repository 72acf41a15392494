#include "services/coordinator/pipeline/job_execution.h"

#include <vector>

namespace distill::coordinator {

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

v1::Job JobExecution::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return job_;
}

absl::Status JobExecution::Update(const std::function<void(v1::Job&)>& mutate) {
  absl::MutexLock lock(&mu_);
  if (observer_ == nullptr) {
    mutate(job_);
  } else {
    const v1::Job before = job_;
    mutate(job_);
    observer_(before, job_);
  }
  ++version_;
  // Saved under the lock so that saves reach the store in the order the changes were made.
  return persist_(job_);
}

uint64_t JobExecution::WaitForChange(uint64_t seen, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return version_ != seen; };
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  return version_;
}

uint64_t JobExecution::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

void JobExecution::Stop(StopReason reason) {
  StopReason expected = StopReason::kNone;
  if (!stop_reason_.compare_exchange_strong(expected, reason)) {
    // A cancel during shutdown still counts as a cancel, so the job ends CANCELLED rather than resuming.
    if (reason == StopReason::kCancelled) stop_reason_.store(reason);
    return;
  }
  std::vector<std::function<void()>> hooks;
  {
    absl::MutexLock lock(&hooks_mu_);
    hooks.assign(hooks_.begin(), hooks_.end());
  }
  for (const auto& hook : hooks) hook();
  // Wake watchers and waiters.
  absl::MutexLock lock(&mu_);
  ++version_;
}

JobExecution::HookRegistration JobExecution::OnStop(std::function<void()> hook) {
  std::list<std::function<void()>>::iterator it;
  {
    absl::MutexLock lock(&hooks_mu_);
    it = hooks_.insert(hooks_.end(), hook);
  }
  if (stopping()) hook();
  return HookRegistration(this, it);
}

JobExecution::HookRegistration::~HookRegistration() {
  if (owner_ == nullptr) return;
  absl::MutexLock lock(&owner_->hooks_mu_);
  owner_->hooks_.erase(it_);
}

}  // namespace distill::coordinator
