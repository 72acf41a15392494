#include "services/inference/inference_config.h"

#include "common/strings/strings.h"

namespace distill::inference {

void ReadInferenceConfig(config::Node& root, InferenceConfig* config) {
  config::Node node = root.Child("inference");
  node.Read("artifact_root", &config->artifact_root);
  ServingOptions& s = config->serving;
  node.Read("max_batch", &s.engine.max_batch);
  node.Read("max_wait", &s.engine.max_wait);
  node.Read("max_queue", &s.engine.max_queue);
  node.Read("default_max_new_tokens", &s.default_max_new_tokens);
  node.Read("max_new_tokens_limit", &s.max_new_tokens_limit);
  node.Read("max_input_tokens", &s.max_input_tokens);
  node.Read("http_address", &config->http_address);
  node.Check(!config->artifact_root.empty(), "artifact_root", "must not be empty");
  node.Check(s.engine.max_batch >= 1, "max_batch", strings::Cat("must be >= 1, got ", s.engine.max_batch));
  node.Check(s.engine.max_wait >= absl::ZeroDuration(), "max_wait",
             strings::Cat("must be >= 0, got ", absl::FormatDuration(s.engine.max_wait)));
  node.Check(s.engine.max_queue >= 1, "max_queue", strings::Cat("must be >= 1, got ", s.engine.max_queue));
  node.Check(s.default_max_new_tokens >= 1, "default_max_new_tokens",
             strings::Cat("must be >= 1, got ", s.default_max_new_tokens));
  node.Check(s.max_new_tokens_limit >= s.default_max_new_tokens, "max_new_tokens_limit",
             strings::Cat("must be >= default_max_new_tokens (", s.default_max_new_tokens, "), got ",
                          s.max_new_tokens_limit));
  node.Check(s.max_input_tokens >= 2, "max_input_tokens", strings::Cat("must be >= 2, got ", s.max_input_tokens));
  for (config::Node m : node.Children("models")) {
    v1::LoadModelRequest& request = config->models.emplace_back();
    std::string name, version, artifact;
    m.ReadRequired("name", &name);
    m.ReadRequired("version", &version);
    m.ReadRequired("artifact", &artifact);
    request.set_name(name);
    request.set_version(version);
    request.mutable_artifact()->set_uri(artifact);
    v1::Objective objective = v1::OBJECTIVE_UNSPECIFIED;
    m.ReadEnum("objective", &objective,
               {{"STANDARD", v1::OBJECTIVE_STANDARD},
                {"STEP_BY_STEP", v1::OBJECTIVE_STEP_BY_STEP},
                {"COT_SEQUENCE", v1::OBJECTIVE_COT_SEQUENCE}});
    request.set_objective(objective);
  }
}

}  // namespace distill::inference
