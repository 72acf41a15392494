#include "common/student/objectives/objectives.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/dataset/student_text.h"
#include "common/strings/strings.h"

namespace distill::student {
namespace {

// Encodes `text` with EOS, truncated to `limit` tokens (the last one still EOS).
std::vector<int> EncodeTruncated(const Tokenizer& tokenizer, std::string_view text, int limit) {
  std::vector<int> ids = tokenizer.Encode(text, /*add_eos=*/true);
  if (static_cast<int>(ids.size()) > limit) {
    ids.resize(static_cast<size_t>(limit));
    ids.back() = Tokenizer::kEosId;
  }
  return ids;
}

std::string ToPiece(std::string_view token) {
  std::string piece;
  for (char c : token) {
    if (c == ' ') {
      piece.append(Tokenizer::kWordStart);
    } else {
      piece.push_back(c);
    }
  }
  return piece;
}

std::string FromPiece(std::string_view piece) {
  std::string text;
  for (size_t i = 0; i < piece.size();) {
    if (piece.substr(i, Tokenizer::kWordStart.size()) == Tokenizer::kWordStart) {
      text.push_back(' ');
      i += Tokenizer::kWordStart.size();
    } else {
      text.push_back(piece[i++]);
    }
  }
  return text;
}

// Teacher alternatives per target position (see the alignment rules in objectives.h). `target_text` is
// the text `target` encodes; only its first `alignable` characters came from the teacher's completion.
// `last_occurrence`: find that text at its last place in the completion (an answer) rather than its first
// (a rationale).
std::vector<std::vector<std::pair<int, float>>> AlignTeacher(
    const Tokenizer& tokenizer, const std::vector<int>& target, std::string_view target_text, size_t alignable,
    const google::protobuf::RepeatedPtrField<v1::TokenLogprob>& teacher, bool last_occurrence) {
  std::vector<std::vector<std::pair<int, float>>> out;
  if (teacher.empty() || alignable == 0) return out;

  // The completion and where each teacher token starts in it.
  std::string completion;
  std::vector<size_t> starts;
  for (const v1::TokenLogprob& token : teacher) {
    starts.push_back(completion.size());
    completion.append(token.token());
  }
  const std::string_view aligned_text = target_text.substr(0, alignable);
  const size_t found = last_occurrence ? completion.rfind(aligned_text) : completion.find(aligned_text);
  if (found == std::string::npos) return out;

  // Student token spans in the target's text; SentencePiece may add a dummy leading space.
  std::string pieces_text;
  std::vector<std::pair<size_t, size_t>> spans;
  for (int id : target) {
    if (id == Tokenizer::kEosId) break;
    if (id == Tokenizer::kUnkId || id >= tokenizer.vocab_size()) return out;
    const std::string text = FromPiece(tokenizer.IdToPiece(id));
    spans.emplace_back(pieces_text.size(), pieces_text.size() + text.size());
    pieces_text.append(text);
  }
  size_t shift;  // target_text offset = span offset - shift
  if (pieces_text == strings::Cat(" ", target_text)) {
    shift = 1;
  } else if (pieces_text == target_text) {
    shift = 0;
  } else {
    return out;  // normalisation changed the text; spans cannot be mapped back
  }

  // Teacher tokens by their span in the same coordinates (the target's text shifted by `shift`).
  std::map<std::pair<size_t, size_t>, int> teacher_at;
  for (int j = 0; j < teacher.size(); ++j) {
    const size_t begin = starts[j];
    const size_t end = begin + teacher[j].token().size();
    if (begin + shift < found || end > found + alignable) continue;
    teacher_at[{begin + shift - found, end + shift - found}] = j;
  }

  out.resize(target.size());
  bool any = false;
  for (size_t i = 0; i < spans.size(); ++i) {
    auto it = teacher_at.find(spans[i]);
    if (it == teacher_at.end()) continue;
    const v1::TokenLogprob& token = teacher[it->second];
    std::map<int, float> alternatives;
    alternatives[target[i]] = token.logprob();
    for (const v1::TokenAlternative& alt : token.top_logprobs()) {
      const int id = tokenizer.PieceToId(ToPiece(alt.token()));
      if (id == Tokenizer::kUnkId) continue;
      auto [slot, inserted] = alternatives.emplace(id, alt.logprob());
      if (!inserted) slot->second = std::max(slot->second, alt.logprob());
    }
    for (const auto& [id, logprob] : alternatives) {
      if (std::isfinite(logprob)) out[i].emplace_back(id, logprob);
    }
    any = any || !out[i].empty();
  }
  if (!any) out.clear();
  return out;
}

TaskBatch CollateTask(const std::vector<const EncodedTarget*>& targets) {
  const int64_t rows = static_cast<int64_t>(targets.size());
  int64_t source_len = 1, target_len = 1, k = 0;
  for (const EncodedTarget* t : targets) {
    source_len = std::max<int64_t>(source_len, t->source.size());
    target_len = std::max<int64_t>(target_len, t->target.size());
    for (const auto& alternatives : t->teacher) k = std::max<int64_t>(k, alternatives.size());
  }
  TaskBatch batch;
  batch.source_ids = torch::zeros({rows, source_len}, torch::kInt64);
  batch.source_mask = torch::zeros({rows, source_len}, torch::kInt64);
  batch.labels = torch::full({rows, target_len}, -100, torch::kInt64);
  auto ids = batch.source_ids.accessor<int64_t, 2>();
  auto mask = batch.source_mask.accessor<int64_t, 2>();
  auto labels = batch.labels.accessor<int64_t, 2>();
  if (k > 0) {
    batch.teacher_ids = torch::zeros({rows, target_len, k}, torch::kInt64);
    batch.teacher_logprobs =
        torch::full({rows, target_len, k}, -std::numeric_limits<float>::infinity(), torch::kFloat32);
    batch.teacher_mask = torch::zeros({rows, target_len}, torch::kBool);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const EncodedTarget& t = *targets[r];
    for (size_t s = 0; s < t.source.size(); ++s) {
      ids[r][s] = t.source[s];
      mask[r][s] = 1;
    }
    for (size_t s = 0; s < t.target.size(); ++s) labels[r][s] = t.target[s];
    batch.source_tokens += static_cast<int64_t>(t.source.size());
    batch.target_tokens += static_cast<int64_t>(t.target.size());
    if (k == 0) continue;
    auto teacher_ids = batch.teacher_ids.accessor<int64_t, 3>();
    auto teacher_logprobs = batch.teacher_logprobs.accessor<float, 3>();
    auto teacher_mask = batch.teacher_mask.accessor<bool, 2>();
    for (size_t s = 0; s < t.teacher.size(); ++s) {
      if (t.teacher[s].empty()) continue;
      teacher_mask[r][s] = true;
      for (size_t a = 0; a < t.teacher[s].size(); ++a) {
        teacher_ids[r][s][a] = t.teacher[s][a].first;
        teacher_logprobs[r][s][a] = t.teacher[s][a].second;
      }
    }
  }
  return batch;
}

torch::Tensor CrossEntropy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return torch::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32),
                                   labels.reshape({-1}), /*weight=*/{}, at::Reduction::Mean,
                                   /*ignore_index=*/-100);
}

}  // namespace

