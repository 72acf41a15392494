#include "services/inference/serving/engine.h"

#include <algorithm>
#include <string>
#include <utility>

#include "ATen/CPUGeneratorImpl.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "c10/core/InferenceMode.h"
#include "c10/util/Exception.h"
#include "common/logging/logging.h"
#include "common/student/model/student_model.h"

namespace distill::inference {
namespace {

constexpr char kRetryHintUrl[] = "type.distill.dev/retry-after-ms";

student::T5Model& T5Of(const student::Student& student) {
  auto* t5 = dynamic_cast<student::T5Student*>(student.model.get());
  if (t5 == nullptr) {
    // The registry only builds engines for T5 students (it checks the family first).
    logging::Error("inference engine: not a T5 student", {{"family", std::string(student.model->family())}});
    std::abort();
  }
  return t5->t5();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Request

Request::Request(std::vector<std::vector<int>> segment_inputs, student::GenerationOptions options,
                 absl::Time deadline, bool stream)
    : inputs_(std::move(segment_inputs)), options_(options), deadline_(deadline), stream_(stream) {
  outputs_.resize(inputs_.size());
  finishes_.assign(inputs_.size(), StopReason::kNone);
  if (options_.seed.has_value()) generator_ = at::make_generator<at::CPUGeneratorImpl>(*options_.seed);
}

std::optional<Request::Event> Request::NextEvent(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !events_.empty(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return std::nullopt;
  Event event = std::move(events_.front());
  events_.pop_front();
  // Tokens that piled up while the consumer was busy go out as one event (one chunk, one write).
  while (event.kind == Event::Kind::kTokens && !events_.empty() && events_.front().kind == Event::Kind::kTokens &&
         events_.front().segment == event.segment) {
    event.tokens.insert(event.tokens.end(), events_.front().tokens.begin(), events_.front().tokens.end());
    events_.pop_front();
  }
  return event;
}

absl::Status Request::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

int Request::input_tokens() const {
  int total = 0;
  for (const std::vector<int>& input : inputs_) total += static_cast<int>(input.size());
  return total;
}

void Request::Push(Event event) {
  absl::MutexLock lock(&mu_);
  events_.push_back(std::move(event));
}

void Request::Complete(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (done_) return;
  done_ = true;
  done_at_ = absl::Now();
  status_ = std::move(status);
  Event done;
  done.kind = Event::Kind::kDone;
  events_.push_back(std::move(done));
}

std::optional<absl::Duration> RetryHint(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kRetryHintUrl);
  int64_t ms = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &ms)) return std::nullopt;
  return absl::Milliseconds(ms);
}

// ---------------------------------------------------------------------------------------------------------
// Engine

struct Engine::Row {
  std::shared_ptr<Request> request;
  int segment = 0;
  int64_t next_token = 0;  // fed at the next step
};

Engine::Engine(student::Student student, EngineOptions options)
    : student_(std::move(student)),
      model_(T5Of(student_)),
      device_(model_.parameters().front().device()),
      options_(options) {
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() {
  Shutdown();
  thread_.join();
}

absl::Status Engine::Submit(std::shared_ptr<Request> request) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the model version is shutting down");
  if (static_cast<int>(queue_.size()) >= options_.max_queue) {
    // Roughly when a slot frees up: the queue drains max_batch requests per recent request latency.
    const absl::Duration hint = std::max(
        absl::Milliseconds(10), recent_latency_ * (1.0 + static_cast<double>(queue_.size()) / options_.max_batch));
    absl::Status status = absl::ResourceExhaustedError(
        absl::StrCat("request queue full (", queue_.size(), " requests waiting); retry in about ",
                     absl::FormatDuration(absl::Milliseconds(absl::ToInt64Milliseconds(hint)))));
    status.SetPayload(kRetryHintUrl, absl::Cord(absl::StrCat(absl::ToInt64Milliseconds(hint))));
    return status;
  }
  request->enqueued_at_ = absl::Now();
  queue_.push_back({std::move(request), 0});
  ++running_;
  if (options_.queue_depth != nullptr) options_.queue_depth->Increment();
  wake_.Signal();
  return absl::OkStatus();
}

void Engine::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  wake_.Signal();
}

void Engine::WaitIdle() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

int Engine::InFlight() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

void Engine::Loop() {
  for (;;) {
    std::vector<std::shared_ptr<Request>> admit;
    std::vector<int> segments;
    if (!NextAdmissions(&admit, &segments)) return;
    try {
      if (!admit.empty()) Admit(std::move(admit), std::move(segments));
      if (!rows_.empty()) Step();
    } catch (const c10::Error& e) {
      FailRunning(absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace())));
    } catch (const std::exception& e) {
      FailRunning(absl::InternalError(e.what()));
    }
  }
}

