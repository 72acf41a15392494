#ifndef DISTILL_COMMON_STUDENT_MODEL_STUDENT_MODEL_H_
#define DISTILL_COMMON_STUDENT_MODEL_STUDENT_MODEL_H_

// The interface the trainer, the inference service and the CLI use to drive a student model, whatever its
// architecture. Everything above this layer speaks in (source, target) token sequences:
//   - an encoder-decoder (T5, the only family today) encodes the source and decodes the target;
//   - a decoder-only family would join by concatenating source and target into one sequence, predicting
//     only the target positions, and continuing the sequence in Generate. Nothing outside the family's
//     own implementation would change: batches, objectives, checkpoints and generation options are
//     family-agnostic.
//
// Thread-safety: as the underlying module (see t5.h): concurrent read-only calls in eval mode are safe;
// anything that changes parameters needs exclusive access.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/student/checkpoint/safetensors.h"
#include "common/student/model/generation.h"
#include "common/student/model/t5.h"
#include "torch/nn/module.h"
#include "torch/types.h"

namespace distill::student {

class StudentModel {
 public:
  virtual ~StudentModel() = default;

  // The family, as in a checkpoint's config.json "model_type": "t5".
  virtual std::string_view family() const = 0;
  // The parameters, for optimisers, train()/eval(), devices and data-parallel gradient reduction.
  virtual torch::nn::Module& module() = 0;
  virtual const torch::nn::Module& module() const = 0;
  // Rows of the output layer (the embedding size; may exceed the tokenizer's pieces).
  virtual int64_t vocab_size() const = 0;
  // Most source tokens the model accepts (a serving limit; T5's relative positions have no hard one).
  virtual int64_t max_source_tokens() const = 0;
  // Total parameters, counting a tied embedding once.
  int64_t NumParameters() const;

  // Teacher forcing: source_ids [B, S] int64 with source_mask [B, S] (nonzero = token) and labels [B, T]
  // int64 (the target tokens ending with EOS, -100 where padded) -> logits [B, T, vocab_size] float32,
  // where logits[:, t] predicts labels[:, t] from the source and labels[:, <t]. Differentiable in training
  // mode. Throws c10::Error on bad shapes or ids (callers catch).
  virtual torch::Tensor TargetLogits(const torch::Tensor& source_ids, const torch::Tensor& source_mask,
                                     const torch::Tensor& labels) = 0;

  // Autoregressive generation from the source (see generation.h for the options and the result).
  virtual absl::StatusOr<std::vector<std::vector<int>>> Generate(const torch::Tensor& source_ids,
                                                                 const torch::Tensor& source_mask,
                                                                 const GenerationOptions& options) = 0;
  // GenerationOptions with this model's EOS and decoder start ids filled in.
  virtual GenerationOptions DefaultGenerationOptions() const = 0;

  // Weights under Hugging Face's names, float32 (the checkpoint's model.safetensors).
  virtual SafetensorsFile ExportWeights() const = 0;
  // Replaces every weight from `file`; INVALID_ARGUMENT naming each missing, unexpected or mis-shaped
  // tensor (with both shapes), in which case nothing changed.
  virtual absl::Status LoadWeights(const SafetensorsFile& file) = 0;
  // The checkpoint's config.json text (Hugging Face format).
  virtual std::string ConfigJson() const = 0;
};

// A T5Model behind the StudentModel interface.
class T5Student : public StudentModel {
 public:
  explicit T5Student(std::shared_ptr<T5Model> model) : model_(std::move(model)) {}

  std::string_view family() const override { return "t5"; }
  torch::nn::Module& module() override { return *model_; }
  const torch::nn::Module& module() const override { return *model_; }
  int64_t vocab_size() const override { return model_->config().vocab_size; }
  int64_t max_source_tokens() const override { return 2048; }
  torch::Tensor TargetLogits(const torch::Tensor& source_ids, const torch::Tensor& source_mask,
                             const torch::Tensor& labels) override;
  absl::StatusOr<std::vector<std::vector<int>>> Generate(const torch::Tensor& source_ids,
                                                         const torch::Tensor& source_mask,
                                                         const GenerationOptions& options) override;
  GenerationOptions DefaultGenerationOptions() const override;
  SafetensorsFile ExportWeights() const override;
  absl::Status LoadWeights(const SafetensorsFile& file) override;
  std::string ConfigJson() const override;

  T5Model& t5() { return *model_; }
  const T5Config& config() const { return model_->config(); }

 private:
  std::shared_ptr<T5Model> model_;
};

// T5's decoder input for teacher forcing: labels shifted right by one, decoder_start_id first, -100
// replaced by pad_id (transformers' _shift_right).
torch::Tensor ShiftRight(const torch::Tensor& labels, int64_t decoder_start_id, int64_t pad_id);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_MODEL_STUDENT_MODEL_H_