absl::Status ValidateObjectiveOptions(const ObjectiveOptions& o) {
  if (!(o.alpha >= 0 && o.alpha <= 1)) {
    return absl::InvalidArgumentError(strings::Cat("alpha: must be in [0, 1], got ", o.alpha));
  }
  if (!(o.token_kl_weight >= 0) || !std::isfinite(o.token_kl_weight)) {
    return absl::InvalidArgumentError(
        strings::Cat("token_distillation_weight: must be finite and >= 0, got ", o.token_kl_weight));
  }
  for (const auto& [name, value] : {std::pair<const char*, int>{"max_source_tokens", o.max_source_tokens},
                                    {"max_target_tokens", o.max_target_tokens},
                                    {"max_rationale_tokens", o.max_rationale_tokens}}) {
    if (value < 2) return absl::InvalidArgumentError(strings::Cat(name, ": must be >= 2, got ", value));
  }
  return absl::OkStatus();
}

absl::StatusOr<ObjectiveKind> ParseObjectiveKind(std::string_view name) {
  std::string n(name);
  std::replace(n.begin(), n.end(), '-', '_');
  if (n == "standard") return ObjectiveKind::kStandard;
  if (n == "step_by_step") return ObjectiveKind::kStepByStep;
  if (n == "cot_sequence") return ObjectiveKind::kCotSequence;
  return absl::InvalidArgumentError(strings::Cat("objective: unknown objective \"", name,
                                                 "\"; expected standard, step_by_step or cot_sequence"));
}

