#include "services/teacher_gateway/gateway.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "common/logging/logging.h"
#include "common/metrics/builder.h"
#include "common/retry/backoff.h"
#include "common/retry/rate_limiter.h"
#include "common/strings/strings.h"
#include "google/protobuf/util/json_util.h"
#include "services/teacher_gateway/backend/openai_backend.h"
#include "services/teacher_gateway/cache/cache_key.h"
#include "services/teacher_gateway/prompt.h"
#include "services/teacher_gateway/synthetic/synthetic_backend.h"

namespace distill::teacher {

// The metrics every dispatcher and stream of one gateway share.
struct GatewayMetrics {
  explicit GatewayMetrics(metrics::Registry& r)
      : requests(metrics::BuildCounter()
                     .Name("distill_teacher_gateway_backend_requests_total")
                     .Help("Requests sent to teacher backends, by backend and outcome.")
                     .Register(r)),
        latency(metrics::BuildHistogram()
                    .Name("distill_teacher_gateway_backend_request_duration_seconds")
                    .Help("Time from sending a backend request to its outcome.")
                    .Register(r)),
        in_flight(metrics::BuildGauge()
                      .Name("distill_teacher_gateway_backend_requests_in_flight")
                      .Help("Backend requests sent and not yet answered.")
                      .Register(r)),
        retries(metrics::BuildCounter()
                    .Name("distill_teacher_gateway_retries_total")
                    .Help("Backend requests scheduled again after a retryable failure.")
                    .Register(r)),
        tokens(metrics::BuildCounter()
                   .Name("distill_teacher_gateway_tokens_total")
                   .Help("Tokens used by backend requests, by kind (prompt or completion).")
                   .Register(r)),
        cost(metrics::BuildCounter()
                 .Name("distill_teacher_gateway_cost_usd_total")
                 .Help("Estimated money spent on backend requests, in US dollars.")
                 .Register(r)),
        cache_lookups(metrics::BuildCounter()
                          .Name("distill_teacher_gateway_cache_lookups_total")
                          .Help("Response cache lookups by result (hit or miss).")
                          .Register(r)),
        cache_hit_ratio(metrics::BuildGauge()
                            .Name("distill_teacher_gateway_cache_hit_ratio")
                            .Help("Fraction of response cache lookups that hit, since start.")
                            .Register(r)
                            .Add({})),
        samples(metrics::BuildCounter()
                    .Name("distill_teacher_gateway_samples_total")
                    .Help("Samples delivered, by backend and source (backend or cache).")
                    .Register(r)),
        examples_failed(metrics::BuildCounter()
                            .Name("distill_teacher_gateway_examples_failed_total")
                            .Help("Examples that ended with an error, by reason.")
                            .Register(r)),
        cache_write_failures(metrics::BuildCounter()
                                 .Name("distill_teacher_gateway_cache_write_failures_total")
                                 .Help("Samples delivered but not cached because the cache write failed.")
                                 .Register(r)
                                 .Add({})),
        streams_active(metrics::BuildGauge()
                           .Name("distill_teacher_gateway_streams_active")
                           .Help("GenerateRationales streams open.")
                           .Register(r)
                           .Add({})),
        hits(cache_lookups.Add({{"result", "hit"}})),
        misses(cache_lookups.Add({{"result", "miss"}})) {}

  void CacheLookups(int64_t hit, int64_t miss) {
    hits.Increment(static_cast<double>(hit));
    misses.Increment(static_cast<double>(miss));
    const double total = hits.Value() + misses.Value();
    if (total > 0) cache_hit_ratio.Set(hits.Value() / total);
  }

  metrics::Family<metrics::Counter>& requests;
  metrics::Family<metrics::Histogram>& latency;
  metrics::Family<metrics::Gauge>& in_flight;
  metrics::Family<metrics::Counter>& retries;
  metrics::Family<metrics::Counter>& tokens;
  metrics::Family<metrics::Counter>& cost;
  metrics::Family<metrics::Counter>& cache_lookups;
  metrics::Gauge& cache_hit_ratio;
  metrics::Family<metrics::Counter>& samples;
  metrics::Family<metrics::Counter>& examples_failed;
  metrics::Counter& cache_write_failures;
  metrics::Gauge& streams_active;
  metrics::Counter& hits;
  metrics::Counter& misses;
};

namespace {

enum class Stage {
  kFewShot,    // one few-shot CoT request yields complete samples
  kReasoning,  // zero-shot CoT, first prompt ("Let's think step by step.")
  kAnswer,     // zero-shot CoT, answer extraction for one sample
};

std::string_view OutcomeLabel(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "ok";
    case absl::StatusCode::kResourceExhausted:
      return "rate_limited";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kDeadlineExceeded:
      return "timeout";
    case absl::StatusCode::kFailedPrecondition:
      return "refused";
    case absl::StatusCode::kCancelled:
      return "cancelled";
    default:
      return "rejected";
  }
}

bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded;
}

v1::ExampleErrorReason ReasonFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kResourceExhausted:
      return v1::EXAMPLE_ERROR_REASON_RATE_LIMITED;
    case absl::StatusCode::kDeadlineExceeded:
      return v1::EXAMPLE_ERROR_REASON_DEADLINE_EXCEEDED;
    case absl::StatusCode::kFailedPrecondition:
      return v1::EXAMPLE_ERROR_REASON_CONTENT_REFUSED;
    case absl::StatusCode::kCancelled:
      return v1::EXAMPLE_ERROR_REASON_CANCELLED;
    default:
      return v1::EXAMPLE_ERROR_REASON_BACKEND_ERROR;
  }
}

// The canonical gRPC code of each reason (see common.proto).
absl::StatusCode CodeFor(v1::ExampleErrorReason reason) {
  switch (reason) {
    case v1::EXAMPLE_ERROR_REASON_INVALID_EXAMPLE:
    case v1::EXAMPLE_ERROR_REASON_MALFORMED_RECORD:
    case v1::EXAMPLE_ERROR_REASON_PROMPT_TOO_LONG:
      return absl::StatusCode::kInvalidArgument;
    case v1::EXAMPLE_ERROR_REASON_BUDGET_EXCEEDED:
      return absl::StatusCode::kResourceExhausted;
    case v1::EXAMPLE_ERROR_REASON_RATE_LIMITED:
    case v1::EXAMPLE_ERROR_REASON_BACKEND_ERROR:
      return absl::StatusCode::kUnavailable;
    case v1::EXAMPLE_ERROR_REASON_DEADLINE_EXCEEDED:
      return absl::StatusCode::kDeadlineExceeded;
    case v1::EXAMPLE_ERROR_REASON_CANCELLED:
      return absl::StatusCode::kCancelled;
    case v1::EXAMPLE_ERROR_REASON_CONTENT_REFUSED:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kUnknown;
  }
}