bool Engine::NextAdmissions(std::vector<std::shared_ptr<Request>>* admit, std::vector<int>* segments) {
  std::vector<Queued> finished;  // dropped while queued; finished outside the lock
  {
    absl::MutexLock lock(&mu_);
    if (rows_.empty()) {
      auto work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || shutdown_; };
      mu_.Await(absl::Condition(&work));
      if (queue_.empty()) return false;  // shut down and drained
      // Batching window: let a burst gather before the first step.
      if (static_cast<int>(queue_.size()) < options_.max_batch && options_.max_wait > absl::ZeroDuration()) {
        auto full = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return static_cast<int>(queue_.size()) >= options_.max_batch || shutdown_;
        };
        mu_.AwaitWithDeadline(absl::Condition(&full), queue_.front().request->enqueued_at() + options_.max_wait);
      }
    }
    const absl::Time now = absl::Now();
    std::deque<Queued> kept;
    int slots = options_.max_batch - static_cast<int>(rows_.size());
    while (!queue_.empty()) {
      Queued q = std::move(queue_.front());
      queue_.pop_front();
      if (q.request->cancelled() || now >= q.request->deadline_) {
        finished.push_back(std::move(q));
      } else if (slots > 0) {
        --slots;
        admit->push_back(std::move(q.request));
        segments->push_back(q.segment);
      } else {
        kept.push_back(std::move(q));
      }
    }
    queue_ = std::move(kept);
    if (options_.queue_depth != nullptr) options_.queue_depth->Set(static_cast<double>(queue_.size()));
  }
  for (Queued& q : finished) {
    FinishRequest(*q.request, q.request->cancelled() ? absl::CancelledError("request cancelled")
                                                     : absl::DeadlineExceededError("deadline exceeded while queued"));
  }
  return true;
}

void Engine::Admit(std::vector<std::shared_ptr<Request>> admit, std::vector<int> segments) {
  c10::InferenceMode inference;
  const absl::Time now = absl::Now();
  std::vector<size_t> batch;  // indices into admit decoded by continuous batching
  for (size_t i = 0; i < admit.size(); ++i) {
    if (admit[i]->started_at_ == absl::InfinitePast()) admit[i]->started_at_ = now;
    if (admit[i]->options_.num_beams > 1) {
      RunBeamSearch(admit[i], segments[i]);
    } else {
      batch.push_back(i);
    }
  }
  if (batch.empty()) return;
  try {
    AdmitBatch(admit, segments, batch);
  } catch (const c10::Error& e) {
    // Not in rows_ yet, so FailRunning would not reach them.
    for (size_t i : batch) {
      FinishRequest(*admit[i], absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace())));
    }
  }
}

void Engine::AdmitBatch(const std::vector<std::shared_ptr<Request>>& admit, const std::vector<int>& segments,
                        const std::vector<size_t>& batch) {
  size_t width = 0;
  for (size_t i : batch) width = std::max(width, admit[i]->inputs_[segments[i]].size());
  const int64_t n = static_cast<int64_t>(batch.size());
  torch::Tensor ids = torch::zeros({n, static_cast<int64_t>(width)}, torch::kInt64);
  torch::Tensor mask = torch::zeros({n, static_cast<int64_t>(width)}, torch::kInt64);
  for (int64_t r = 0; r < n; ++r) {
    const std::vector<int>& input = admit[batch[r]]->inputs_[segments[batch[r]]];
    int64_t* id_data = ids[r].data_ptr<int64_t>();
    int64_t* mask_data = mask[r].data_ptr<int64_t>();
    for (size_t t = 0; t < input.size(); ++t) {
      id_data[t] = input[t];
      mask_data[t] = 1;
    }
  }
  ids = ids.to(device_);
  mask = mask.to(device_);
  student::DecoderCache fresh = model_.InitCache(model_.Encode(ids, mask), mask);
  if (rows_.empty()) {
    cache_ = std::move(fresh);
  } else {
    cache_.AppendRows(fresh);  // copies only the new rows
  }
  for (size_t i : batch) {
    rows_.push_back({admit[i], segments[i], admit[i]->options_.decoder_start_id});
  }
}