std::string_view ObjectiveKindName(ObjectiveKind kind) {
  switch (kind) {
    case ObjectiveKind::kStandard:
      return "standard";
    case ObjectiveKind::kStepByStep:
      return "step_by_step";
    case ObjectiveKind::kCotSequence:
      return "cot_sequence";
  }
  return "unknown";
}

std::string AnswerInput(ObjectiveKind kind, std::string_view question) {
  switch (kind) {
    case ObjectiveKind::kStepByStep:
      return dataset::PredictInput(question);
    case ObjectiveKind::kCotSequence:
      return dataset::CotInput(question);
    case ObjectiveKind::kStandard:
      break;
  }
  return std::string(question);
}

std::string AnswerFromOutput(ObjectiveKind kind, std::string_view generated) {
  if (kind == ObjectiveKind::kCotSequence) return dataset::CotAnswer(generated);
  return std::string(generated);
}

int64_t EncodedTarget::aligned_positions() const {
  int64_t n = 0;
  for (const auto& alternatives : teacher) n += alternatives.empty() ? 0 : 1;
  return n;
}

int64_t EncodedRecord::tokens() const {
  int64_t n = static_cast<int64_t>(label.source.size() + label.target.size());
  if (rationale) n += static_cast<int64_t>(rationale->source.size() + rationale->target.size());
  return n;
}

int64_t ObjectiveBatch::tokens() const {
  int64_t n = label.source_tokens + label.target_tokens;
  if (rationale) n += rationale->source_tokens + rationale->target_tokens;
  return n;
}

absl::StatusOr<EncodedRecord> EncodeRecord(const Tokenizer& tokenizer, const ObjectiveOptions& options,
                                           const v1::TrainingRecord& record) {
  if (record.input().empty()) return absl::InvalidArgumentError("input: empty");
  if (record.label_target().empty()) return absl::InvalidArgumentError("label_target: empty");
  const bool step_by_step = options.kind == ObjectiveKind::kStepByStep;
  if (step_by_step && record.rationale_target().empty()) {
    return absl::InvalidArgumentError("rationale_target: empty (the step_by_step objective needs a rationale)");
  }
  const bool distil = options.token_kl != TokenKl::kNone && !record.teacher_logprobs().empty();
  EncodedRecord out;
  // COT_SEQUENCE records already carry "question ###"; STANDARD ones the bare question.
  out.label.source = EncodeTruncated(
      tokenizer, step_by_step ? dataset::PredictInput(record.input()) : record.input(), options.max_source_tokens);
  out.label.target = EncodeTruncated(tokenizer, record.label_target(), options.max_target_tokens);
  if (step_by_step) {
    EncodedTarget rationale;
    rationale.source = EncodeTruncated(tokenizer, dataset::ExplainInput(record.input()), options.max_source_tokens);
    rationale.target = EncodeTruncated(tokenizer, record.rationale_target(), options.max_rationale_tokens);
    if (distil) {
      rationale.teacher = AlignTeacher(tokenizer, rationale.target, record.rationale_target(),
                                       record.rationale_target().size(), record.teacher_logprobs(),
                                       /*last_occurrence=*/false);
    }
    out.rationale = std::move(rationale);
  } else if (distil) {
    const std::string& text = record.label_target();
    const bool cot = options.kind == ObjectiveKind::kCotSequence;
    // Under COT_SEQUENCE only the rationale before " --> " is the teacher's text.
    const size_t arrow = text.rfind(dataset::kCotAnswerSeparator);
    const size_t alignable = cot ? (arrow == std::string::npos ? 0 : arrow) : text.size();
    out.label.teacher =
        AlignTeacher(tokenizer, out.label.target, text, alignable, record.teacher_logprobs(), !cot);
  }
  return out;
}