std::string_view ReasonLabel(v1::ExampleErrorReason reason) {
  switch (reason) {
    case v1::EXAMPLE_ERROR_REASON_INVALID_EXAMPLE:
      return "invalid_example";
    case v1::EXAMPLE_ERROR_REASON_MALFORMED_RECORD:
      return "malformed_record";
    case v1::EXAMPLE_ERROR_REASON_PROMPT_TOO_LONG:
      return "prompt_too_long";
    case v1::EXAMPLE_ERROR_REASON_BUDGET_EXCEEDED:
      return "budget_exceeded";
    case v1::EXAMPLE_ERROR_REASON_RATE_LIMITED:
      return "rate_limited";
    case v1::EXAMPLE_ERROR_REASON_BACKEND_ERROR:
      return "backend_error";
    case v1::EXAMPLE_ERROR_REASON_DEADLINE_EXCEEDED:
      return "deadline_exceeded";
    case v1::EXAMPLE_ERROR_REASON_CANCELLED:
      return "cancelled";
    case v1::EXAMPLE_ERROR_REASON_CONTENT_REFUSED:
      return "content_refused";
    default:
      return "unknown";
  }
}

std::string LogprobsToJson(const std::vector<v1::TokenLogprob>& logprobs) {
  if (logprobs.empty()) return "";
  v1::TeacherSample holder;
  for (const auto& l : logprobs) *holder.add_logprobs() = l;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(holder, &json);
  return json;
}

void LogprobsFromJson(const std::string& json, v1::TeacherSample* sample) {
  if (json.empty()) return;
  v1::TeacherSample holder;
  if (google::protobuf::util::JsonStringToMessage(json, &holder).ok())
    *sample->mutable_logprobs() = holder.logprobs();
}

}  // namespace

// A backend with its config, price list and dispatcher.
struct Gateway::BackendSlot {
  BackendConfig config;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Dispatcher> dispatcher;

  double Cost(const std::string& model, int64_t prompt_tokens, int64_t completion_tokens) const {
    auto it = config.prices.find(model);
    if (it == config.prices.end()) return 0;
    return (static_cast<double>(prompt_tokens) * it->second.prompt +
            static_cast<double>(completion_tokens) * it->second.completion) /
           1e6;
  }
};

// One unit of work for a dispatcher: one backend request.
struct Work {
  std::shared_ptr<StreamState> stream;
  std::string example_id;
  Stage stage = Stage::kFewShot;
  std::string prompt;
  std::vector<int> sample_indices;
  // kAnswer: the reasoning of the one sample this request extracts the answer for.
  std::string reasoning;
  // Retryable failures so far.
  int failures = 0;
  int64_t estimated_prompt_tokens = 0;
  // Rate-limiter tokens taken for this request: prompt + max completion.
  int64_t estimated_tokens = 0;
  // Most this request can cost, reserved against the stream's budget while in flight.
  double estimated_cost = 0;
};

struct ExampleState {
  v1::Example example;
  std::string question;
  std::string prompt;  // few-shot or first zero-shot prompt
  int remaining = 0;
  int delivered = 0;
  int attempts = 0;
};

struct StreamState {
  // Fixed at open.
  const Gateway::BackendSlot* backend = nullptr;
  const TaskTemplate* tmpl = nullptr;
  GatewayMetrics* metrics = nullptr;
  ResponseCache* cache = nullptr;
  v1::TaskSpec task;
  v1::TeacherOptions options;
  v1::PromptStrategy strategy = v1::PROMPT_STRATEGY_FEW_SHOT_COT;
  std::string model;
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<uint64_t> seed;
  int max_new_tokens = 256;
  int n = 1;
  int max_pending = 1;
  absl::Time started;
  Gateway::Emit emit;

  absl::Mutex mu;
  absl::CondVar changed;  // an example ended, or the stream was cancelled
  std::set<std::string> seen_ids ABSL_GUARDED_BY(mu);
  std::map<std::string, ExampleState> open ABSL_GUARDED_BY(mu);  // examples that have not ended
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  bool finished ABSL_GUARDED_BY(mu) = false;
  double spent_usd ABSL_GUARDED_BY(mu) = 0;
  double reserved_usd ABSL_GUARDED_BY(mu) = 0;
  v1::TeacherStreamSummary summary ABSL_GUARDED_BY(mu);
  std::map<v1::ExampleErrorReason, int64_t> errors ABSL_GUARDED_BY(mu);

  CacheKeyParts KeyParts(const std::string& prompt, int sample_index) const {
    CacheKeyParts parts;
    parts.backend = backend->config.name;
    parts.model = model;
    parts.prompt = prompt;
    parts.temperature = temperature;
    parts.top_p = top_p;
    parts.seed = seed;
    parts.max_new_tokens = max_new_tokens;
    parts.stop = std::vector<std::string>(options.sampling().stop().begin(), options.sampling().stop().end());
    parts.logprobs = options.logprobs();
    parts.top_logprobs = options.top_logprobs();
    parts.sample_index = sample_index;
    return parts;
  }

