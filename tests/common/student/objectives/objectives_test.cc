#include "common/student/objectives/objectives.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "common/strings/strings.h"
#include "common/student/checkpoint/hf_config.h"
#include "common/student/model/student_model.h"
#include "common/student/model/t5.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ATen/Parallel.h"
#include "torch/optim/adam.h"

namespace distill::student {
namespace {

using ::testing::HasSubstr;

// 16 arithmetic questions with their answer and a one-sentence rationale.
struct Problem {
  std::string question, answer, rationale;
};
std::vector<Problem> Problems() {
  std::vector<Problem> out;
  const char* names[] = {"Ann", "Bob", "Cy", "Di"};
  for (int i = 0; i < 16; ++i) {
    const int a = 2 + i % 5, b = 1 + i / 4 + i % 3;
    out.push_back({strings::Cat(names[i % 4], " has ", a, " pens and gets ", b, " more. How many?"),
                   std::to_string(a + b), strings::Cat(a, " plus ", b, " is ", a + b, ".")});
  }
  return out;
}

std::vector<v1::TrainingRecord> Records(ObjectiveKind kind) {
  std::vector<v1::TrainingRecord> out;
  for (const Problem& p : Problems()) {
    v1::TrainingRecord r;
    r.set_example_id(p.question);
    if (kind == ObjectiveKind::kCotSequence) {
      r.set_input(p.question + " ###");
      r.set_label_target(p.rationale + " --> " + p.answer + " END");
    } else {
      r.set_input(p.question);
      r.set_label_target(p.answer);
      if (kind == ObjectiveKind::kStepByStep) r.set_rationale_target(p.rationale);
    }
    out.push_back(r);
  }
  return out;
}

std::shared_ptr<const Tokenizer> TrainTokenizer() {
  std::vector<std::string> texts;
  for (const Problem& p : Problems()) {
    texts.push_back("predict: explain: " + p.question + " ### --> END");
    texts.push_back(p.rationale + " " + p.answer);
  }
  TrainOptions options;
  options.vocab_size = 120;
  auto tokenizer = Tokenizer::Train(texts, options);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::shared_ptr<const Tokenizer>(std::move(*tokenizer));
}

T5Student MakeStudent(int vocab, uint64_t seed = 7) {
  T5Config config = TinyT5Config();
  config.vocab_size = vocab;
  config.dropout_rate = 0;
  torch::manual_seed(seed);
  auto model = T5Model::Create(config);
  EXPECT_TRUE(model.ok()) << model.status();
  return T5Student(*model);
}

std::vector<EncodedRecord> EncodeAll(const Tokenizer& tokenizer, const ObjectiveOptions& options,
                                     const std::vector<v1::TrainingRecord>& records) {
  std::vector<EncodedRecord> out;
  for (const v1::TrainingRecord& r : records) {
    auto encoded = EncodeRecord(tokenizer, options, r);
    EXPECT_TRUE(encoded.ok()) << encoded.status();
    out.push_back(*encoded);
  }
  return out;
}

ObjectiveBatch CollateAll(const std::vector<EncodedRecord>& records) {
  std::vector<const EncodedRecord*> pointers;
  for (const EncodedRecord& r : records) pointers.push_back(&r);
  return Collate(pointers);
}

// Full-batch Adam until the total loss (in eval mode) is below `target` or `max_steps` pass; returns the
// final eval-mode loss terms.
LossTerms Overfit(StudentModel& model, const ObjectiveBatch& batch, const ObjectiveOptions& options,
                  double target, int max_steps) {
  // A tiny model gains nothing from intra-op threads, and ctest runs tests side by side.
  at::set_num_threads(1);
  torch::optim::Adam adam(model.module().parameters(), torch::optim::AdamOptions(5e-3));
  for (int step = 0; step < max_steps; ++step) {
    model.module().train();
    adam.zero_grad();
    ComputeLoss(model, batch, options).total.backward();
    adam.step();
    if (step % 10 == 9) {
      model.module().eval();
      torch::NoGradGuard no_grad;
      if (ComputeLoss(model, batch, options).total.item<double>() < target) break;
    }
  }
  model.module().eval();
  torch::NoGradGuard no_grad;
  return ComputeLoss(model, batch, options);
}

TEST(ObjectiveTextTest, InputsAndAnswersPerObjective) {
  EXPECT_EQ(AnswerInput(ObjectiveKind::kStandard, "q?"), "q?");
  EXPECT_EQ(AnswerInput(ObjectiveKind::kStepByStep, "q?"), "predict: q?");
  EXPECT_EQ(AnswerInput(ObjectiveKind::kCotSequence, "q?"), "q? ###");
  EXPECT_EQ(AnswerFromOutput(ObjectiveKind::kCotSequence, "3 plus 4 is 7. --> 7 END"), "7");
  EXPECT_EQ(AnswerFromOutput(ObjectiveKind::kCotSequence, "a --> b --> 9"), "9");
  EXPECT_EQ(AnswerFromOutput(ObjectiveKind::kStandard, "7"), "7");
  EXPECT_EQ(*ParseObjectiveKind("step-by-step"), ObjectiveKind::kStepByStep);
  EXPECT_THAT(ParseObjectiveKind("multitask").status().message(), HasSubstr("objective: unknown"));
}

TEST(ObjectiveOptionsTest, BadValuesNameTheField) {
  ObjectiveOptions o;
  o.alpha = 1.5;
  EXPECT_THAT(ValidateObjectiveOptions(o).message(), HasSubstr("alpha: must be in [0, 1], got 1.5"));
  o = ObjectiveOptions();
  o.alpha = std::nan("");
  EXPECT_THAT(ValidateObjectiveOptions(o).message(), HasSubstr("alpha"));
  o = ObjectiveOptions();
  o.token_kl_weight = -1;
  EXPECT_THAT(ValidateObjectiveOptions(o).message(), HasSubstr("token_distillation_weight"));
  o = ObjectiveOptions();
  o.max_target_tokens = 1;
  EXPECT_THAT(ValidateObjectiveOptions(o).message(), HasSubstr("max_target_tokens"));
  EXPECT_TRUE(ValidateObjectiveOptions(ObjectiveOptions()).ok());
}

TEST(EncodeRecordTest, StepByStepMakesTwoPrefixedTasks) {
  auto tokenizer = TrainTokenizer();
  ObjectiveOptions options;
  options.kind = ObjectiveKind::kStepByStep;
  const v1::TrainingRecord record = Records(ObjectiveKind::kStepByStep)[0];
  auto encoded = EncodeRecord(*tokenizer, options, record);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(tokenizer->Decode(encoded->label.source), "predict: " + record.input());
  EXPECT_EQ(tokenizer->Decode(encoded->label.target), record.label_target());
  ASSERT_TRUE(encoded->rationale.has_value());
  EXPECT_EQ(tokenizer->Decode(encoded->rationale->source), "explain: " + record.input());
  EXPECT_EQ(tokenizer->Decode(encoded->rationale->target), record.rationale_target());
  EXPECT_EQ(encoded->label.target.back(), Tokenizer::kEosId);
  EXPECT_EQ(encoded->tokens(), static_cast<int64_t>(encoded->label.source.size() + encoded->label.target.size() +
                                                    encoded->rationale->source.size() +
                                                    encoded->rationale->target.size()));

  options.kind = ObjectiveKind::kStandard;
  auto standard = EncodeRecord(*tokenizer, options, record);
  ASSERT_TRUE(standard.ok());
  EXPECT_EQ(tokenizer->Decode(standard->label.source), record.input());
  EXPECT_FALSE(standard->rationale.has_value());
}

TEST(EncodeRecordTest, TruncatesToTheLimitsKeepingEos) {
  auto tokenizer = TrainTokenizer();
  ObjectiveOptions options;
  options.kind = ObjectiveKind::kStepByStep;
  options.max_source_tokens = 4;
  options.max_rationale_tokens = 3;
  auto encoded = EncodeRecord(*tokenizer, options, Records(ObjectiveKind::kStepByStep)[3]);
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->label.source.size(), 4u);
  EXPECT_EQ(encoded->label.source.back(), Tokenizer::kEosId);
  EXPECT_EQ(encoded->rationale->target.size(), 3u);
  EXPECT_EQ(encoded->rationale->target.back(), Tokenizer::kEosId);
}

TEST(EncodeRecordTest, RecordsThatCannotServeTheObjectiveNameTheField) {
  auto tokenizer = TrainTokenizer();
  ObjectiveOptions options;
  options.kind = ObjectiveKind::kStepByStep;
  v1::TrainingRecord record = Records(ObjectiveKind::kStandard)[0];  // no rationale
  EXPECT_THAT(EncodeRecord(*tokenizer, options, record).status().message(), HasSubstr("rationale_target"));
  record.clear_label_target();
  EXPECT_THAT(EncodeRecord(*tokenizer, options, record).status().message(), HasSubstr("label_target"));
  record.clear_input();
  EXPECT_THAT(EncodeRecord(*tokenizer, options, record).status().message(), HasSubstr("input"));
}

TEST(CollateTest, PadsMasksAndIgnoresPaddedLabels) {
  auto tokenizer = TrainTokenizer();
  ObjectiveOptions options;
  options.kind = ObjectiveKind::kStepByStep;
  std::vector<EncodedRecord> records = EncodeAll(*tokenizer, options, Records(options.kind));
  records.resize(3);
  ObjectiveBatch batch = CollateAll(records);
  EXPECT_EQ(batch.examples, 3);
  ASSERT_TRUE(batch.rationale.has_value());
  for (int r = 0; r < 3; ++r) {
    const auto& rec = records[r];
    EXPECT_EQ(batch.label.source_mask[r].sum().item<int64_t>(), static_cast<int64_t>(rec.label.source.size()));
    EXPECT_EQ(batch.label.labels[r].ne(-100).sum().item<int64_t>(), static_cast<int64_t>(rec.label.target.size()));
    // Padding positions of the source are 0 (pad) and masked.
    for (int64_t s = rec.label.source.size(); s < batch.label.source_ids.size(1); ++s) {
      EXPECT_EQ(batch.label.source_ids[r][s].item<int64_t>(), 0);
      EXPECT_EQ(batch.label.source_mask[r][s].item<int64_t>(), 0);
    }
  }
  EXPECT_EQ(batch.tokens(), records[0].tokens() + records[1].tokens() + records[2].tokens());
  EXPECT_FALSE(batch.label.teacher_mask.defined());
}

TEST(ShiftRightTest, StartsWithDecoderStartAndReplacesIgnoredLabels) {
  torch::Tensor labels = torch::tensor({5, 6, 1, -100}, torch::kInt64).view({1, 4});
  torch::Tensor shifted = ShiftRight(labels, /*decoder_start_id=*/0, /*pad_id=*/0);
  EXPECT_TRUE(torch::equal(shifted, torch::tensor({0, 5, 6, 1}, torch::kInt64).view({1, 4})));
  labels = torch::tensor({5, 1, -100, -100}, torch::kInt64).view({1, 4});
  EXPECT_TRUE(torch::equal(ShiftRight(labels, 0, 0), torch::tensor({0, 5, 1, 0}, torch::kInt64).view({1, 4})));
}

TEST(ComputeLossTest, StepByStepWeighsTheTasksByAlpha) {
  auto tokenizer = TrainTokenizer();
  T5Student student = MakeStudent(tokenizer->vocab_size());
  student.module().eval();
  torch::NoGradGuard no_grad;
  ObjectiveOptions options;
  options.kind = ObjectiveKind::kStepByStep;
  ObjectiveBatch batch = CollateAll(EncodeAll(*tokenizer, options, Records(options.kind)));
  for (double alpha : {0.0, 0.3, 0.5, 1.0}) {
    options.alpha = alpha;
    LossTerms terms = ComputeLoss(student, batch, options);
    const double label = terms.label.item<double>(), rationale = terms.rationale.item<double>();
    EXPECT_GT(label, 0);
    EXPECT_GT(rationale, 0);
    EXPECT_NEAR(terms.total.item<double>(), alpha * label + (1 - alpha) * rationale, 1e-5) << alpha;
    EXPECT_FALSE(terms.token_kl.defined());
  }
}

TEST(OverfitTest, TinyModelFitsSixteenExamplesUnderEachObjective) {
  auto tokenizer = TrainTokenizer();
  for (ObjectiveKind kind : {ObjectiveKind::kStandard, ObjectiveKind::kStepByStep, ObjectiveKind::kCotSequence}) {
    SCOPED_TRACE(std::string(ObjectiveKindName(kind)));
    T5Student student = MakeStudent(tokenizer->vocab_size());
    ObjectiveOptions options;
    options.kind = kind;
    const std::vector<v1::TrainingRecord> records = Records(kind);
    ObjectiveBatch batch = CollateAll(EncodeAll(*tokenizer, options, records));
    LossTerms terms = Overfit(student, batch, options, 0.02, 600);
    EXPECT_LT(terms.total.item<double>(), 0.05);
    if (kind == ObjectiveKind::kStepByStep) {
      EXPECT_LT(terms.rationale.item<double>(), 0.05);
    }

    // What was learnt comes back out of generation: the answer through the objective's answer input.
    std::vector<std::string> inputs;
    for (const Problem& p : Problems()) inputs.push_back(AnswerInput(kind, p.question));
    Tokenizer::Batch encoded = tokenizer->EncodeBatch(inputs, 0);
    torch::Tensor ids = torch::tensor(encoded.ids, torch::kInt64).view({encoded.rows, encoded.cols}).to(torch::kInt64);
    torch::Tensor mask = torch::tensor(encoded.mask, torch::kInt64).view({encoded.rows, encoded.cols});
    GenerationOptions generation = student.DefaultGenerationOptions();
    generation.max_new_tokens = 40;
    auto out = student.Generate(ids, mask, generation);
    ASSERT_TRUE(out.ok()) << out.status();
    int correct = 0;
    for (size_t i = 0; i < out->size(); ++i) {
      correct += AnswerFromOutput(kind, tokenizer->Decode((*out)[i])) == Problems()[i].answer ? 1 : 0;
    }
    EXPECT_EQ(correct, 16);
  }
}

// Teacher log-probabilities spelled in the student's own pieces (a teacher sharing the tokenizer), with
// `spread` log-probability moved to each of two alternatives.
v1::TrainingRecord WithTeacher(const Tokenizer& tokenizer, v1::TrainingRecord record, const std::string& text,
                               float alt_logprob) {
  std::vector<int> ids = tokenizer.Encode(text, /*add_eos=*/false);
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string piece = tokenizer.IdToPiece(ids[i]);
    std::string token;
    for (size_t c = 0; c < piece.size();) {
      if (piece.compare(c, 3, Tokenizer::kWordStart) == 0) {
        token += ' ';
        c += 3;
      } else {
        token += piece[c++];
      }
    }
    v1::TokenLogprob* lp = record.add_teacher_logprobs();
    lp->set_token(token);
    const float rest = std::log1p(-2 * std::exp(alt_logprob));
    lp->set_logprob(rest);
    v1::TokenAlternative* top = lp->add_top_logprobs();
    top->set_token(token);
    top->set_logprob(rest);
    for (int a : {3, 4}) {  // two other pieces of the vocabulary
      v1::TokenAlternative* alt = lp->add_top_logprobs();
      std::string other = tokenizer.IdToPiece((ids[i] + a) % tokenizer.vocab_size());
      alt->set_token(other.rfind(Tokenizer::kWordStart, 0) == 0 ? " " + other.substr(3) : other);
      alt->set_logprob(alt_logprob);
    }
  }
  return record;
}

