#ifndef DISTILL_COMMON_STUDENT_STUDENT_H_
#define DISTILL_COMMON_STUDENT_STUDENT_H_

// A student as a whole: model plus tokenizer, and its on-disk form, a Hugging Face model directory
//   DIR/config.json        the model config (transformers' format; "model_type" picks the family)
//   DIR/model.safetensors  the weights under Hugging Face's names
//   DIR/spiece.model       the SentencePiece tokenizer
// which transformers opens with T5ForConditionalGeneration.from_pretrained(DIR) and T5Tokenizer, and which
// distill loads from a checkpoint downloaded from the hub (google/t5-v1_1-small, google/flan-t5-small, ...).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/student/checkpoint/hf_config.h"
#include "common/student/model/student_model.h"
#include "common/student/tokenizer/tokenizer.h"

namespace distill::student {

inline constexpr char kConfigFile[] = "config.json";
inline constexpr char kWeightsFile[] = "model.safetensors";
inline constexpr char kTokenizerFile[] = "spiece.model";

struct Student {
  std::shared_ptr<StudentModel> model;
  std::shared_ptr<const Tokenizer> tokenizer;
};

// The size presets: "tiny" (tests: TinyT5Config), "mini" (d_model 256, 4 + 4 layers: demos and quick
// from-scratch experiments), "small" (google/t5-v1_1-small's shape), "base"
// (google/t5-v1_1-base's shape). All are the v1.1 layout (gated-GELU, untied embeddings).
std::vector<std::string> PresetNames();
// INVALID_ARGUMENT naming the known presets for an unknown one.
absl::StatusOr<T5Config> PresetConfig(std::string_view preset);

// Loads DIR (see above). Errors name the file: NOT_FOUND for a missing file; INVALID_ARGUMENT for a bad
// config, a config whose model_type is not supported ("t5" only), a malformed safetensors file, or
// weights that do not match the config (every missing, unexpected or mis-shaped tensor with both shapes).
// The model is returned in eval mode.
absl::StatusOr<Student> LoadStudent(const std::string& dir);

// Writes the three files into DIR (created if needed), each atomically (temporary file + rename).
absl::Status SaveStudent(const Student& student, const std::string& dir);

// A randomly initialised T5 (seeded; the same seed and config give the same weights) paired with
// `tokenizer`. When `fit_vocab` is set, config.vocab_size is replaced by the tokenizer's pieces plus its
// sentinels, so a from-scratch student has no unused embedding rows. The model is in training mode.
absl::StatusOr<Student> InitStudent(T5Config config, std::shared_ptr<const Tokenizer> tokenizer, uint64_t seed,
                                    bool fit_vocab);

// A unigram tokenizer trained on a small built-in English and arithmetic corpus (deterministic). For
// quick experiments only: a real student trains its tokenizer on its dataset (Tokenizer::Train) or uses
// a pretrained checkpoint's.
absl::StatusOr<std::unique_ptr<Tokenizer>> BuiltinTokenizer(int vocab_size);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_STUDENT_H_