  // Ends `ex` with an error (no-op if it already ended).
  void FailLocked(const std::string& id, v1::ExampleErrorReason reason, std::string_view message,
                  std::string_view field = "") ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = open.find(id);
    if (it == open.end()) return;
    v1::GenerateRationalesResponse r;
    v1::ExampleError* e = r.mutable_error();
    e->set_example_id(id);
    e->set_reason(reason);
    e->set_code(static_cast<int32_t>(CodeFor(reason)));
    e->set_message(std::string(message));
    e->set_field(std::string(field));
    e->set_attempts(it->second.attempts);
    e->set_samples_delivered(it->second.delivered);
    open.erase(it);
    RecordFailureLocked(reason);
    emit(std::move(r));
    changed.SignalAll();
  }

  // An example that never became open (rejected at Submit) still counts as received and failed.
  void RejectLocked(const v1::Example& example, v1::ExampleErrorReason reason, std::string_view message,
                    std::string_view field) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    summary.set_examples_received(summary.examples_received() + 1);
    v1::GenerateRationalesResponse r;
    v1::ExampleError* e = r.mutable_error();
    e->set_example_id(example.id());
    e->set_reason(reason);
    e->set_code(static_cast<int32_t>(CodeFor(reason)));
    e->set_message(std::string(message));
    e->set_field(std::string(field));
    RecordFailureLocked(reason);
    emit(std::move(r));
  }

  void RecordFailureLocked(v1::ExampleErrorReason reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    summary.set_examples_failed(summary.examples_failed() + 1);
    ++errors[reason];
    metrics->examples_failed.Add({{"reason", std::string(ReasonLabel(reason))}}).Increment();
  }

  void DeliverLocked(const std::string& id, v1::TeacherSample sample) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = open.find(id);
    if (it == open.end()) return;
    ExampleState& ex = it->second;
    ex.delivered++;
    summary.set_samples_returned(summary.samples_returned() + 1);
    if (sample.from_cache()) summary.set_samples_from_cache(summary.samples_from_cache() + 1);
    metrics->samples
        .Add({{"backend", backend->config.name}, {"source", sample.from_cache() ? "cache" : "backend"}})
        .Increment();
    v1::GenerateRationalesResponse r;
    *r.mutable_sample() = std::move(sample);
    emit(std::move(r));
    if (--ex.remaining == 0) {
      open.erase(it);
      summary.set_examples_completed(summary.examples_completed() + 1);
      changed.SignalAll();
    }
  }

  v1::TeacherSample MakeSample(const std::string& id, int index, std::string completion,
                               std::string answer_completion) const {
    v1::TeacherSample s;
    s.set_example_id(id);
    s.set_sample_index(index);
    s.set_prompt_strategy(strategy);
    s.set_model(model);
    if (strategy == v1::PROMPT_STRATEGY_ZERO_SHOT_COT) {
      ParsedCompletion reasoning = ParseCompletion(*tmpl, completion);
      s.set_rationale(reasoning.rationale);
      std::string_view answer = answer_completion;
      answer = answer.substr(0, answer.find('\n'));
      std::string trimmed(absl::StripAsciiWhitespace(strings::ToAbsl(answer)));
      while (!trimmed.empty() && trimmed.back() == '.') trimmed.pop_back();
      s.set_answer(trimmed);
    } else {
      ParsedCompletion parsed = ParseCompletion(*tmpl, completion);
      s.set_rationale(parsed.rationale);
      s.set_answer(parsed.answer);
    }
    s.set_completion(std::move(completion));
    s.set_answer_completion(std::move(answer_completion));
    return s;
  }
};

// Sends one backend's requests: at most max_concurrency in flight, within the rate limits, retries
// scheduled by time. Lock order: a stream's mu may be held when calling Enqueue (stream → dispatcher);
// the dispatcher never takes a stream's lock while holding its own.
class Dispatcher {
 public:
  Dispatcher(const Gateway::BackendSlot* slot, Clock* clock, GatewayMetrics* metrics)
      : slot_(slot),
        clock_(clock),
        metrics_(metrics),
        limiter_(
            RateLimiterOptions{.requests_per_minute = static_cast<int64_t>(slot->config.requests_per_minute),
                               .tokens_per_minute = static_cast<int64_t>(slot->config.tokens_per_minute)},
            clock),
        policy_{.initial = slot->config.retry.initial,
                .multiplier = slot->config.retry.multiplier,
                .max = slot->config.retry.max,
                .max_attempts = slot->config.retry.max_attempts},
        in_flight_gauge_(metrics->in_flight.Add({{"backend", slot->config.name}})),
        thread_([this] { Loop(); }) {}

  ~Dispatcher() {
    std::vector<uint64_t> ids;
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
      queue_.clear();
      for (const auto& [seq, request] : in_flight_) {
        if (request.backend_id.has_value()) ids.push_back(*request.backend_id);
      }
      cv_.SignalAll();
    }
    thread_.join();
    for (uint64_t id : ids) slot_->backend->Cancel(id);
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* count) { return *count == 0; }, &in_flight_count_));
  }

  void Enqueue(Work work, absl::Time not_before) {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    queue_.emplace(not_before, std::move(work));
    cv_.Signal();
  }

  // Drops the queued work of `stream`. Its requests in flight are left to finish: their prompts are sent
  // (and billed) already, so their answers go to the cache for the client's next attempt.
  void CancelStream(const StreamState* stream) {
    absl::MutexLock lock(&mu_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      it = it->second.stream.get() == stream ? queue_.erase(it) : std::next(it);
    }
  }

  BackoffPolicy policy() const { return policy_; }

  uint64_t Random() {
    absl::MutexLock lock(&mu_);
    return rng_();
  }

 private:
  struct InFlight {
    const StreamState* stream = nullptr;
    std::optional<uint64_t> backend_id;
  };

  void Loop() {
    while (true) {
      Work work;
      uint64_t seq = 0;
      {
        absl::MutexLock lock(&mu_);
        while (true) {
          if (stop_) return;
          if (queue_.empty() || in_flight_count_ >= slot_->config.max_concurrency) {
            cv_.Wait(&mu_);
            continue;
          }
          const absl::Time now = clock_->Now();
          auto first = queue_.begin();
          if (first->first > now) {
            cv_.WaitWithTimeout(&mu_, first->first - now);
            continue;
          }
          const absl::Duration wait = limiter_.TryAcquire(first->second.estimated_tokens);
          if (wait > absl::ZeroDuration()) {
            cv_.WaitWithTimeout(&mu_, wait);
            continue;
          }
          work = std::move(first->second);
          queue_.erase(first);
          seq = next_seq_++;
          in_flight_[seq] = InFlight{.stream = work.stream.get(), .backend_id = std::nullopt};
          in_flight_count_++;
          in_flight_gauge_.Increment();
          break;
        }
      }
      if (!Admit(work)) {
        absl::MutexLock lock(&mu_);
        limiter_.Refund(work.estimated_tokens);
        in_flight_.erase(seq);
        in_flight_count_--;
        in_flight_gauge_.Decrement();
        cv_.Signal();
        continue;
      }
      Send(seq, std::move(work));
    }
  }

  // Decides, under the stream's lock, whether `work` is still wanted and within budget; fails its
  // example when it is not.
  bool Admit(Work& work) {
    StreamState& s = *work.stream;
    absl::MutexLock lock(&s.mu);
    auto it = s.open.find(work.example_id);
    if (it == s.open.end()) return false;  // the example already ended
    if (s.cancelled) {
      s.FailLocked(work.example_id, v1::EXAMPLE_ERROR_REASON_CANCELLED, "the stream was cancelled");
      return false;
    }
    const double budget = s.options.budget_usd();
    if (budget > 0 && s.spent_usd + s.reserved_usd + work.estimated_cost > budget) {
      if (!s.summary.budget_exhausted()) {
        logging::Warning(
            "teacher budget reached; no more requests for this stream",
            {{"backend", slot_->config.name}, {"budget_usd", budget}, {"spent_usd", s.spent_usd}});
      }
      s.summary.set_budget_exhausted(true);
      s.FailLocked(
          work.example_id, v1::EXAMPLE_ERROR_REASON_BUDGET_EXCEEDED,
          strings::Cat("sending it would pass the budget of ", budget, " USD (spent ", s.spent_usd, ")"));
      return false;
    }
    s.reserved_usd += work.estimated_cost;
    it->second.attempts++;
    s.summary.set_requests_sent(s.summary.requests_sent() + 1);
    return true;
  }

  void Send(uint64_t seq, Work work) {
    const StreamState& s = *work.stream;
    CompletionRequest request;
    request.model = s.model;
    request.prompt = work.prompt;
    request.sample_indices = work.sample_indices;
    request.temperature = s.temperature;
    request.top_p = s.top_p;
    request.seed = s.seed;
    request.max_new_tokens = work.stage == Stage::kAnswer ? std::min(s.max_new_tokens, 32) : s.max_new_tokens;
    request.stop.assign(s.options.sampling().stop().begin(), s.options.sampling().stop().end());
    request.logprobs = s.options.logprobs() && work.stage != Stage::kAnswer;
    request.top_logprobs = s.options.top_logprobs();
    request.timeout = slot_->config.timeout;
    const absl::Time sent = clock_->Now();
    const uint64_t id = slot_->backend->Complete(
        std::move(request),
        [this, seq, sent, work = std::move(work)](absl::StatusOr<CompletionResult> result) mutable {
          OnDone(seq, sent, std::move(work), std::move(result));
        });
    absl::MutexLock lock(&mu_);
    if (auto it = in_flight_.find(seq); it != in_flight_.end()) it->second.backend_id = id;
  }

  void OnDone(uint64_t seq, absl::Time sent, Work work, absl::StatusOr<CompletionResult> result);

  const Gateway::BackendSlot* const slot_;
  Clock* const clock_;
  GatewayMetrics* const metrics_;
  RateLimiter limiter_;
  const BackoffPolicy policy_;
  metrics::Gauge& in_flight_gauge_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  std::multimap<absl::Time, Work> queue_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);
  int in_flight_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){0x5eedULL};
  // The first failed cache write is logged; later ones only move the metric.
  std::atomic<bool> cache_write_warned_{false};
  std::thread thread_;
};