TEST(TokenDistillationTest, SharedTokenizerAlignsEveryTargetPosition) {
  auto tokenizer = TrainTokenizer();
  ObjectiveOptions options;
  options.kind = ObjectiveKind::kStepByStep;
  options.token_kl = TokenKl::kForward;
  v1::TrainingRecord record = Records(options.kind)[5];
  // The teacher's completion: the rationale followed by its answer line.
  record = WithTeacher(*tokenizer, record, " " + record.rationale_target() + " The answer is 7.", -3);
  auto encoded = EncodeRecord(*tokenizer, options, record);
  ASSERT_TRUE(encoded.ok());
  const EncodedTarget& rationale = *encoded->rationale;
  EXPECT_EQ(rationale.aligned_positions(), static_cast<int64_t>(rationale.target.size()) - 1);  // all but EOS
  for (size_t i = 0; i + 1 < rationale.target.size(); ++i) {
    bool has_generated = false;
    for (const auto& [id, logprob] : rationale.teacher[i]) has_generated = has_generated || id == rationale.target[i];
    EXPECT_TRUE(has_generated) << i;
  }
  EXPECT_TRUE(rationale.teacher.back().empty());
  // No token KL requested: nothing aligned.
  options.token_kl = TokenKl::kNone;
  EXPECT_TRUE(EncodeRecord(*tokenizer, options, record)->rationale->teacher.empty());
}

