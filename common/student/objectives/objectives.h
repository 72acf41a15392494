#ifndef DISTILL_COMMON_STUDENT_OBJECTIVES_OBJECTIVES_H_
#define DISTILL_COMMON_STUDENT_OBJECTIVES_OBJECTIVES_H_

// Training objectives: how a curated TrainingRecord becomes token sequences, and how a batch of them
// becomes a loss.
//
//   STANDARD       input -> label_target; loss = CE(label).
//   STEP_BY_STEP   "predict: input" -> label_target and "explain: input" -> rationale_target (Distilling
//                  Step-by-Step); loss = alpha * CE(label) + (1 - alpha) * CE(rationale).
//   COT_SEQUENCE   "question ###" -> "rationale --> answer END" (Fine-tune-CoT; the curator already renders
//                  both sides); loss = CE(label).
//
// Token-level distillation (optional) adds weight * KL to the loss at the target positions where the
// teacher's top-k log-probabilities (TrainingRecord.teacher_logprobs) line up with the student's tokens:
//   forward  KL(p_teacher || q_student) = sum_k p_k (log p_k - log q_k), q over the whole vocabulary;
//   reverse  KL(q' || p_teacher) = sum_k q'_k (log q'_k - log p_k), q' the student renormalised over the
//            teacher's top-k (the token-level reverse KL of MiniLLM: mode-seeking, never rewards spreading
//            mass outside what the teacher considered);
// where p is the teacher's top-k renormalised. It applies to the target the teacher wrote: the rationale
// task under STEP_BY_STEP, the whole sequence under COT_SEQUENCE, the label under STANDARD.
//
// Alignment: teacher tokens are strings from another tokenizer. A student position takes the teacher's
// distribution only when one teacher token covers exactly the same characters of the target as the student
// token there, and only the alternatives that are single student pieces are kept (at least the generated
// token must be). Other positions get cross-entropy only. EncodedRecord counts aligned positions, so a
// run can report how much of the KD signal survived (a teacher that shares the student's tokenizer — a
// distill student served through /v1/completions — aligns everywhere).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/student/model/student_model.h"
#include "common/student/tokenizer/tokenizer.h"
#include "distill/v1/curator.pb.h"
#include "torch/types.h"

namespace distill::student {

enum class ObjectiveKind { kStandard, kStepByStep, kCotSequence };
enum class TokenKl { kNone, kForward, kReverse };

struct ObjectiveOptions {
  ObjectiveKind kind = ObjectiveKind::kStandard;
  // STEP_BY_STEP: weight of the label loss, in [0, 1].
  double alpha = 0.5;
  TokenKl token_kl = TokenKl::kNone;
  // Weight of the token-level term, >= 0.
  double token_kl_weight = 1.0;
  // Token limits (EOS included), >= 2: sources and targets are truncated to them, ending with EOS.
  int max_source_tokens = 512;
  int max_target_tokens = 128;     // label target (the whole sequence under COT_SEQUENCE)
  int max_rationale_tokens = 256;  // STEP_BY_STEP rationale target
};

// INVALID_ARGUMENT naming the field ("alpha: must be in [0, 1], got 1.5").
absl::Status ValidateObjectiveOptions(const ObjectiveOptions& options);

// "standard" | "step_by_step" | "cot_sequence" (also with '-'); INVALID_ARGUMENT otherwise.
absl::StatusOr<ObjectiveKind> ParseObjectiveKind(std::string_view name);
std::string_view ObjectiveKindName(ObjectiveKind kind);

// The encoder input that asks a student trained with `kind` for its answer to `question`: the question,
// "predict: question" or "question ###".
std::string AnswerInput(ObjectiveKind kind, std::string_view question);
// The answer inside the text a student generated for AnswerInput (the part after "-->" for COT_SEQUENCE).
std::string AnswerFromOutput(ObjectiveKind kind, std::string_view generated);

// One target sequence with its optional teacher distribution.
struct EncodedTarget {
  std::vector<int> source;  // encoder ids, ending with EOS
  std::vector<int> target;  // decoder target ids, ending with EOS
  // Per target position: the teacher's aligned alternatives (student ids and log-probabilities, the
  // generated token among them); empty where not aligned. Empty vector = no teacher signal at all.
  std::vector<std::vector<std::pair<int, float>>> teacher;
  int64_t aligned_positions() const;
};

// A TrainingRecord tokenised for one objective.
struct EncodedRecord {
  EncodedTarget label;                     // the standard / predict / CoT sequence task
  std::optional<EncodedTarget> rationale;  // STEP_BY_STEP only
  // For length-bucketed batching: source + target tokens over the tasks.
  int64_t tokens() const;
};

// Tokenises `record`. INVALID_ARGUMENT naming the field when the record cannot serve the objective: empty
// input, empty label_target, or (STEP_BY_STEP) empty rationale_target. Teacher log-probabilities are aligned
// only when options.token_kl is set.
absl::StatusOr<EncodedRecord> EncodeRecord(const Tokenizer& tokenizer, const ObjectiveOptions& options,
                                           const v1::TrainingRecord& record);

// Teacher-forced tensors of one task.
struct TaskBatch {
  torch::Tensor source_ids;   // [B, S] int64, right-padded with 0
  torch::Tensor source_mask;  // [B, S] int64, 1 = token
  torch::Tensor labels;       // [B, T] int64, -100 where padded
  // Defined only when some row has teacher alternatives:
  torch::Tensor teacher_ids;       // [B, T, K] int64 (0 in unused slots)
  torch::Tensor teacher_logprobs;  // [B, T, K] float32 (-inf in unused slots)
  torch::Tensor teacher_mask;      // [B, T] bool, true where the position has a teacher distribution
  int64_t source_tokens = 0;       // real (unpadded) tokens
  int64_t target_tokens = 0;
};

struct ObjectiveBatch {
  TaskBatch label;
  std::optional<TaskBatch> rationale;
  int64_t examples = 0;
  int64_t tokens() const;  // real source + target tokens over the tasks
};

// Pads and stacks records (which must all come from EncodeRecord with the same options; at least one).
ObjectiveBatch Collate(const std::vector<const EncodedRecord*>& records);

// The loss terms of one batch; undefined tensors for terms the objective does not have.
struct LossTerms {
  torch::Tensor total;
  torch::Tensor label;
  torch::Tensor rationale;
  torch::Tensor token_kl;
};

// Runs the model (teacher forcing) on every task of `batch` and combines the terms per `options`.
// Differentiable in training mode. Throws c10::Error from libtorch on bad tensors.
LossTerms ComputeLoss(StudentModel& model, const ObjectiveBatch& batch, const ObjectiveOptions& options);

// The token-level KL of logits [B, T, V] against the teacher tensors of `task`, averaged over the positions
// in task.teacher_mask; 0 when there are none.
torch::Tensor TokenKlLoss(const torch::Tensor& logits, const TaskBatch& task, TokenKl kind);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_OBJECTIVES_OBJECTIVES_H_
