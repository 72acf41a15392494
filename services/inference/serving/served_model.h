#ifndef DISTILL_SERVICES_INFERENCE_SERVING_SERVED_MODEL_H_
#define DISTILL_SERVICES_INFERENCE_SERVING_SERVED_MODEL_H_

// One loaded model version: the student, its engine, how it is prompted (by the objective it was trained
// with) and how its answers are normalised (by its task).

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "distill/v1/inference.pb.h"
#include "services/curator/answers/normalizer.h"
#include "services/inference/serving/engine.h"
#include "services/inference/serving/output_text.h"

namespace distill::inference {

struct ServingOptions {
  EngineOptions engine;
  // Token limit per generated segment when a request sets none.
  int default_max_new_tokens = 128;
  // Largest max_new_tokens a request may ask for.
  int max_new_tokens_limit = 1024;
  // Longest input (tokens, prefix and EOS included) when the model's manifest records no
  // max_source_tokens.
  int max_input_tokens = 512;
};

// A request after validation: the engine request and how to turn its tokens into text.
struct PreparedRequest {
  std::shared_ptr<Request> request;
  OutputLayout layout = OutputLayout::kAnswer;
};

// What a client asks for, from Predict, Generate or /v1/completions.
struct GenerationAsk {
  std::string input;
  google::protobuf::RepeatedPtrField<v1::Choice> choices;
  v1::SamplingParams sampling;
  int num_beams = 0;
  bool include_rationale = false;
  bool stream = false;
  absl::Time deadline = absl::InfiniteFuture();
};

class ServedModel {
 public:
  // Loads the model directory `dir` (config.json, model.safetensors, spiece.model and, when present, the
  // trainer's manifest.json, whose "objective" and "task" apply unless `request` overrides them).
  // FAILED_PRECONDITION with the cause for a directory that does not load (naming the file), a manifest
  // hash that differs from request.artifact.content_hash, or a student family the engine cannot serve.
  static absl::StatusOr<std::shared_ptr<ServedModel>> Load(const v1::LoadModelRequest& request,
                                                           const std::string& dir, const ServingOptions& options);

  // Name, version, objective, task, artifact, parameters, max_input_tokens (state and times are the
  // registry's).
  const v1::ModelInfo& info() const { return info_; }
  Engine& engine() { return *engine_; }
  const student::Tokenizer& tokenizer() const { return *tokenizer_; }

  // Validates `ask` and renders it for the model. INVALID_ARGUMENT naming the field: empty input, input over
  // max_input_tokens, a rationale from a STANDARD model, temperature < 0, top_k < 0, top_p outside (0, 1],
  // max_new_tokens < 0 or over the limit, num_beams outside [0, 16] or combined with sampling, stop set.
  absl::StatusOr<PreparedRequest> Prepare(const GenerationAsk& ask) const;

  // `answer` normalised for the model's task ("" when the task is unknown or the answer does not
  // normalise).
  std::string NormalizeAnswer(std::string_view answer, const GenerationAsk& ask) const;

 private:
  ServedModel() = default;

  v1::ModelInfo info_;
  ServingOptions options_;
  std::shared_ptr<const student::Tokenizer> tokenizer_;
  std::optional<curator::AnswerNormalizer> normalizer_;
  int eos_id_ = 1;
  int decoder_start_id_ = 0;
  std::unique_ptr<Engine> engine_;
};

// finish reason of a segment for the API.
v1::FinishReason FinishReasonOf(StopReason finish);

}  // namespace distill::inference

#endif  // DISTILL_SERVICES_INFERENCE_SERVING_SERVED_MODEL_H_