void Dispatcher::OnDone(uint64_t seq, absl::Time sent, Work work, absl::StatusOr<CompletionResult> result) {
  const std::string& backend = slot_->config.name;
  metrics_->latency.Add({{"backend", backend}}, metrics::DefaultLatencyBuckets())
      .Observe(absl::ToDoubleSeconds(clock_->Now() - sent));
  metrics_->requests
      .Add({{"backend", backend}, {"outcome", std::string(OutcomeLabel(result.status().code()))}})
      .Increment();
  if (result.ok()) {
    limiter_.Adjust(work.estimated_tokens, result->prompt_tokens + result->completion_tokens);
    metrics_->tokens.Add({{"backend", backend}, {"kind", "prompt"}})
        .Increment(static_cast<double>(result->prompt_tokens));
    metrics_->tokens.Add({{"backend", backend}, {"kind", "completion"}})
        .Increment(static_cast<double>(result->completion_tokens));
  }

  StreamState& s = *work.stream;
  {
    absl::MutexLock lock(&s.mu);
    s.reserved_usd -= work.estimated_cost;
    if (result.ok()) {
      const double cost = slot_->Cost(s.model, result->prompt_tokens, result->completion_tokens);
      s.spent_usd += cost;
      metrics_->cost.Add({{"backend", backend}}).Increment(cost);
      v1::Usage* usage = s.summary.mutable_usage();
      usage->set_prompt_tokens(usage->prompt_tokens() + result->prompt_tokens);
      usage->set_completion_tokens(usage->completion_tokens() + result->completion_tokens);
      usage->set_cost_usd(usage->cost_usd() + cost);
    }
    const size_t n = work.sample_indices.size();
    // Usage of a multi-sample request: the prompt is shared evenly, completions count their own.
    const int64_t prompt_share = result.ok() ? result->prompt_tokens / static_cast<int64_t>(n) : 0;
    const int64_t completion_share = result.ok() ? result->completion_tokens / static_cast<int64_t>(n) : 0;
    if (result.ok()) {
      // Cached even when the example already ended (its stream was cancelled, e.g. a client that crashed):
      // the answer is paid for, and the client asking again must not pay twice.
      for (size_t i = 0; i < n && i < result->choices.size(); ++i) {
        const CompletionChoice& choice = result->choices[i];
        CachedCompletion cached;
        cached.completion = choice.text;
        cached.finish_reason = choice.finish_reason;
        cached.logprobs_json = LogprobsToJson(choice.logprobs);
        cached.prompt_tokens = prompt_share;
        cached.completion_tokens = completion_share;
        cached.backend = backend;
        cached.model = s.model;
        cached.created = clock_->Now();
        if (absl::Status put = s.cache->Put(CacheKey(s.KeyParts(work.prompt, work.sample_indices[i])), cached);
            !put.ok()) {
          metrics_->cache_write_failures.Increment();
          if (!cache_write_warned_.exchange(true)) {
            logging::Warning("response cache write failed; samples are delivered but not cached",
                             {{"error", put}});
          }
        }
      }
    }
    if (s.open.count(work.example_id) == 0) {
      // The example already ended (failed or cancelled): nothing more to deliver.
    } else if (result.ok()) {
      for (size_t i = 0; i < n && i < result->choices.size(); ++i) {
        CompletionChoice& choice = result->choices[i];
        const int index = work.sample_indices[i];
        if (work.stage == Stage::kReasoning) {
          Work answer;
          answer.stream = work.stream;
          answer.example_id = work.example_id;
          answer.stage = Stage::kAnswer;
          answer.prompt = RenderAnswerExtractionPrompt(*s.tmpl, work.prompt, choice.text);
          answer.sample_indices = {index};
          answer.reasoning = choice.text;
          answer.estimated_prompt_tokens = EstimateTokens(answer.prompt);
          answer.estimated_tokens = answer.estimated_prompt_tokens + 32;
          answer.estimated_cost = slot_->Cost(s.model, answer.estimated_prompt_tokens, 32);
          Enqueue(std::move(answer), clock_->Now());
          continue;
        }
        v1::TeacherSample sample = work.stage == Stage::kAnswer
                                       ? s.MakeSample(work.example_id, index, work.reasoning, choice.text)
                                       : s.MakeSample(work.example_id, index, choice.text, "");
        sample.set_finish_reason(choice.finish_reason);
        for (auto& l : choice.logprobs) *sample.add_logprobs() = std::move(l);
        sample.mutable_usage()->set_prompt_tokens(prompt_share);
        sample.mutable_usage()->set_completion_tokens(completion_share);
        sample.mutable_usage()->set_cost_usd(slot_->Cost(s.model, prompt_share, completion_share));
        s.DeliverLocked(work.example_id, std::move(sample));
      }
    } else {
      const absl::Status& status = result.status();
      const int attempts = work.failures + 1;
      if (s.cancelled || status.code() == absl::StatusCode::kCancelled) {
        s.FailLocked(work.example_id, v1::EXAMPLE_ERROR_REASON_CANCELLED, "the stream was cancelled");
      } else if (Retryable(status.code()) && ShouldRetry(policy_, attempts)) {
        work.failures = attempts;
        const absl::Duration delay = NextBackoff(policy_, attempts, RetryAfter(status), Random());
        s.summary.set_retries(s.summary.retries() + 1);
        metrics_->retries.Add({{"backend", backend}}).Increment();
        Enqueue(std::move(work), clock_->Now() + delay);
      } else {
        s.FailLocked(
            work.example_id, ReasonFor(status.code()),
            strings::Cat(status.message(), " (after ", attempts, " attempt", attempts == 1 ? "" : "s", ")"));
      }
    }
  }

  absl::MutexLock lock(&mu_);
  in_flight_.erase(seq);
  in_flight_count_--;
  in_flight_gauge_.Decrement();
  cv_.Signal();
}

