#ifndef DISTILL_SERVICES_TRAINER_TRAINING_EVALUATION_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_EVALUATION_H_

// Evaluation of a student on a run's eval examples: the student is asked for each example's answer the way
// its objective asks (AnswerInput: the bare question, "predict: <question>" — never the rationale task — or
// "<question> ###"), greedy decoding, AnswerFromOutput, then the curator's AnswerNormalizer decides whether
// the normalised answer matches the normalised gold (an unparseable answer counts as wrong). The eval loss is
// the label target's teacher-forced cross-entropy, token-weighted over the examples that have one.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/student/objectives/objectives.h"
#include "common/student/student.h"
#include "services/curator/answers/normalizer.h"
#include "services/trainer/training/records.h"

namespace distill::trainer {

struct EvalOutcome {
  int64_t examples = 0;
  int64_t correct = 0;
  double accuracy = 0;  // correct / examples; 0 without examples
  double loss = 0;      // nats per label token; 0 without loss targets
  double seconds = 0;
};

// Not thread-safe (Run switches the model between eval and train mode).
class Evaluator {
 public:
  struct Options {
    student::ObjectiveKind kind = student::ObjectiveKind::kStandard;
    int max_source_tokens = 512;
    int max_target_tokens = 256;
    int max_new_tokens = 128;
    int batch_size = 32;  // examples per generation batch
  };

  // Tokenises the examples once with `tokenizer`.
  static absl::StatusOr<std::unique_ptr<Evaluator>> Create(std::vector<EvalExample> examples,
                                                           const curator::AnswerNormalizer& normalizer,
                                                           const student::Tokenizer& tokenizer,
                                                           const Options& options);

  int64_t size() const { return static_cast<int64_t>(examples_.size()); }

  // Evaluates `model` (in eval mode, without gradients; the mode it was in is restored). `device` is where
  // the model lives. INTERNAL when libtorch fails.
  absl::StatusOr<EvalOutcome> Run(student::StudentModel& model, const student::Tokenizer& tokenizer,
                                  const torch::Device& device = torch::kCPU) const;

 private:
  Evaluator(std::vector<EvalExample> examples, const curator::AnswerNormalizer& normalizer,
            const Options& options)
      : examples_(std::move(examples)), normalizer_(normalizer), options_(options) {}

  std::vector<EvalExample> examples_;
  curator::AnswerNormalizer normalizer_;
  Options options_;
  std::vector<student::EncodedRecord> encoded_;  // label.source: the answer prompt; label.target: loss target
  std::vector<size_t> order_;                    // example indices by prompt length
};

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_EVALUATION_H_