TEST(TokenDistillationTest, ForeignTokenizationAlignsOnlyMatchingSpans) {
  auto tokenizer = TrainTokenizer();
  ObjectiveOptions options;
  options.kind = ObjectiveKind::kStandard;
  options.token_kl = TokenKl::kReverse;
  v1::TrainingRecord record = Records(options.kind)[0];  // label "3"
  // A teacher whose tokens are single characters: " The answer is 3" -> the label "3" is one of them.
  for (char c : std::string(" The answer is ") + record.label_target()) {
    v1::TokenLogprob* lp = record.add_teacher_logprobs();
    lp->set_token(std::string(1, c));
    lp->set_logprob(-0.1f);
  }
  auto encoded = EncodeRecord(*tokenizer, options, record);
  ASSERT_TRUE(encoded.ok());
  // The student spells "3" as "▁3" (one piece, with the space before it): that span is the teacher's " " +
  // "3", two tokens, so it does not align — unless the student splits it the same way.
  const int64_t aligned = encoded->label.aligned_positions();
  const std::vector<int> pieces = tokenizer->Encode(record.label_target(), false);
  if (pieces.size() == 1) {
    EXPECT_EQ(aligned, 0);
  } else {
    EXPECT_LE(aligned, static_cast<int64_t>(pieces.size()));
  }
  // A text not in the completion aligns nothing.
  record.set_label_target("99");
  EXPECT_EQ(EncodeRecord(*tokenizer, options, record)->label.aligned_positions(), 0);
}

