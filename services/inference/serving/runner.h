#ifndef DISTILL_SERVICES_INFERENCE_SERVING_RUNNER_H_
#define DISTILL_SERVICES_INFERENCE_SERVING_RUNNER_H_

// One request from arrival to result, shared by the gRPC methods (Predict, Generate) and the
// OpenAI-compatible HTTP API: resolve the model version, validate and render the input, queue it on the
// version's engine, relay streamed text, assemble the result, record metrics.

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "distill/v1/inference.pb.h"
#include "services/inference/serving/metrics.h"
#include "services/inference/serving/model_registry.h"

namespace distill::inference {

struct RunCallbacks {
  // Polled while waiting; true = the client went away (the request is then cancelled). May be null.
  std::function<bool()> cancelled;
  // Called with each chunk of streamed text, in order; returns false when the client cannot take more (the
  // request is then cancelled). Null = no streaming (Predict).
  std::function<bool(const v1::TokenChunk&)> on_chunk;
};

struct RunResult {
  v1::GenerateResult result;
  // Waiting for a decoding slot, and from leaving the queue to the result, seconds.
  double queue_seconds = 0;
  double compute_seconds = 0;
};

// `method` labels metrics ("Predict", "Generate", "completions"). Returns the result, or the error: those
// of ModelRegistry::Resolve and ServedModel::Prepare, RESOURCE_EXHAUSTED with a RetryHint (engine.h) when
// the version's queue is full, CANCELLED, DEADLINE_EXCEEDED, INTERNAL.
absl::StatusOr<RunResult> RunGeneration(ModelRegistry& registry, InferenceMetrics* metrics,
                                                 const std::string& method, const std::string& model,
                                                 const std::string& version, const GenerationAsk& ask,
                                                 const RunCallbacks& callbacks);

}  // namespace distill::inference

#endif  // DISTILL_SERVICES_INFERENCE_SERVING_RUNNER_H_
