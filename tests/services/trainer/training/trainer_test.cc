#include "services/trainer/training/trainer.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/artifacts/artifacts.h"
#include "common/student/student.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/trainer/training/checkpoint.h"
#include "services/trainer/training/spec.h"
#include "tests/services/trainer/training/training_testing.h"
#include "tests/support/temp_dir.h"
#include "torch/torch.h"

namespace distill::trainer {
namespace {

namespace fs = std::filesystem;
using testing::ArithmeticExamples;
using ::testing::HasSubstr;
using testing::LocalArgs;
using testing::ModelWeights;
using testing::ReadFile;
using testing::TinySpec;
using testing::WriteRecords;

struct Events {
  std::vector<v1::WatchRunResponse> all;
  EventSink Sink() {
    return [this](const v1::WatchRunResponse& e) { all.push_back(e); };
  }
  template <typename F>
  std::vector<v1::WatchRunResponse> Where(F f) const {
    std::vector<v1::WatchRunResponse> out;
    for (const auto& e : all)
      if (f(e)) out.push_back(e);
    return out;
  }
  std::vector<v1::WatchRunResponse> Progress() const {
    return Where([](auto& e) { return e.has_progress(); });
  }
  std::vector<v1::WatchRunResponse> Evals() const {
    return Where([](auto& e) { return e.has_eval(); });
  }
  std::vector<v1::WatchRunResponse> Checkpoints() const {
    return Where([](auto& e) { return e.has_checkpoint(); });
  }
};

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);
    records_ = dir_.File("records.jsonl");
    run_dir_ = dir_.File("run");
  }
  distill::testing::TempDir dir_{"trainer_test"};
  std::string records_;
  std::string run_dir_;
};

TEST_F(TrainerTest, OverfitsArithmeticAndReachesFullEvalAccuracy) {
  const auto examples = ArithmeticExamples(12);
  WriteRecords(records_, examples, v1::OBJECTIVE_STEP_BY_STEP);
  testing::WriteEvalExamples(dir_.File("eval.jsonl"), examples);
  v1::RunSpec spec = TinySpec(records_, v1::OBJECTIVE_STEP_BY_STEP);
  spec.mutable_eval()->mutable_examples()->set_uri(dir_.File("eval.jsonl"));
  v1::Hyperparameters* h = spec.mutable_training()->mutable_hyperparameters();
  h->set_learning_rate(5e-3);  // 1e-2 sat on the edge of divergence for some kernel orders
  h->set_batch_size(12);
  h->set_max_steps(150);
  h->set_warmup_steps(10);
  h->set_eval_interval_steps(50);
  h->set_log_interval_steps(25);
  spec.mutable_training()->set_alpha(0.7);

  Events events;
  ASSERT_TRUE(TrainWithSpec(spec, LocalArgs(run_dir_), events.Sink()).ok());

  ASSERT_FALSE(events.all.empty());
  ASSERT_TRUE(events.all.front().has_state_changed());
  EXPECT_EQ(events.all.front().state_changed().state(), v1::RUN_STATE_RUNNING);
  EXPECT_EQ(events.all.front().state_changed().resumed_from_step(), 0);

  const auto progress = events.Progress();
  ASSERT_EQ(progress.size(), 6u);
  const v1::StepProgress& first = progress.front().progress();
  EXPECT_EQ(first.step(), 25);
  EXPECT_EQ(first.total_steps(), 150);
  EXPECT_DOUBLE_EQ(first.epoch(), 25.0);  // one batch per epoch
  ASSERT_EQ(first.losses_size(), 3);      // total, label, rationale
  EXPECT_EQ(first.losses(2).task(), v1::LOSS_TASK_RATIONALE);
  EXPECT_NEAR(first.losses(0).loss(), 0.7 * first.losses(1).loss() + 0.3 * first.losses(2).loss(), 1e-9);
  EXPECT_GT(first.tokens_per_second(), 0);
  EXPECT_NEAR(first.samples_per_second() * first.step_seconds(), 12, 1e-9);
  EXPECT_GT(first.grad_norm(), 0);
  EXPECT_GT(first.eta_seconds(), 0);
  EXPECT_GT(first.phases().forward(), 0);
  EXPECT_GT(first.phases().backward(), 0);
  EXPECT_EQ(first.phases().all_reduce(), 0);
  EXPECT_DOUBLE_EQ(first.learning_rate(), 5e-3);
  const v1::StepProgress& last = progress.back().progress();
  EXPECT_EQ(last.step(), 150);
  EXPECT_EQ(last.eta_seconds(), 0);
  EXPECT_LT(last.losses(0).loss(), first.losses(0).loss() / 5);

  const auto evals = events.Evals();
  ASSERT_EQ(evals.size(), 3u);  // steps 50, 100, 150
  EXPECT_EQ(evals.back().eval().step(), 150);
  EXPECT_EQ(evals.back().eval().examples(), 12);
  double best = 0;
  for (const auto& e : evals) best = std::max(best, e.eval().accuracy());
  EXPECT_EQ(best, 1.0);
  EXPECT_TRUE(evals.front().eval().best());
  // A checkpoint after every evaluation (checkpoint_interval_steps 0).
  EXPECT_EQ(events.Checkpoints().size(), 3u);

  // The model directory is the best checkpoint, with its manifest.
  const std::string model = run_dir_ + "/model";
  for (const char* f : {"config.json", "model.safetensors", "spiece.model", "manifest.json"}) {
    EXPECT_TRUE(fs::exists(model + "/" + f)) << f;
  }
  nlohmann::json manifest = nlohmann::json::parse(ReadFile(model + "/manifest.json"));
  EXPECT_EQ(manifest["objective"], "OBJECTIVE_STEP_BY_STEP");
  EXPECT_EQ(manifest["final_metrics"]["best_eval"]["accuracy"], 1.0);
  EXPECT_EQ(manifest["files"].size(), 3u);
  EXPECT_THAT(manifest["dataset"]["content_hash"].get<std::string>(), HasSubstr("sha256:"));
  EXPECT_EQ(manifest["task"]["type"], "TASK_TYPE_NUMERIC");
  // The saved model answers like the trained one: load it and ask one question the student way.
  absl::StatusOr<student::Student> loaded = student::LoadStudent(model);
  ASSERT_TRUE(loaded.ok()) << loaded.status();

  // Only the latest and the best checkpoints are kept.
  int kept = 0;
  for (const auto& entry : fs::directory_iterator(run_dir_ + "/checkpoints")) kept += entry.is_directory();
  EXPECT_LE(kept, 2);
}