TEST(TokenKlLossTest, MatchesHandComputedValues) {
  // One position, vocabulary 4, teacher top-2 = {1: log 0.6, 2: log 0.2} (renormalised to 0.75 / 0.25).
  torch::Tensor logits = torch::tensor({0.5f, 1.0f, -0.5f, 0.0f}).view({1, 1, 4});
  TaskBatch task;
  task.teacher_ids = torch::tensor({1, 2, 0}, torch::kInt64).view({1, 1, 3});
  task.teacher_logprobs =
      torch::tensor({std::log(0.6f), std::log(0.2f), -std::numeric_limits<float>::infinity()}).view({1, 1, 3});
  task.teacher_mask = torch::ones({1, 1}, torch::kBool);
  const torch::Tensor q = torch::softmax(logits.view({4}), 0);
  const double q1 = q[1].item<double>(), q2 = q[2].item<double>();
  const double p1 = 0.75, p2 = 0.25;
  const double forward = p1 * std::log(p1 / q1) + p2 * std::log(p2 / q2);
  const double r1 = q1 / (q1 + q2), r2 = q2 / (q1 + q2);
  const double reverse = r1 * std::log(r1 / p1) + r2 * std::log(r2 / p2);
  EXPECT_NEAR(TokenKlLoss(logits, task, TokenKl::kForward).item<double>(), forward, 1e-5);
  EXPECT_NEAR(TokenKlLoss(logits, task, TokenKl::kReverse).item<double>(), reverse, 1e-5);

  // Gradients are finite despite the -inf slot, and positions outside the mask do not count.
  torch::Tensor wide = torch::cat({logits, torch::zeros({1, 1, 4})}, 1).requires_grad_(true);
  TaskBatch two = task;
  two.teacher_ids = torch::cat({task.teacher_ids, task.teacher_ids}, 1);
  two.teacher_logprobs = torch::cat({task.teacher_logprobs, torch::full({1, 1, 3}, -INFINITY)}, 1);
  two.teacher_mask = torch::tensor({true, false}).view({1, 2});
  for (TokenKl kind : {TokenKl::kForward, TokenKl::kReverse}) {
    torch::Tensor loss = TokenKlLoss(wide, two, kind);
    EXPECT_NEAR(loss.item<double>(), kind == TokenKl::kForward ? forward : reverse, 1e-5);
    loss.backward();
    EXPECT_TRUE(torch::isfinite(wide.grad()).all().item<bool>());
    EXPECT_EQ(wide.grad()[0][1].abs().sum().item<double>(), 0.0);
    wide.grad().zero_();
  }
}

