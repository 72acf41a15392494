#include "services/trainer/training/evaluation.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/time/clock.h"
#include "c10/util/Exception.h"
#include "common/strings/strings.h"
#include "torch/torch.h"

namespace distill::trainer {
namespace {

std::vector<int> Truncated(std::vector<int> ids, int limit) {
  if (static_cast<int>(ids.size()) > limit) {
    ids.resize(static_cast<size_t>(limit));
    ids.back() = student::Tokenizer::kEosId;
  }
  return ids;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Evaluator>> Evaluator::Create(std::vector<EvalExample> examples,
                                                             const curator::AnswerNormalizer& normalizer,
                                                             const student::Tokenizer& tokenizer,
                                                             const Options& options) {
  std::unique_ptr<Evaluator> e(new Evaluator(std::move(examples), normalizer, options));
  for (const EvalExample& ex : e->examples_) {
    student::EncodedRecord r;
    r.label.source = Truncated(tokenizer.Encode(student::AnswerInput(options.kind, ex.question)),
                               options.max_source_tokens);
    if (!ex.label_target.empty())
      r.label.target = Truncated(tokenizer.Encode(ex.label_target), options.max_target_tokens);
    e->encoded_.push_back(std::move(r));
  }
  e->order_.resize(e->examples_.size());
  std::iota(e->order_.begin(), e->order_.end(), 0);
  std::stable_sort(e->order_.begin(), e->order_.end(), [&](size_t a, size_t b) {
    return e->encoded_[a].label.source.size() < e->encoded_[b].label.source.size();
  });
  return e;
}

absl::StatusOr<EvalOutcome> Evaluator::Run(student::StudentModel& model, const student::Tokenizer& tokenizer,
                                           const torch::Device& device) const {
  const absl::Time start = absl::Now();
  EvalOutcome out;
  out.examples = size();
  const bool was_training = model.module().is_training();
  model.module().eval();
  struct RestoreMode {
    student::StudentModel& model;
    bool training;
    ~RestoreMode() { model.module().train(training); }
  } restore{model, was_training};

  student::GenerationOptions generation = model.DefaultGenerationOptions();
  generation.max_new_tokens = options_.max_new_tokens;
  double loss_sum = 0;
  int64_t loss_tokens = 0;
  try {
    torch::NoGradGuard no_grad;
    for (size_t begin = 0; begin < order_.size(); begin += static_cast<size_t>(options_.batch_size)) {
      const size_t end = std::min(order_.size(), begin + static_cast<size_t>(options_.batch_size));
      std::vector<const student::EncodedRecord*> batch;
      std::vector<const student::EncodedRecord*> with_target;
      for (size_t i = begin; i < end; ++i) {
        batch.push_back(&encoded_[order_[i]]);
        if (!encoded_[order_[i]].label.target.empty()) with_target.push_back(&encoded_[order_[i]]);
      }
      // Collate pads sources; targets may be empty here, only the source side is used for generation.
      const student::ObjectiveBatch prompts = student::Collate(batch);
      absl::StatusOr<std::vector<std::vector<int>>> generated = model.Generate(
          prompts.label.source_ids.to(device), prompts.label.source_mask.to(device), generation);
      if (!generated.ok()) return generated.status();
      for (size_t i = begin; i < end; ++i) {
        const EvalExample& ex = examples_[order_[i]];
        const std::string answer =
            student::AnswerFromOutput(options_.kind, tokenizer.Decode((*generated)[i - begin]));
        absl::StatusOr<curator::NormalizedAnswer> normalized = normalizer_.Normalize(ex.example, answer);
        absl::StatusOr<curator::NormalizedAnswer> gold = normalizer_.NormalizeGold(ex.example);
        if (normalized.ok() && gold.ok() && normalizer_.Matches(*normalized, *gold)) ++out.correct;
      }
      if (!with_target.empty()) {
        const student::ObjectiveBatch targets = student::Collate(with_target);
        const torch::Tensor labels = targets.label.labels.to(device);
        const torch::Tensor logits = model.TargetLogits(targets.label.source_ids.to(device),
                                                        targets.label.source_mask.to(device), labels);
        const torch::Tensor sum = torch::cross_entropy_loss(
            logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32), labels.reshape({-1}),
            /*weight=*/{}, at::Reduction::Sum, /*ignore_index=*/-100);
        loss_sum += sum.item<double>();
        loss_tokens += targets.label.target_tokens;
      }
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(strings::Cat("evaluation: libtorch: ", e.what_without_backtrace()));
  }
  out.accuracy = out.examples > 0 ? static_cast<double>(out.correct) / static_cast<double>(out.examples) : 0;
  out.loss = loss_tokens > 0 ? loss_sum / static_cast<double>(loss_tokens) : 0;
  out.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return out;
}

}  // namespace distill::trainer
