#ifndef DISTILL_SERVICES_INFERENCE_SERVING_ENGINE_H_
#define DISTILL_SERVICES_INFERENCE_SERVING_ENGINE_H_

// The decoding engine of one loaded model version: a bounded request queue and one scheduler thread that
// runs continuous batching over the student library's KV cache.
//
//   - The scheduler decodes every running sequence one token per step, as one batch. Between steps, queued
//     requests join (encoder run once for the newcomers, their caches concatenated onto the running one,
//     DecoderCache::AppendRows) and finished sequences leave (DecoderCache::RemoveRow); both copy only the
//     rows that come or go.
//   - When nothing is running, the first queued request waits up to `max_wait` for others to arrive, so a
//     burst starts as one batch; a batch never exceeds `max_batch` sequences (1 = no batching).
//   - The queue is bounded: Submit past `max_queue` waiting requests is RESOURCE_EXHAUSTED with a retry
//     hint (RetryHint()).
//   - A request may have several segments (a step-by-step student's "explain: " rationale, then its
//     "predict: " answer); a finished segment re-enters at the front of the queue with the next input.
//   - Each step checks every request's deadline and cancellation; such a request leaves the batch at once
//     and its slot is free for the next step.
//   - Beam search (num_beams > 1) runs as its own batch between steps (student::Generate); its tokens
//     arrive when the search has finished.
//
// Thread-safety: all public methods are thread-safe. Request events are produced on the scheduler thread
// and consumed by any one thread (the RPC handler).

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/counter.h"
#include "common/metrics/gauge.h"
#include "common/metrics/histogram.h"
#include "common/student/model/generation.h"
#include "common/student/student.h"

namespace distill::inference {

// Why a segment stopped.
enum class StopReason { kNone, kEos, kLength };

// One generation request. Created by the caller, handed to Engine::Submit, then observed through
// NextEvent() until a kDone event.
class Request {
 public:
  struct Event {
    enum class Kind { kTokens, kDone };
    Kind kind = Kind::kTokens;
    // kTokens: the segment and the tokens decoded since the previous event of this request.
    int segment = 0;
    std::vector<int> tokens;
  };

  // `segment_inputs`: encoded inputs (EOS included), decoded one after another; at least one, none empty.
  // `options`: decoding options for every segment (max_new_tokens per segment; eos/decoder start from the
  // model). `deadline`: the request fails with DEADLINE_EXCEEDED when a step finds it passed.
  // `stream`: send kTokens events (Predict does not need them).
  Request(std::vector<std::vector<int>> segment_inputs, student::GenerationOptions options, absl::Time deadline,
          bool stream);

  // Asks the engine to drop the request; it ends with CANCELLED at the next step (or at once if queued).
  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // Waits up to `timeout` for the next event; nullopt on timeout. Consecutive token events of one segment
  // that are waiting are merged into one. After kDone there are no more events.
  std::optional<Event> NextEvent(absl::Duration timeout);

  // Valid after the kDone event: the final status, each segment's tokens (EOS not included) and why it
  // stopped, and timings.
  absl::Status status() const;
  const std::vector<std::vector<int>>& outputs() const { return outputs_; }
  const std::vector<StopReason>& finishes() const { return finishes_; }
  int segment_count() const { return static_cast<int>(inputs_.size()); }
  int input_tokens() const;
  absl::Time enqueued_at() const { return enqueued_at_; }
  absl::Time started_at() const { return started_at_; }  // left the queue; InfinitePast if it never did
  absl::Time done_at() const { return done_at_; }

 private:
  friend class Engine;
  void Push(Event event);
  void Complete(absl::Status status);

  const std::vector<std::vector<int>> inputs_;
  const student::GenerationOptions options_;
  const absl::Time deadline_;
  const bool stream_;
  std::atomic<bool> cancelled_{false};

  // Written by the engine only; read by the consumer after kDone (ordered by mu_).
  std::vector<std::vector<int>> outputs_;
  std::vector<StopReason> finishes_;
  absl::Time enqueued_at_ = absl::InfinitePast();
  absl::Time started_at_ = absl::InfinitePast();
  absl::Time done_at_ = absl::InfinitePast();
  std::optional<at::Generator> generator_;  // sampling with a seed: one generator per request

  mutable absl::Mutex mu_;
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

struct EngineOptions {
  // Most sequences decoded together; >= 1 (1 = no batching).
  int max_batch = 32;
  // How long the first request of an idle engine waits for others before decoding starts; >= 0.
  absl::Duration max_wait = absl::Milliseconds(5);
  // Most requests waiting (not yet decoding); >= 1.
  int max_queue = 256;
  // Optional metrics (null = not recorded): sequences per decoding step, tokens decoded, requests waiting.
  metrics::Histogram* batch_size = nullptr;
  metrics::Counter* tokens = nullptr;
  metrics::Gauge* queue_depth = nullptr;
};

class Engine {
 public:
  // `student.model` must be a T5 student (student::T5Student) in eval mode, on the device it is to decode
  // on (the CPU or a GPU; it must not move afterwards); the engine holds it until destroyed. Starts the
  // scheduler thread.
  Engine(student::Student student, EngineOptions options);
  // Shutdown(), then joins the scheduler.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues `request`. RESOURCE_EXHAUSTED with a RetryHint when max_queue requests are waiting;
  // UNAVAILABLE after Shutdown().
  absl::Status Submit(std::shared_ptr<Request> request);

  // Stops accepting requests; those queued or running still finish.
  void Shutdown();
  // Waits until nothing is queued or running.
  void WaitIdle();
  // Requests queued or running.
  int InFlight() const;

  const EngineOptions& options() const { return options_; }
  const student::Student& student() const { return student_; }

 private:
  struct Row;
  void Loop();
  // Takes the next requests to start (blocking while idle); false when shut down and drained.
  bool NextAdmissions(std::vector<std::shared_ptr<Request>>* admit, std::vector<int>* segments);
  void Admit(std::vector<std::shared_ptr<Request>> admit, std::vector<int> segments);
  void AdmitBatch(const std::vector<std::shared_ptr<Request>>& admit, const std::vector<int>& segments,
                  const std::vector<size_t>& batch);
  void RunBeamSearch(const std::shared_ptr<Request>& request, int segment);
  void Step();
  // The request's segment `segment` is over: queue the next one or finish the request.
  void SegmentDone(const std::shared_ptr<Request>& request, int segment);
  void FailRunning(const absl::Status& status);
  // Finishes `request` with `status` and counts it out of running_.
  void FinishRequest(Request& request, absl::Status status);

  const student::Student student_;
  student::T5Model& model_;
  // Where the model's weights are (the CPU or a GPU), fixed for the engine's life; inputs go there.
  const torch::Device device_;
  const EngineOptions options_;

  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  struct Queued {
    std::shared_ptr<Request> request;
    int segment = 0;
  };
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // requests admitted and not finished
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration recent_latency_ ABSL_GUARDED_BY(mu_) = absl::Milliseconds(100);

  // Scheduler thread only.
  std::vector<Row> rows_;
  student::DecoderCache cache_;

  std::thread thread_;
};

// The retry hint attached to a RESOURCE_EXHAUSTED from Submit, if any.
std::optional<absl::Duration> RetryHint(const absl::Status& status);

}  // namespace distill::inference

#endif  // DISTILL_SERVICES_INFERENCE_SERVING_ENGINE_H_