void Engine::RunBeamSearch(const std::shared_ptr<Request>& request, int segment) {
  const std::vector<int>& input = request->inputs_[segment];
  torch::Tensor ids =
      torch::tensor(std::vector<int64_t>(input.begin(), input.end()), torch::kInt64).unsqueeze(0).to(device_);
  absl::StatusOr<std::vector<std::vector<int>>> out =
      student::Generate(model_, ids, torch::ones_like(ids), request->options_);
  if (!out.ok()) {
    FinishRequest(*request, out.status());
    return;
  }
  std::vector<int> tokens = (*out)[0];
  const bool eos = !tokens.empty() && tokens.back() == request->options_.eos_id;
  if (eos) tokens.pop_back();
  request->finishes_[segment] = eos ? StopReason::kEos : StopReason::kLength;
  if (options_.tokens != nullptr) options_.tokens->Increment(static_cast<double>(tokens.size()) + (eos ? 1 : 0));
  if (request->stream_ && !tokens.empty()) request->Push({Request::Event::Kind::kTokens, segment, tokens});
  request->outputs_[segment] = std::move(tokens);
  SegmentDone(request, segment);
}

void Engine::Step() {
  c10::InferenceMode inference;
  const int64_t n = static_cast<int64_t>(rows_.size());
  torch::Tensor tokens = torch::empty({n, 1}, torch::kInt64);
  for (int64_t r = 0; r < n; ++r) tokens.data_ptr<int64_t>()[r] = rows_[r].next_token;
  torch::Tensor logits = model_.DecodeStep(tokens.to(device_), cache_).to(torch::kFloat32);
  torch::Tensor chosen = logits.argmax(-1).to(torch::kCPU).contiguous();
  const int64_t* greedy = chosen.data_ptr<int64_t>();
  if (options_.batch_size != nullptr) options_.batch_size->Observe(static_cast<double>(n));
  if (options_.tokens != nullptr) options_.tokens->Increment(static_cast<double>(n));

  const absl::Time now = absl::Now();
  std::vector<int64_t> finished;
  for (int64_t r = 0; r < n; ++r) {
    Row& row = rows_[r];
    Request& request = *row.request;
    const student::GenerationOptions& o = request.options_;
    int64_t token = greedy[r];
    if (o.temperature > 0) {
      token = student::SampleTokens(logits.slice(0, r, r + 1).to(torch::kCPU), o, request.generator_)[0]
                  .item<int64_t>();
    }
    std::vector<int>& output = request.outputs_[row.segment];
    bool done = false;
    if (token == o.eos_id) {
      request.finishes_[row.segment] = StopReason::kEos;
      done = true;
    } else {
      output.push_back(static_cast<int>(token));
      if (request.stream_) request.Push({Request::Event::Kind::kTokens, row.segment, {static_cast<int>(token)}});
      if (static_cast<int>(output.size()) >= o.max_new_tokens) {
        request.finishes_[row.segment] = StopReason::kLength;
        done = true;
      }
    }
    if (!done && (request.cancelled() || now >= request.deadline_)) {
      FinishRequest(request, request.cancelled()
                                 ? absl::CancelledError("request cancelled")
                                 : absl::DeadlineExceededError("deadline exceeded while generating"));
      finished.push_back(r);
      continue;
    }
    if (done) {
      SegmentDone(row.request, row.segment);
      finished.push_back(r);
      continue;
    }
    row.next_token = token;
  }
  if (static_cast<int64_t>(finished.size()) == n) {
    rows_.clear();
    cache_ = student::DecoderCache();
    return;
  }
  // Highest first: RemoveRow moves the last row into the gap, which is then always a live one.
  for (auto it = finished.rbegin(); it != finished.rend(); ++it) {
    cache_.RemoveRow(*it);
    rows_[*it] = std::move(rows_.back());
    rows_.pop_back();
  }
  if (!finished.empty()) cache_.TrimPadding();
}

void Engine::SegmentDone(const std::shared_ptr<Request>& request, int segment) {
  if (segment + 1 < request->segment_count() && !request->cancelled()) {
    // The next segment goes first: this request already waited its turn.
    absl::MutexLock lock(&mu_);
    queue_.push_front({request, segment + 1});
    return;
  }
  FinishRequest(*request, request->cancelled() ? absl::CancelledError("request cancelled") : absl::OkStatus());
}

void Engine::FinishRequest(Request& request, absl::Status status) {
  const bool ok = status.ok();
  request.Complete(std::move(status));
  absl::MutexLock lock(&mu_);
  --running_;
  if (ok) recent_latency_ = recent_latency_ * 0.9 + (request.done_at() - request.started_at()) * 0.1;
}

void Engine::FailRunning(const absl::Status& status) {
  logging::Error("inference engine step failed", {{"status", status.ToString()}});
  for (Row& row : rows_) FinishRequest(*row.request, status);
  rows_.clear();
  cache_ = student::DecoderCache();
}

}  // namespace distill::inference
