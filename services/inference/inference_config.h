#ifndef DISTILL_SERVICES_INFERENCE_INFERENCE_CONFIG_H_
#define DISTILL_SERVICES_INFERENCE_INFERENCE_CONFIG_H_

// The `inference:` section of the inference service's config file (all keys optional):
//
//   inference:
//     artifact_root: distill-data/artifacts   # artifact://x resolves to <artifact_root>/x
//     max_batch: 32               # sequences decoded together (1 = no batching)
//     max_wait: 5ms               # an idle model waits this long for a batch to gather
//     max_queue: 256              # requests waiting per model version; beyond: RESOURCE_EXHAUSTED
//     default_max_new_tokens: 128 # per generated segment, when a request sets none
//     max_new_tokens_limit: 1024  # the most a request may ask for
//     max_input_tokens: 512       # when the model's manifest records no max_source_tokens
//     http_address: 0.0.0.0:8000  # OpenAI-compatible /v1/completions, /v1/models; "" = off
//     models:                     # loaded at start-up; /readyz and gRPC health wait for them
//       - name: arith
//         version: v1
//         artifact: artifact://runs/abc/model/
//         objective: STEP_BY_STEP # optional, overrides the manifest

#include <string>
#include <vector>

#include "common/config/yaml.h"
#include "distill/v1/inference.pb.h"
#include "services/inference/serving/served_model.h"

namespace distill::inference {

struct InferenceConfig {
  std::string artifact_root = "distill-data/artifacts";
  ServingOptions serving;
  std::string http_address = "0.0.0.0:8000";
  std::vector<v1::LoadModelRequest> models;
};

// Reads root["inference"] over *config; problems are recorded in the document with file, line and key.
void ReadInferenceConfig(config::Node& root, InferenceConfig* config);

}  // namespace distill::inference

#endif  // DISTILL_SERVICES_INFERENCE_INFERENCE_CONFIG_H_