TEST_F(TrainerTest, ResumedRunContinuesBitIdentically) {
  WriteRecords(records_, ArithmeticExamples(20), v1::OBJECTIVE_STANDARD, /*samples=*/2);
  v1::RunSpec spec = TinySpec(records_);
  v1::Hyperparameters* h = spec.mutable_training()->mutable_hyperparameters();
  h->set_batch_size(4);
  h->set_grad_accumulation_steps(2);
  h->set_max_steps(16);
  h->set_checkpoint_interval_steps(4);
  h->set_dropout_rate(0.1);  // dropout must replay too
  h->set_schedule(v1::LR_SCHEDULE_COSINE);
  h->set_warmup_steps(3);

  const std::string uninterrupted = dir_.File("uninterrupted");
  Events reference;
  ASSERT_TRUE(TrainWithSpec(spec, LocalArgs(uninterrupted), reference.Sink()).ok());

  TrainerHooks crash;
  crash.abort_after_step = 6;  // two steps after the checkpoint of step 4
  Events before;
  absl::Status aborted = TrainWithSpec(spec, LocalArgs(run_dir_), before.Sink(), crash);
  EXPECT_EQ(aborted.code(), absl::StatusCode::kAborted) << aborted;
  EXPECT_EQ(ReadFile(run_dir_ + "/checkpoints/latest"), "step-4\n");

  absl::StatusOr<TrainerState> state = ReadTrainerState(run_dir_ + "/checkpoints/step-4");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->step, 4);
  EXPECT_EQ(state->total_steps, 16);
  // 40 records, global batch 8: 5 steps per epoch.
  EXPECT_EQ(state->position, (DataPosition{0, 4}));
  EXPECT_EQ(state->spec_hash, SpecHash(spec));
  for (const char* f :
       {"config.json", "model.safetensors", "spiece.model", "optimizer.pt", "trainer_state.json"}) {
    EXPECT_TRUE(fs::exists(run_dir_ + "/checkpoints/step-4/" + f)) << f;
  }

  Events after;
  ASSERT_TRUE(TrainWithSpec(spec, LocalArgs(run_dir_), after.Sink()).ok());
  ASSERT_TRUE(after.all.front().has_state_changed());
  EXPECT_EQ(after.all.front().state_changed().resumed_from_step(), 4);

  // Same weights, bit for bit, and the same final loss.
  EXPECT_EQ(ReadFile(run_dir_ + "/model/model.safetensors"),
            ReadFile(uninterrupted + "/model/model.safetensors"));
  ASSERT_FALSE(after.Progress().empty());
  EXPECT_EQ(after.Progress().back().progress().step(), 16);
  EXPECT_EQ(after.Progress().back().progress().losses(0).loss(),
            reference.Progress().back().progress().losses(0).loss());
  EXPECT_EQ(after.Progress().back().progress().learning_rate(),
            reference.Progress().back().progress().learning_rate());
}