// --- RationaleStream ---------------------------------------------------------------------------

RationaleStream::~RationaleStream() {
  bool finished;
  {
    absl::MutexLock lock(&state_->mu);
    finished = state_->finished;
  }
  if (!finished) Cancel();
  state_->metrics->streams_active.Decrement();
}

void RationaleStream::Submit(const v1::Example& example) {
  StreamState& s = *state_;
  const std::string& id = example.id();
  std::string question;
  std::string prompt;
  {
    absl::MutexLock lock(&s.mu);
    auto reject = [&](std::string_view field, std::string_view message) {
      s.RejectLocked(example, v1::EXAMPLE_ERROR_REASON_INVALID_EXAMPLE, strings::Cat(field, ": ", message),
                     field);
    };
    if (id.empty()) return reject("id", "must not be empty");
    if (id.size() > 256) return reject("id", "must be at most 256 bytes");
    if (s.seen_ids.count(id)) return reject("id", strings::Cat("duplicate id \"", id, "\" in this stream"));
    if (absl::StripAsciiWhitespace(strings::ToAbsl(example.input())).empty()) {
      return reject("input", "must not be empty");
    }
    if (example.task_type() != v1::TASK_TYPE_UNSPECIFIED && example.task_type() != s.task.type()) {
      return reject("task_type", "differs from the stream's task type");
    }
    if (s.task.type() == v1::TASK_TYPE_MULTIPLE_CHOICE && example.choices_size() < 2) {
      return reject("choices", "a multiple-choice example needs at least 2 choices");
    }
    if (s.task.type() != v1::TASK_TYPE_MULTIPLE_CHOICE && example.choices_size() > 0) {
      return reject("choices", "only multiple-choice examples have choices");
    }
    s.seen_ids.insert(id);
    question = RenderQuestion(s.task, example, s.options.rationalization());
    prompt = s.strategy == v1::PROMPT_STRATEGY_ZERO_SHOT_COT ? RenderZeroShotPrompt(*s.tmpl, question)
                                                             : RenderFewShotPrompt(*s.tmpl, question);
    const int64_t tokens = EstimateTokens(prompt);
    if (tokens > s.backend->config.max_prompt_tokens) {
      s.RejectLocked(
          example, v1::EXAMPLE_ERROR_REASON_PROMPT_TOO_LONG,
          strings::Cat("input: the prompt has about ", tokens, " tokens, over the backend's limit of ",
                       s.backend->config.max_prompt_tokens),
          "input");
      return;
    }
    // Backpressure: wait for room before opening the example.
    while (!s.cancelled && static_cast<int>(s.open.size()) >= s.max_pending) s.changed.Wait(&s.mu);
    s.summary.set_examples_received(s.summary.examples_received() + 1);
    ExampleState& ex = s.open[id];
    ex.example = example;
    ex.question = question;
    ex.prompt = prompt;
    ex.remaining = s.n;
    if (s.cancelled) {
      s.FailLocked(id, v1::EXAMPLE_ERROR_REASON_CANCELLED, "the stream was cancelled");
      return;
    }
  }

  // Cache lookups without the stream lock (SQLite I/O).
  std::vector<std::string> keys;
  for (int i = 0; i < s.n; ++i) keys.push_back(CacheKey(s.KeyParts(prompt, i)));
  absl::StatusOr<std::vector<std::optional<CachedCompletion>>> cached = s.cache->GetMany(keys);
  if (!cached.ok()) {
    logging::Warning("response cache read failed; asking the backend", {{"error", cached.status()}});
    cached = std::vector<std::optional<CachedCompletion>>(keys.size());
  }
  // Zero-shot: a cached reasoning step may also have its answer step cached.
  std::vector<std::optional<CachedCompletion>> answers(keys.size());
  std::vector<std::string> answer_prompts(keys.size());
  if (s.strategy == v1::PROMPT_STRATEGY_ZERO_SHOT_COT) {
    std::vector<std::string> answer_keys;
    std::vector<int> which;
    for (int i = 0; i < s.n; ++i) {
      if (!(*cached)[i].has_value()) continue;
      answer_prompts[i] = RenderAnswerExtractionPrompt(*s.tmpl, prompt, (*cached)[i]->completion);
      answer_keys.push_back(CacheKey(s.KeyParts(answer_prompts[i], i)));
      which.push_back(i);
    }
    if (!answer_keys.empty()) {
      auto got = s.cache->GetMany(answer_keys);
      if (got.ok()) {
        for (size_t j = 0; j < which.size(); ++j) answers[which[j]] = std::move((*got)[j]);
      }
    }
  }

  absl::MutexLock lock(&s.mu);
  if (s.open.count(id) == 0) return;
  std::vector<int> missing;
  std::vector<int> missing_answers;
  int64_t hits = 0;
  for (int i = 0; i < s.n; ++i) {
    const std::optional<CachedCompletion>& c = (*cached)[i];
    if (!c.has_value()) {
      missing.push_back(i);
      continue;
    }
    ++hits;
    if (s.strategy == v1::PROMPT_STRATEGY_ZERO_SHOT_COT && !answers[i].has_value()) {
      missing_answers.push_back(i);
      continue;
    }
    v1::TeacherSample sample = s.strategy == v1::PROMPT_STRATEGY_ZERO_SHOT_COT
                                   ? s.MakeSample(id, i, c->completion, answers[i]->completion)
                                   : s.MakeSample(id, i, c->completion, "");
    sample.set_finish_reason(static_cast<v1::FinishReason>(c->finish_reason));
    sample.set_from_cache(true);
    LogprobsFromJson(c->logprobs_json, &sample);
    s.DeliverLocked(id, std::move(sample));
    if (s.open.count(id) == 0) break;
  }
  s.metrics->CacheLookups(hits, static_cast<int64_t>(missing.size()));
  if (s.open.count(id) == 0 || (missing.empty() && missing_answers.empty())) return;
  if (s.summary.budget_exhausted()) {
    s.FailLocked(id, v1::EXAMPLE_ERROR_REASON_BUDGET_EXCEEDED, "the stream's budget is spent");
    return;
  }
  const Gateway::BackendSlot& slot = *s.backend;
  const int per_request = std::max(1, slot.config.max_samples_per_request);
  const int64_t prompt_tokens = EstimateTokens(prompt);
  for (size_t start = 0; start < missing.size(); start += per_request) {
    Work w;
    w.stream = state_;
    w.example_id = id;
    w.stage = s.strategy == v1::PROMPT_STRATEGY_ZERO_SHOT_COT ? Stage::kReasoning : Stage::kFewShot;
    w.prompt = prompt;
    const size_t end = std::min(missing.size(), start + per_request);
    w.sample_indices.assign(missing.begin() + static_cast<long>(start),
                            missing.begin() + static_cast<long>(end));
    const int64_t n = static_cast<int64_t>(w.sample_indices.size());
    w.estimated_prompt_tokens = prompt_tokens;
    w.estimated_tokens = prompt_tokens + n * s.max_new_tokens;
    w.estimated_cost = slot.Cost(s.model, prompt_tokens, n * s.max_new_tokens);
    slot.dispatcher->Enqueue(std::move(w), absl::InfinitePast());
  }
  for (int i : missing_answers) {
    Work w;
    w.stream = state_;
    w.example_id = id;
    w.stage = Stage::kAnswer;
    w.prompt = answer_prompts[i];
    w.sample_indices = {i};
    w.reasoning = (*cached)[i]->completion;
    w.estimated_prompt_tokens = EstimateTokens(w.prompt);
    w.estimated_tokens = w.estimated_prompt_tokens + 32;
    w.estimated_cost = slot.Cost(s.model, w.estimated_prompt_tokens, 32);
    slot.dispatcher->Enqueue(std::move(w), absl::InfinitePast());
  }
}

