#ifndef DISTILL_SERVICES_TEACHER_GATEWAY_SYNTHETIC_SYNTHETIC_BACKEND_H_
#define DISTILL_SERVICES_TEACHER_GATEWAY_SYNTHETIC_SYNTHETIC_BACKEND_H_

// The `synthetic` teacher backend: the built-in SyntheticTeacher behind the Backend interface, so the
// gateway, its cache and the demo run with no network.
//
// Prompts are read the way an LLM would see them:
//   - few-shot or zero-shot CoT ("Q: ... A: ..." blocks): the question is the text after the last
//     "Q:" up to the "A:" that follows it (the whole prompt when there is no "Q:"); the answer is a
//     rationale ending with "So the answer is N.";
//   - zero-shot CoT answer extraction (a prompt ending with "Therefore, the answer is" or "Therefore,
//     the answer (arabic numerals) is"): the answer is just the number the reasoning in the prompt
//     arrived at and a period ("14."), with no leading space.
// Each choice is deterministic in (question, options.teacher.seed, request.seed, sample index); the
// model name, temperature and top_p do not change the text. Logprobs are not supported (the choices
// carry none).

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "distill/v1/teacher.pb.h"
#include "services/teacher_gateway/backend/backend.h"
#include "services/teacher_gateway/synthetic/synthetic_teacher.h"

namespace distill::teacher {

struct SyntheticBackendOptions {
  // Name requests use to pick this backend (non-empty).
  std::string name = "synthetic";
  // Model reported as the default (non-empty). Requests may name any model; the text is the same.
  std::string default_model = "synthetic-arith";
  // How the teacher answers: error rate and seed.
  SyntheticTeacherOptions teacher;
  // Requests waiting for the worker at most (>= 1); beyond that Complete answers RESOURCE_EXHAUSTED.
  int max_queued_requests = 4096;
  // Reported in info(): requests the gateway may keep in flight (>= 1).
  int max_concurrency = 64;
  // Reported in info() and enforced: longest prompt, in estimated tokens (>= 1).
  int max_prompt_tokens = 8192;
  // Reported in info() and enforced: most samples in one request (>= 1).
  int max_samples_per_example = 64;
  // Time source for request deadlines (CompletionRequest::timeout, counted from Complete()). Not
  // owned; must outlive the backend. Null means Clock::Real().
  Clock* clock = nullptr;
  // How long each request takes to answer (the worker sleeps this long before generating it); 0 = at once.
  absl::Duration latency = absl::ZeroDuration();
};

// Thread-safe. One worker thread runs requests in arrival order and all callbacks.
class SyntheticBackend final : public Backend {
 public:
  // INVALID_ARGUMENT naming the field when `options` is out of range.
  static absl::StatusOr<std::unique_ptr<SyntheticBackend>> Create(SyntheticBackendOptions options);

  // Cancels every request still queued (their callbacks run with CANCELLED) and joins the worker.
  // No Complete() may run concurrently with or after destruction, and a callback must not destroy
  // the backend that runs it.
  ~SyntheticBackend() override;

  const v1::BackendInfo& info() const override { return info_; }

  // Queues the request; `done` later runs on the worker thread with the result, or with
  //   INVALID_ARGUMENT    no sample indices, max_new_tokens < 1, too many samples, a prompt over
  //                       max_prompt_tokens;
  //   RESOURCE_EXHAUSTED  max_queued_requests already waiting;
  //   DEADLINE_EXCEEDED   the request's timeout passed before the worker reached it;
  //   CANCELLED           Cancel() while queued, or the backend was destroyed first.
  uint64_t Complete(CompletionRequest request, CompletionCallback done) override;

  // A request still queued is answered CANCELLED (promptly, ahead of the queue); one already running
  // or finished, or an unknown id, is left alone.
  void Cancel(uint64_t id) override;

  // What Complete() delivers for a valid request, computed on the calling thread. For tools and
  // benchmarks; thread-safe.
  CompletionResult Generate(const CompletionRequest& request) const;

 private:
  struct Item {
    uint64_t id = 0;
    CompletionRequest request;
    CompletionCallback done;
    absl::Time deadline;
    // Not OK: deliver this instead of running the request.
    absl::Status status;
  };

  SyntheticBackend(SyntheticBackendOptions options, v1::BackendInfo info);
  absl::Status Validate(const CompletionRequest& request) const;
  void Run();

  const SyntheticBackendOptions options_;
  const v1::BackendInfo info_;
  const SyntheticTeacher teacher_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  absl::CondVar work_;
  std::list<Item> queue_ ABSL_GUARDED_BY(mu_);
  // Queued items by id, for Cancel().
  std::unordered_map<uint64_t, std::list<Item>::iterator> queued_ ABSL_GUARDED_BY(mu_);
  // Queued items that will run a request (not cancelled or rejected): the bounded part of the queue.
  int runnable_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread worker_;
};

// The question a prompt asks (see the file comment), trimmed of surrounding whitespace.
std::string_view QuestionOfPrompt(std::string_view prompt);

// For a zero-shot CoT answer-extraction prompt (ending with "Therefore, the answer is", optionally
// with a parenthesised note before "is", and trailing whitespace), the text before that cue;
// otherwise nullopt.
std::optional<std::string_view> ReasoningBeforeAnswerCue(std::string_view prompt);

}  // namespace distill::teacher

#endif  // DISTILL_SERVICES_TEACHER_GATEWAY_SYNTHETIC_SYNTHETIC_BACKEND_H_
