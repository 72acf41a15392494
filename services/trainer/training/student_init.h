#ifndef DISTILL_SERVICES_TRAINER_TRAINING_STUDENT_INIT_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_STUDENT_INIT_H_

// Where a run's student starts: a size preset with a tokenizer trained on the run's data (or given), or a
// Hugging Face checkpoint directory.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/student/student.h"
#include "distill/v1/trainer.pb.h"
#include "services/trainer/training/records.h"

namespace distill::trainer {

// Default vocabulary of a tokenizer trained for a preset: min(the preset's vocabulary, kDefaultVocabSize).
inline constexpr int kDefaultVocabSize = 8000;

// The texts a run's tokenizer is trained on: each record's encoder inputs exactly as the objective renders
// them (so "predict:"/"explain:" get pieces), its targets and rationales; duplicates once.
std::vector<std::string> TokenizerCorpus(const std::vector<RecordLine>& records, v1::Objective objective);

// A unigram SentencePiece tokenizer (T5's special ids) trained on `corpus` with `vocab_size` pieces at most
// (fewer when the text cannot supply them: hard_vocab_limit off), full character coverage, and numbers
// split into digits (arithmetic generalises better when "123" is "1" "2" "3"). Deterministic.
absl::StatusOr<std::unique_ptr<student::Tokenizer>> TrainRunTokenizer(const std::vector<std::string>& corpus,
                                                                      int vocab_size);

// The vocabulary a preset student's tokenizer is trained with: `requested` when > 0, else
// min(preset vocabulary, kDefaultVocabSize).
int PresetVocabSize(const student::T5Config& preset, int requested);

// A preset student from scratch: the preset's shape sized to `tokenizer` (no unused embedding rows),
// `dropout_rate` when set, weights drawn from `seed`, in training mode.
//
// Unlike Hugging Face's T5 init, whose untied lm_head is N(0, 1) (pretrained checkpoints never notice),
// the untied lm_head of a from-scratch student is scaled by d_model^-0.5 to N(0, 1/d_model): the final
// RMS norm makes decoder outputs O(1) per unit, so logits start O(1) instead of O(sqrt(d_model)) and the
// first steps do not spend themselves shrinking a huge initial loss. A tied head is left as it is (T5
// already rescales its input by d_model^-0.5).
absl::StatusOr<student::Student> PresetStudent(const student::T5Config& preset,
                                               std::shared_ptr<const student::Tokenizer> tokenizer,
                                               uint64_t seed, std::optional<double> dropout_rate);

// A student loaded from a Hugging Face directory (config.json, model.safetensors, spiece.model) exactly as
// stored, with `dropout_rate` replacing the config's when set, in training mode. `field` names the source
// in errors ("student.checkpoint"). NOT_FOUND for a missing file, INVALID_ARGUMENT for an unreadable one,
// FAILED_PRECONDITION naming the tensor when the weights do not match the config (missing, unexpected or
// mis-shaped) or the tokenizer has more pieces than the model has rows.
absl::StatusOr<student::Student> LoadStudentDir(const std::string& dir, std::optional<double> dropout_rate,
                                                std::string_view field);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_STUDENT_INIT_H_
