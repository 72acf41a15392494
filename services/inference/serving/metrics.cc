#include "services/inference/serving/metrics.h"

#include "common/metrics/builder.h"

namespace distill::inference {

InferenceMetrics::InferenceMetrics(metrics::Registry& r)
    : requests(metrics::BuildCounter()
                   .Name("distill_inference_requests_total")
                   .Help("Requests by model, version, method and outcome (gRPC status code name).")
                   .Register(r)),
      queue_depth(metrics::BuildGauge()
                      .Name("distill_inference_queue_depth")
                      .Help("Requests waiting for a decoding slot, by model and version.")
                      .Register(r)),
      queue_capacity(metrics::BuildGauge()
                         .Name("distill_inference_queue_capacity")
                         .Help("Requests that may wait for a decoding slot before new ones are refused "
                               "(max_queue), by model and version.")
                         .Register(r)),
      batch_size(metrics::BuildHistogram()
                     .Name("distill_inference_batch_size")
                     .Help("Sequences decoded together per decoding step, by model and version.")
                     .Register(r)),
      tokens(metrics::BuildCounter()
                 .Name("distill_inference_generated_tokens_total")
                 .Help("Tokens decoded (end-of-sequence tokens included), by model and version.")
                 .Register(r)),
      time_to_first_token(metrics::BuildHistogram()
                              .Name("distill_inference_time_to_first_token_seconds")
                              .Help("Request received to first token sent (Predict: to the answer), seconds.")
                              .Register(r)),
      latency(metrics::BuildHistogram()
                  .Name("distill_inference_request_duration_seconds")
                  .Help("Request received to response complete, seconds, successful requests.")
                  .Register(r)),
      queue_seconds(metrics::BuildHistogram()
                        .Name("distill_inference_queue_wait_seconds")
                        .Help("Time a request waited for a decoding slot, seconds.")
                        .Register(r)),
      versions(metrics::BuildGauge()
                   .Name("distill_inference_model_versions")
                   .Help("Model versions by model and state (loading, ready, draining, failed).")
                   .Register(r)) {}

}  // namespace distill::inference