TEST(TokenDistillationTest, KlTermJoinsTheLossAndIsFitted) {
  auto tokenizer = TrainTokenizer();
  for (TokenKl kind : {TokenKl::kForward, TokenKl::kReverse}) {
    ObjectiveOptions options;
    options.kind = ObjectiveKind::kStepByStep;
    options.token_kl = kind;
    options.token_kl_weight = 0.5;
    std::vector<v1::TrainingRecord> records = Records(options.kind);
    for (auto& r : records) r = WithTeacher(*tokenizer, r, " " + r.rationale_target(), -8);
    ObjectiveBatch batch = CollateAll(EncodeAll(*tokenizer, options, records));
    ASSERT_TRUE(batch.rationale->teacher_mask.defined());
    T5Student student = MakeStudent(tokenizer->vocab_size());
    {
      student.module().eval();
      torch::NoGradGuard no_grad;
      LossTerms before = ComputeLoss(student, batch, options);
      ASSERT_TRUE(before.token_kl.defined());
      EXPECT_GT(before.token_kl.item<double>(), 0.1);
      EXPECT_NEAR(before.total.item<double>(),
                  0.5 * before.label.item<double>() + 0.5 * before.rationale.item<double>() +
                      0.5 * before.token_kl.item<double>(),
                  1e-5);
    }
    LossTerms after = Overfit(student, batch, options, 0.02, 600);
    EXPECT_LT(after.total.item<double>(), 0.05);
    EXPECT_LT(after.token_kl.item<double>(), 0.05);
  }
}

}  // namespace
}  // namespace distill::student