TEST_F(TrainerTest, ResumingWithADifferentSpecFails) {
  WriteRecords(records_, ArithmeticExamples(8), v1::OBJECTIVE_STANDARD);
  v1::RunSpec spec = TinySpec(records_);
  spec.mutable_training()->mutable_hyperparameters()->set_max_steps(4);
  spec.mutable_training()->mutable_hyperparameters()->set_checkpoint_interval_steps(2);
  TrainerHooks crash;
  crash.abort_after_step = 2;
  ASSERT_EQ(TrainWithSpec(spec, LocalArgs(run_dir_), nullptr, crash).code(), absl::StatusCode::kAborted);

  v1::RunSpec other = spec;
  other.mutable_training()->mutable_hyperparameters()->set_learning_rate(1e-4);
  absl::Status status = TrainWithSpec(other, LocalArgs(run_dir_), nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("different spec"));

  // A new name or thread count is the same run.
  v1::RunSpec renamed = spec;
  renamed.set_name("renamed");
  renamed.mutable_training()->mutable_distributed()->set_threads_per_rank(3);
  EXPECT_TRUE(TrainWithSpec(renamed, LocalArgs(run_dir_), nullptr).ok());
}

TEST_F(TrainerTest, BadSpecsAreInvalidArgumentNamingTheField) {
  WriteRecords(records_, ArithmeticExamples(4), v1::OBJECTIVE_STANDARD);
  v1::RunSpec spec = TinySpec(records_);
  spec.mutable_training()->mutable_hyperparameters()->set_learning_rate(0);
  absl::Status status = TrainWithSpec(spec, LocalArgs(run_dir_), nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("training.hyperparameters.learning_rate: must be > 0, got 0"));
}

TEST_F(TrainerTest, RecordsThatDoNotFitTheObjectiveAreFailedPreconditionNamingTheLine) {
  WriteRecords(records_, ArithmeticExamples(3), v1::OBJECTIVE_STANDARD);  // no rationales
  absl::Status status =
      TrainWithSpec(TinySpec(records_, v1::OBJECTIVE_STEP_BY_STEP), LocalArgs(run_dir_), nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(records_ + ":1: rationale_target: empty"));
}

TEST_F(TrainerTest, MissingAndEmptyDatasets) {
  absl::Status missing = TrainWithSpec(TinySpec(dir_.File("nope.jsonl")), LocalArgs(run_dir_), nullptr);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_THAT(std::string(missing.message()), HasSubstr("dataset"));
  std::ofstream(records_) << "\n";
  absl::Status empty = TrainWithSpec(TinySpec(records_), LocalArgs(run_dir_), nullptr);
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument) << empty;
  EXPECT_THAT(std::string(empty.message()), HasSubstr("no records"));
}

TEST_F(TrainerTest, DatasetContentHashIsVerified) {
  // A curator output directory: records.jsonl and manifest.json; its ArtifactRef hash is the manifest's.
  const std::string curated = dir_.File("curated");
  fs::create_directories(curated);
  WriteRecords(curated + "/records.jsonl", ArithmeticExamples(4), v1::OBJECTIVE_STANDARD);
  std::ofstream(curated + "/manifest.json") << "{\"records\": \"records.jsonl\"}\n";
  const std::string manifest_hash = *artifacts::FileContentHash(curated + "/manifest.json");
  const std::string records_hash = *artifacts::FileContentHash(curated + "/records.jsonl");
  v1::RunSpec spec = TinySpec(curated + "/");
  spec.mutable_training()->mutable_hyperparameters()->set_max_steps(1);
  int run = 0;
  auto train = [&](const std::string& uri, const std::string& hash) {
    spec.mutable_dataset()->set_uri(uri);
    spec.mutable_dataset()->set_content_hash(hash);
    return TrainWithSpec(spec, LocalArgs(dir_.File("run" + std::to_string(++run))), nullptr);
  };
  EXPECT_TRUE(train(curated + "/", manifest_hash).ok());
  // As the service resolves it: the records file, with the directory's hash.
  EXPECT_TRUE(train(curated + "/records.jsonl", manifest_hash).ok());
  EXPECT_TRUE(train(curated + "/records.jsonl", records_hash).ok());
  absl::Status wrong = train(curated + "/records.jsonl", "sha256:0000");
  EXPECT_EQ(wrong.code(), absl::StatusCode::kFailedPrecondition) << wrong;
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("dataset.content_hash"));
}

TEST_F(TrainerTest, DivergenceFailsWithAClearMessage) {
  WriteRecords(records_, ArithmeticExamples(8), v1::OBJECTIVE_STANDARD);
  v1::RunSpec spec = TinySpec(records_);
  spec.mutable_training()->mutable_hyperparameters()->set_learning_rate(1e30);
  spec.mutable_training()->mutable_hyperparameters()->clear_max_grad_norm();
  absl::Status status = TrainWithSpec(spec, LocalArgs(run_dir_), nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("the loss diverged"));
}