v1::TeacherStreamSummary RationaleStream::Finish() {
  StreamState& s = *state_;
  absl::MutexLock lock(&s.mu);
  while (!s.open.empty()) s.changed.Wait(&s.mu);
  if (s.finished) return s.summary;
  s.finished = true;
  for (const auto& [reason, count] : s.errors) {
    v1::ExampleErrorCount* c = s.summary.add_errors_by_reason();
    c->set_reason(reason);
    c->set_count(count);
  }
  s.summary.set_duration_seconds(absl::ToDoubleSeconds(absl::Now() - s.started));
  v1::GenerateRationalesResponse r;
  *r.mutable_summary() = s.summary;
  s.emit(std::move(r));
  return s.summary;
}

void RationaleStream::Cancel() {
  StreamState& s = *state_;
  {
    absl::MutexLock lock(&s.mu);
    if (s.cancelled) return;
    s.cancelled = true;
    s.changed.SignalAll();
  }
  s.backend->dispatcher->CancelStream(&s);
  absl::MutexLock lock(&s.mu);
  std::vector<std::string> ids;
  for (const auto& [id, ex] : s.open) ids.push_back(id);
  for (const std::string& id : ids)
    s.FailLocked(id, v1::EXAMPLE_ERROR_REASON_CANCELLED, "the stream was cancelled");
}

// --- CostEstimator -------------------------------------------------------------------------------

struct CostEstimator::Impl {
  std::shared_ptr<StreamState> state;  // configuration only; never dispatched
  v1::EstimateCostResponse response;
  int64_t prompt_tokens = 0;
  int64_t requests = 0;
  int64_t samples_to_send = 0;
  double mean_completion_tokens = 0;
};

void CostEstimator::Add(const v1::Example& example) {
  Impl& impl = *impl_;
  const StreamState& s = *impl.state;
  impl.response.set_examples(impl.response.examples() + 1);
  const std::string question = RenderQuestion(s.task, example, s.options.rationalization());
  const std::string prompt = s.strategy == v1::PROMPT_STRATEGY_ZERO_SHOT_COT
                                 ? RenderZeroShotPrompt(*s.tmpl, question)
                                 : RenderFewShotPrompt(*s.tmpl, question);
  const int64_t tokens = EstimateTokens(prompt);
  if (tokens > s.backend->config.max_prompt_tokens) {
    impl.response.set_examples_prompt_too_long(impl.response.examples_prompt_too_long() + 1);
    return;
  }
  std::vector<std::string> keys;
  for (int i = 0; i < s.n; ++i) keys.push_back(CacheKey(s.KeyParts(prompt, i)));
  int64_t missing = s.n;
  if (auto cached = s.cache->GetMany(keys); cached.ok()) {
    missing = std::count_if(cached->begin(), cached->end(), [](const auto& c) { return !c.has_value(); });
  }
  impl.response.set_samples_cached(impl.response.samples_cached() + (s.n - missing));
  impl.samples_to_send += missing;
  const int per_request = std::max(1, s.backend->config.max_samples_per_request);
  const int64_t requests = (missing + per_request - 1) / per_request;
  impl.requests += requests;
  impl.prompt_tokens += requests * tokens;
  if (s.strategy == v1::PROMPT_STRATEGY_ZERO_SHOT_COT) {
    // One answer-extraction request per sample: the first prompt plus the reasoning again.
    impl.prompt_tokens += missing * (tokens + static_cast<int64_t>(impl.mean_completion_tokens));
  }
}

v1::EstimateCostResponse CostEstimator::Finish() {
  Impl& impl = *impl_;
  const StreamState& s = *impl.state;
  const auto& slot = *s.backend;
  impl.response.set_samples_to_send(impl.samples_to_send);
  const int64_t expected_completion =
      static_cast<int64_t>(std::llround(impl.mean_completion_tokens)) * impl.samples_to_send;
  const int64_t max_completion = static_cast<int64_t>(s.max_new_tokens) * impl.samples_to_send;
  v1::Usage* expected = impl.response.mutable_expected();
  expected->set_prompt_tokens(impl.prompt_tokens);
  expected->set_completion_tokens(expected_completion);
  expected->set_cost_usd(slot.Cost(s.model, impl.prompt_tokens, expected_completion));
  v1::Usage* maximum = impl.response.mutable_maximum();
  maximum->set_prompt_tokens(impl.prompt_tokens);
  maximum->set_completion_tokens(max_completion);
  maximum->set_cost_usd(slot.Cost(s.model, impl.prompt_tokens, max_completion));
  const double budget = s.options.budget_usd();
  impl.response.set_within_budget(budget <= 0 || expected->cost_usd() <= budget);
  return impl.response;
}

