#ifndef DISTILL_SERVICES_INFERENCE_SERVING_METRICS_H_
#define DISTILL_SERVICES_INFERENCE_SERVING_METRICS_H_

// The inference service's metrics, distill_inference_*; children are labelled by model and version.

#include "common/metrics/counter.h"
#include "common/metrics/family.h"
#include "common/metrics/gauge.h"
#include "common/metrics/histogram.h"
#include "common/metrics/registry.h"

namespace distill::inference {

struct InferenceMetrics {
  explicit InferenceMetrics(metrics::Registry& registry);

  // {model, version, method (Predict | Generate | completions | chat_completions), outcome (a gRPC status
  // code name)}.
  metrics::Family<metrics::Counter>& requests;
  // {model, version}: requests waiting for a batch slot.
  metrics::Family<metrics::Gauge>& queue_depth;
  // {model, version}: the most requests that may wait (max_queue); queue_depth / queue_capacity is saturation.
  metrics::Family<metrics::Gauge>& queue_capacity;
  // {model, version}: sequences decoded together per decoding step.
  metrics::Family<metrics::Histogram>& batch_size;
  // {model, version}: tokens decoded (EOS included); rate() gives tokens/s.
  metrics::Family<metrics::Counter>& tokens;
  // {model, version, method}: request received -> first token sent (Generate, streamed completions) or
  // answer ready (Predict), seconds.
  metrics::Family<metrics::Histogram>& time_to_first_token;
  // {model, version, method}: request received -> response, seconds (successful requests).
  metrics::Family<metrics::Histogram>& latency;
  // {model, version, method}: time waiting in the queue, seconds.
  metrics::Family<metrics::Histogram>& queue_seconds;
  // {model}: model versions by state (loading, ready, draining, failed).
  metrics::Family<metrics::Gauge>& versions;
};

}  // namespace distill::inference

#endif  // DISTILL_SERVICES_INFERENCE_SERVING_METRICS_H_