TEST_F(TrainerTest, CheckpointThatDoesNotMatchItsConfigIsFailedPreconditionNamingTheTensor) {
  absl::StatusOr<std::unique_ptr<student::Tokenizer>> tokenizer = student::BuiltinTokenizer(200);
  ASSERT_TRUE(tokenizer.ok());
  absl::StatusOr<student::Student> s =
      student::InitStudent(student::TinyT5Config(), std::move(*tokenizer), 1, /*fit_vocab=*/true);
  ASSERT_TRUE(s.ok());
  const std::string checkpoint = dir_.File("hf");
  ASSERT_TRUE(student::SaveStudent(*s, checkpoint).ok());
  // A config that says d_ff 256 next to weights of d_ff 128.
  nlohmann::json config = nlohmann::json::parse(ReadFile(checkpoint + "/config.json"));
  config["d_ff"] = 256;
  std::ofstream(checkpoint + "/config.json") << config.dump();

  WriteRecords(records_, ArithmeticExamples(4), v1::OBJECTIVE_STANDARD);
  v1::RunSpec spec = TinySpec(records_);
  spec.mutable_student()->mutable_checkpoint()->set_uri(checkpoint);
  absl::Status status = TrainWithSpec(spec, LocalArgs(run_dir_), nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("student.checkpoint"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("wi_0.weight"));
}

TEST_F(TrainerTest, FineTunesFromACheckpointDirectory) {
  absl::StatusOr<std::unique_ptr<student::Tokenizer>> tokenizer = student::BuiltinTokenizer(200);
  ASSERT_TRUE(tokenizer.ok());
  absl::StatusOr<student::Student> s =
      student::InitStudent(student::TinyT5Config(), std::move(*tokenizer), 1, /*fit_vocab=*/true);
  ASSERT_TRUE(s.ok());
  const std::string checkpoint = dir_.File("hf");
  ASSERT_TRUE(student::SaveStudent(*s, checkpoint).ok());

  const auto examples = ArithmeticExamples(6);
  WriteRecords(records_, examples, v1::OBJECTIVE_COT_SEQUENCE);
  v1::RunSpec spec = TinySpec(records_, v1::OBJECTIVE_COT_SEQUENCE);
  spec.mutable_student()->mutable_checkpoint()->set_uri("file://" + checkpoint);
  spec.mutable_eval()->set_holdout_fraction(0.5);
  spec.mutable_eval()->set_max_new_tokens(8);
  spec.mutable_training()->mutable_hyperparameters()->set_max_steps(3);
  Events events;
  absl::Status status = TrainWithSpec(spec, LocalArgs(run_dir_), events.Sink());
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(events.Evals().size(), 3u);  // every epoch (one step each) and the end
  EXPECT_EQ(events.Evals().back().eval().examples(), 3);
  EXPECT_GT(events.Evals().back().eval().loss(), 0);
  // The tokenizer is the checkpoint's.
  EXPECT_EQ(ReadFile(run_dir_ + "/model/spiece.model"), ReadFile(checkpoint + "/spiece.model"));
}

TEST_F(TrainerTest, EarlyStoppingStopsAfterPatienceEvaluationsWithoutImprovement) {
  const auto examples = ArithmeticExamples(4);
  WriteRecords(records_, examples, v1::OBJECTIVE_STANDARD);
  testing::WriteEvalExamples(dir_.File("eval.jsonl"), examples);
  v1::RunSpec spec = TinySpec(records_);
  spec.mutable_eval()->mutable_examples()->set_uri(dir_.File("eval.jsonl"));
  spec.mutable_eval()->set_max_new_tokens(4);
  v1::Hyperparameters* h = spec.mutable_training()->mutable_hyperparameters();
  h->set_learning_rate(1e-6);  // nothing improves
  h->set_max_steps(50);
  h->set_eval_interval_steps(1);
  h->set_early_stopping_patience(2);
  h->set_early_stopping_min_delta(0.5);
  Events events;
  ASSERT_TRUE(TrainWithSpec(spec, LocalArgs(run_dir_), events.Sink()).ok());
  EXPECT_EQ(events.Evals().size(), 3u);
  EXPECT_EQ(events.Evals().back().eval().step(), 3);
  nlohmann::json manifest = nlohmann::json::parse(ReadFile(run_dir_ + "/model/manifest.json"));
  EXPECT_EQ(manifest["final_metrics"]["stopped_early"], true);
  EXPECT_EQ(manifest["final_metrics"]["steps"], 3);
}

}  // namespace
}  // namespace distill::trainer