// --- Gateway -------------------------------------------------------------------------------------

namespace {
absl::StatusOr<std::string> ReadApiKey(const BackendConfig& b, size_t index) {
  const std::string field = strings::Cat("teacher_gateway.backends[", index, "]");
  if (!b.api_key_file.empty()) {
    std::ifstream in(b.api_key_file, std::ios::binary);
    if (!in)
      return absl::InvalidArgumentError(
          strings::Cat(field, ".api_key_file: cannot read \"", b.api_key_file, "\""));
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::string key(absl::StripAsciiWhitespace(buffer.str()));
    if (key.empty())
      return absl::InvalidArgumentError(
          strings::Cat(field, ".api_key_file: \"", b.api_key_file, "\" is empty"));
    return key;
  }
  if (!b.api_key_env.empty()) {
    const char* value = std::getenv(b.api_key_env.c_str());
    if (value == nullptr || absl::StripAsciiWhitespace(value).empty()) {
      return absl::InvalidArgumentError(
          strings::Cat(field, ".api_key_env: environment variable ", b.api_key_env, " is unset or empty"));
    }
    return std::string(absl::StripAsciiWhitespace(value));
  }
  return std::string();
}

v1::BackendInfo InfoFor(const BackendConfig& b) {
  v1::BackendInfo info;
  info.set_name(b.name);
  info.set_kind(b.kind);
  info.set_default_model(b.model);
  info.set_base_url(b.base_url);
  info.set_endpoint(b.kind == v1::BACKEND_KIND_OPENAI ? b.endpoint : v1::OPENAI_ENDPOINT_UNSPECIFIED);
  for (const auto& [model, price] : b.prices) {
    v1::ModelPrice* p = info.add_prices();
    p->set_model(model);
    p->set_usd_per_million_prompt_tokens(price.prompt);
    p->set_usd_per_million_completion_tokens(price.completion);
  }
  info.set_max_concurrency(b.max_concurrency);
  info.set_requests_per_minute(b.requests_per_minute);
  info.set_tokens_per_minute(b.tokens_per_minute);
  info.set_max_prompt_tokens(b.max_prompt_tokens);
  info.set_max_samples_per_example(b.max_samples_per_example);
  info.set_supports_logprobs(b.supports_logprobs);
  return info;
}
}  // namespace

absl::StatusOr<std::unique_ptr<ResponseCache>> OpenGatewayCache(const std::string& path) {
  ResponseCacheOptions options;
  options.max_put_wait = absl::ZeroDuration();
  return ResponseCache::Open(path, options);
}

Gateway::Gateway(TeacherGatewayConfig config, GatewayDeps deps) : config_(std::move(config)), deps_(deps) {}

