#include "services/inference/serving/runner.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status/macros.h"

namespace distill::inference {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(50);

struct Submitted {
  std::shared_ptr<ServedModel> model;
  PreparedRequest prepared;
};

absl::StatusOr<Submitted> Submit(ModelRegistry& registry, const std::string& name, const std::string& version,
                                 const GenerationAsk& ask) {
  // A version that starts draining between Resolve and Submit refuses with UNAVAILABLE; a request for the
  // active version then goes to the new one.
  for (int attempt = 0;; ++attempt) {
    Submitted s;
    ASSIGN_OR_RETURN(s.model, registry.Resolve(name, version));
    ASSIGN_OR_RETURN(s.prepared, s.model->Prepare(ask));
    absl::Status submitted = s.model->engine().Submit(s.prepared.request);
    if (submitted.ok()) return s;
    if (!absl::IsUnavailable(submitted) || !version.empty() || attempt >= 2) return submitted;
  }
}

}  // namespace

absl::StatusOr<RunResult> RunGeneration(ModelRegistry& registry, InferenceMetrics* metrics,
                                                 const std::string& method, const std::string& name,
                                                 const std::string& version, const GenerationAsk& ask,
                                                 const RunCallbacks& callbacks) {
  const absl::Time received = absl::Now();
  std::string served_version = version;
  auto record = [&](const absl::Status& status) {
    if (metrics == nullptr) return;
    metrics->requests
        .Add({{"model", name}, {"version", served_version}, {"method", method},
              {"outcome", absl::StatusCodeToString(status.code())}})
        .Increment();
  };
  absl::StatusOr<Submitted> submitted = Submit(registry, name, version, ask);
  if (!submitted.ok()) {
    record(submitted.status());
    return submitted.status();
  }
  ServedModel& model = *submitted->model;
  served_version = model.info().version();
  const metrics::Labels labels = {{"model", name}, {"version", served_version}, {"method", method}};
  Request& request = *submitted->prepared.request;
  OutputText text(model.tokenizer(), submitted->prepared.layout, ask.include_rationale);

  std::optional<absl::Time> first_token;
  bool client_gone = false;
  auto send = [&](const std::vector<v1::TokenChunk>& chunks) {
    for (const v1::TokenChunk& chunk : chunks) {
      if (!first_token.has_value()) first_token = absl::Now();
      if (callbacks.on_chunk && !client_gone && !callbacks.on_chunk(chunk)) {
        client_gone = true;
        request.Cancel();
      }
    }
  };
  for (;;) {
    std::optional<Request::Event> event = request.NextEvent(kPollInterval);
    if (!event.has_value()) {
      if (callbacks.cancelled && callbacks.cancelled()) request.Cancel();
      continue;
    }
    if (event->kind == Request::Event::Kind::kDone) break;
    send(text.Add(event->segment, event->tokens));
  }
  if (absl::Status status = request.status(); !status.ok()) {
    record(status);
    return status;
  }
  send(text.Finish(request.outputs()));

  RunResult run;
  v1::GenerateResult& result = run.result;
  const int answer_segment = request.segment_count() - 1;
  result.set_finish_reason(FinishReasonOf(request.finishes()[answer_segment]));
  result.set_rationale(text.rationale());
  result.set_text(text.answer());
  result.set_answer(model.NormalizeAnswer(text.answer(), ask));
  result.set_model_version(served_version);
  result.set_input_tokens(request.input_tokens());
  int output_tokens = 0;
  for (const auto& output : request.outputs()) output_tokens += static_cast<int>(output.size());
  result.set_output_tokens(output_tokens);
  const absl::Time done = absl::Now();
  result.set_time_to_first_token_seconds(absl::ToDoubleSeconds(first_token.value_or(done) - received));
  result.set_total_seconds(absl::ToDoubleSeconds(done - received));
  run.queue_seconds = absl::ToDoubleSeconds(request.started_at() - request.enqueued_at());
  run.compute_seconds = absl::ToDoubleSeconds(done - request.started_at());
  record(absl::OkStatus());
  if (metrics != nullptr) {
    metrics->time_to_first_token.Add(labels, metrics::DefaultLatencyBuckets())
        .Observe(result.time_to_first_token_seconds());
    metrics->latency.Add(labels, metrics::DefaultLatencyBuckets()).Observe(result.total_seconds());
    metrics->queue_seconds.Add(labels, metrics::DefaultLatencyBuckets())
        .Observe(run.queue_seconds);
  }
  return run;
}

}  // namespace distill::inference