ObjectiveBatch Collate(const std::vector<const EncodedRecord*>& records) {
  ObjectiveBatch batch;
  batch.examples = static_cast<int64_t>(records.size());
  std::vector<const EncodedTarget*> labels, rationales;
  for (const EncodedRecord* r : records) {
    labels.push_back(&r->label);
    if (r->rationale) rationales.push_back(&*r->rationale);
  }
  batch.label = CollateTask(labels);
  if (!rationales.empty()) batch.rationale = CollateTask(rationales);
  return batch;
}

torch::Tensor TokenKlLoss(const torch::Tensor& logits, const TaskBatch& task, TokenKl kind) {
  if (kind == TokenKl::kNone || !task.teacher_mask.defined()) return torch::zeros({}, logits.options());
  const torch::Tensor positions = task.teacher_mask.to(torch::kFloat32);
  const torch::Tensor count = positions.sum();
  const torch::Tensor valid = torch::isfinite(task.teacher_logprobs);
  const auto inf = -std::numeric_limits<float>::infinity();
  // Teacher: top-k renormalised. Invalid slots and positions without a teacher are made finite so no
  // inf * 0 reaches the gradient; the `valid` and `positions` masks remove them from the sum.
  torch::Tensor teacher_log = torch::log_softmax(task.teacher_logprobs.masked_fill(~valid, inf), -1);
  teacher_log = torch::where(valid, teacher_log, torch::zeros_like(teacher_log));
  const torch::Tensor student_log =
      torch::log_softmax(logits.to(torch::kFloat32), -1).gather(-1, task.teacher_ids);  // [B, T, K]
  torch::Tensor per_slot;
  if (kind == TokenKl::kForward) {
    const torch::Tensor p = torch::where(valid, teacher_log.exp(), torch::zeros_like(teacher_log));
    per_slot = p * (teacher_log - student_log);
  } else {
    torch::Tensor q_log = torch::log_softmax(student_log.masked_fill(~valid, inf), -1);
    q_log = torch::where(valid, q_log, torch::zeros_like(q_log));
    const torch::Tensor q = torch::where(valid, q_log.exp(), torch::zeros_like(q_log));
    per_slot = q * (q_log - teacher_log);
  }
  const torch::Tensor per_position = torch::where(valid, per_slot, torch::zeros_like(per_slot)).sum(-1);
  return (per_position * positions).sum() / count.clamp_min(1);
}

LossTerms ComputeLoss(StudentModel& model, const ObjectiveBatch& batch, const ObjectiveOptions& options) {
  LossTerms terms;
  const TaskBatch& label = batch.label;
  const torch::Tensor label_logits = model.TargetLogits(label.source_ids, label.source_mask, label.labels);
  terms.label = CrossEntropy(label_logits, label.labels);
  if (options.kind == ObjectiveKind::kStepByStep && batch.rationale) {
    const TaskBatch& rationale = *batch.rationale;
    const torch::Tensor rationale_logits =
        model.TargetLogits(rationale.source_ids, rationale.source_mask, rationale.labels);
    terms.rationale = CrossEntropy(rationale_logits, rationale.labels);
    terms.total = options.alpha * terms.label + (1 - options.alpha) * terms.rationale;
    if (options.token_kl != TokenKl::kNone) terms.token_kl = TokenKlLoss(rationale_logits, rationale, options.token_kl);
  } else {
    terms.total = terms.label;
    if (options.token_kl != TokenKl::kNone) terms.token_kl = TokenKlLoss(label_logits, label, options.token_kl);
  }
  if (terms.token_kl.defined()) terms.total = terms.total + options.token_kl_weight * terms.token_kl;
  return terms;
}

}  // namespace distill::student