Gateway::~Gateway() {
  // Dispatchers first: they cancel in-flight requests and wait for their callbacks.
  for (auto& [name, slot] : backends_) slot->dispatcher.reset();
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(const TeacherGatewayConfig& config,
                                                         GatewayDeps deps) {
  std::map<std::string, std::unique_ptr<Backend>> backends;
  for (size_t i = 0; i < config.backends.size(); ++i) {
    const BackendConfig& b = config.backends[i];
    if (b.kind == v1::BACKEND_KIND_OPENAI) {
      if (deps.http == nullptr)
        return absl::FailedPreconditionError("an openai backend needs an HTTP client");
      absl::StatusOr<std::string> key = ReadApiKey(b, i);
      if (!key.ok()) return key.status();
      backends[b.name] = std::make_unique<OpenAiBackend>(InfoFor(b), std::move(*key), deps.http);
    } else {
      absl::StatusOr<std::unique_ptr<SyntheticBackend>> synthetic =
          SyntheticBackend::Create(SyntheticBackendOptions{
              .name = b.name,
              .default_model = b.model.empty() ? "synthetic-arith" : b.model,
              .teacher = SyntheticTeacherOptions{.error_rate = b.error_rate, .seed = b.seed},
              .max_concurrency = b.max_concurrency,
              .max_prompt_tokens = b.max_prompt_tokens,
              .max_samples_per_example = b.max_samples_per_example,
              .clock = deps.clock,
              .latency = b.latency});
      if (!synthetic.ok()) return synthetic.status();
      backends[b.name] = std::move(*synthetic);
    }
  }
  return CreateWithBackends(config, std::move(backends), deps);
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::CreateWithBackends(
    const TeacherGatewayConfig& config, std::map<std::string, std::unique_ptr<Backend>> backends,
    GatewayDeps deps) {
  if (deps.registry == nullptr || deps.cache == nullptr) {
    return absl::InvalidArgumentError("the gateway needs a metrics registry and a response cache");
  }
  std::unique_ptr<Gateway> gateway(new Gateway(config, deps));
  auto metrics = std::make_shared<GatewayMetrics>(*deps.registry);
  for (const BackendConfig& b : config.backends) {
    auto it = backends.find(b.name);
    if (it == backends.end())
      return absl::InvalidArgumentError(strings::Cat("no backend built for \"", b.name, "\""));
    auto slot = std::make_unique<BackendSlot>();
    slot->config = b;
    slot->backend = std::move(it->second);
    slot->dispatcher = std::make_unique<Dispatcher>(slot.get(), deps.clock, metrics.get());
    gateway->backends_[b.name] = std::move(slot);
  }
  gateway->metrics_ = std::move(metrics);
  return gateway;
}

v1::ListBackendsResponse Gateway::ListBackends() const {
  v1::ListBackendsResponse response;
  for (const auto& [name, slot] : backends_) *response.add_backends() = slot->backend->info();
  for (const auto& [name, t] : config_.tasks) response.add_task_templates(name);
  return response;
}

absl::StatusOr<const Gateway::BackendSlot*> Gateway::Validate(const v1::TeacherStreamConfig& config) const {
  const v1::TeacherOptions& o = config.options();
  const v1::TaskSpec& task = config.task();
  auto bad = [](std::string_view field, std::string_view message) {
    return absl::InvalidArgumentError(strings::Cat(field, ": ", message));
  };
  if (task.type() == v1::TASK_TYPE_UNSPECIFIED) return bad("config.task.type", "is required");
  if (task.type() == v1::TASK_TYPE_CLASSIFICATION && task.labels_size() < 2) {
    return bad("config.task.labels", "a classification task needs at least 2 labels");
  }
  if (task.type() != v1::TASK_TYPE_CLASSIFICATION && task.labels_size() > 0) {
    return bad("config.task.labels", "only classification tasks have labels");
  }
  if (o.backend().empty()) return bad("config.options.backend", "is required");
  auto it = backends_.find(o.backend());
  if (it == backends_.end()) {
    std::string names;
    for (const auto& [name, slot] : backends_) strings::Append(&names, names.empty() ? "" : ", ", name);
    return bad("config.options.backend",
               strings::Cat("unknown backend \"", o.backend(), "\"; configured: ", names));
  }
  const BackendConfig& b = it->second->config;
  if (o.samples_per_example() < 1 || o.samples_per_example() > b.max_samples_per_example) {
    return bad(
        "config.options.samples_per_example",
        strings::Cat("must be in [1, ", b.max_samples_per_example, "], got ", o.samples_per_example()));
  }
  const v1::SamplingParams& sp = o.sampling();
  if (sp.has_temperature() && (sp.temperature() < 0 || sp.temperature() > 2)) {
    return bad("config.options.sampling.temperature",
               strings::Cat("must be in [0, 2], got ", sp.temperature()));
  }
  if (sp.has_top_p() && (sp.top_p() <= 0 || sp.top_p() > 1)) {
    return bad("config.options.sampling.top_p", strings::Cat("must be in (0, 1], got ", sp.top_p()));
  }
  if (sp.top_k() != 0) return bad("config.options.sampling.top_k", "is not supported by teacher backends");
  if (sp.max_new_tokens() < 0) return bad("config.options.sampling.max_new_tokens", "must be >= 0");
  if (sp.stop_size() > 4) return bad("config.options.sampling.stop", "at most 4 stop sequences");
  for (const std::string& stop : sp.stop()) {
    if (stop.empty() || stop.size() > 64)
      return bad("config.options.sampling.stop", "each must be 1-64 bytes");
  }
  if (o.budget_usd() < 0) return bad("config.options.budget_usd", "must be >= 0 (0 = no cap)");
  if (o.top_logprobs() < 0 || o.top_logprobs() > 20)
    return bad("config.options.top_logprobs", "must be in [0, 20]");
  if (o.top_logprobs() > 0 && !o.logprobs()) return bad("config.options.top_logprobs", "requires logprobs");
  if (o.logprobs() && !b.supports_logprobs) {
    return bad("config.options.logprobs",
               strings::Cat("backend \"", b.name, "\" does not return log-probabilities"));
  }
  if (!task.name().empty() && config_.tasks.count(task.name()) == 0) {
    std::string names;
    for (const auto& [name, t] : config_.tasks) strings::Append(&names, names.empty() ? "" : ", ", name);
    return bad("config.task.name",
               strings::Cat("no prompt template \"", task.name(), "\"; configured: ", names));
  }
  return it->second.get();
}

namespace {
const TaskTemplate* FindTemplate(const TeacherGatewayConfig& config, const v1::TaskSpec& task) {
  static const TaskTemplate* empty = new TaskTemplate();
  std::vector<std::string> names;
  if (!task.name().empty()) names.push_back(task.name());
  switch (task.type()) {
    case v1::TASK_TYPE_NUMERIC:
      names.push_back("numeric");
      break;
    case v1::TASK_TYPE_MULTIPLE_CHOICE:
      names.push_back("multiple_choice");
      break;
    case v1::TASK_TYPE_CLASSIFICATION:
      names.push_back("classification");
      break;
    case v1::TASK_TYPE_FREE_TEXT:
      names.push_back("free_text");
      break;
    default:
      break;
  }
  names.push_back("default");
  for (const std::string& name : names) {
    if (auto it = config.tasks.find(name); it != config.tasks.end()) return &it->second;
  }
  return empty;
}
}  // namespace

absl::StatusOr<std::unique_ptr<RationaleStream>> Gateway::OpenStream(const v1::TeacherStreamConfig& config,
                                                                     Emit emit) {
  absl::StatusOr<const BackendSlot*> slot = Validate(config);
  if (!slot.ok()) return slot.status();
  auto state = std::make_shared<StreamState>();
  state->backend = *slot;
  state->tmpl = FindTemplate(config_, config.task());
  state->metrics = metrics_.get();
  state->cache = deps_.cache;
  state->task = config.task();
  state->options = config.options();
  state->strategy = config.options().prompt_strategy() == v1::PROMPT_STRATEGY_ZERO_SHOT_COT
                        ? v1::PROMPT_STRATEGY_ZERO_SHOT_COT
                        : v1::PROMPT_STRATEGY_FEW_SHOT_COT;
  const BackendConfig& b = (*slot)->config;
  const v1::SamplingParams& sp = config.options().sampling();
  state->model = config.options().model().empty() ? b.model : config.options().model();
  state->temperature = sp.has_temperature() ? sp.temperature() : b.temperature;
  if (sp.has_top_p()) state->top_p = sp.top_p();
  if (sp.has_seed()) state->seed = sp.seed();
  state->max_new_tokens = sp.max_new_tokens() > 0 ? sp.max_new_tokens() : b.max_new_tokens;
  state->n = config.options().samples_per_example();
  state->max_pending = config_.max_pending_examples;
  state->started = absl::Now();
  state->emit = std::move(emit);
  if (!config.options().model().empty() && b.prices.count(state->model) == 0 && !b.prices.empty()) {
    logging::Warning("model has no configured price; its cost counts as 0",
                     {{"backend", b.name}, {"model", state->model}});
  }
  metrics_->streams_active.Increment();
  return std::unique_ptr<RationaleStream>(new RationaleStream(std::move(state)));
}

absl::StatusOr<std::unique_ptr<CostEstimator>> Gateway::OpenEstimate(const v1::TeacherStreamConfig& config) {
  // Reuses the stream's validation and parameter resolution; the state is never dispatched.
  absl::StatusOr<std::unique_ptr<RationaleStream>> stream =
      OpenStream(config, [](v1::GenerateRationalesResponse) {});
  if (!stream.ok()) return stream.status();
  std::unique_ptr<CostEstimator> estimator(new CostEstimator());
  estimator->impl_ = std::make_shared<CostEstimator::Impl>();
  estimator->impl_->state = (*stream)->state_;
  const StreamState& s = *estimator->impl_->state;
  absl::StatusOr<double> mean = deps_.cache->MeanCompletionTokens(s.backend->config.name, s.model);
  estimator->impl_->mean_completion_tokens = mean.ok() && *mean > 0 ? *mean : s.max_new_tokens / 2.0;
  {
    absl::MutexLock lock(&estimator->impl_->state->mu);
    estimator->impl_->state->finished = true;  // nothing to cancel when the stream object goes
  }
  return estimator;
}

}  // namespace distill::teacher
