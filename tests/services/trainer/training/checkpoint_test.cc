#include "services/trainer/training/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/student/student.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/services/trainer/training/training_testing.h"
#include "tests/support/temp_dir.h"
#include "torch/torch.h"

namespace distill::trainer {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ReadFile;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);
    absl::StatusOr<std::unique_ptr<student::Tokenizer>> tokenizer = student::BuiltinTokenizer(200);
    ASSERT_TRUE(tokenizer.ok());
    absl::StatusOr<student::Student> s =
        student::InitStudent(student::TinyT5Config(), std::move(*tokenizer), 3, true);
    ASSERT_TRUE(s.ok());
    student_ = *s;
    optimizer_ = MakeOptimizer(student_);
    // Two steps, so the moments and step counts are non-trivial.
    for (int i = 0; i < 2; ++i) {
      torch::Tensor ids = torch::randint(3, 100, {2, 5}, torch::kInt64);
      torch::Tensor logits = student_.model->TargetLogits(ids, torch::ones_like(ids), ids);
      student::T5Model::Loss(logits, ids).backward();
      optimizer_->step();
      optimizer_->zero_grad();
    }
  }

  static std::unique_ptr<torch::optim::AdamW> MakeOptimizer(student::Student& s) {
    return std::make_unique<torch::optim::AdamW>(s.model->module().parameters(),
                                                 torch::optim::AdamWOptions(1e-3).weight_decay(0.1));
  }

  TrainerState State(int64_t step, std::string best = "") {
    TrainerState state;
    state.step = step;
    state.total_steps = 10;
    state.position = {1, 2};
    state.seed = 5;
    state.learning_rate = 1e-3;
    state.spec_hash = "sha256:spec";
    state.dataset_hash = "sha256:data";
    state.best_checkpoint = std::move(best);
    v1::EvalResult eval;
    eval.set_step(step);
    eval.set_accuracy(0.5);
    eval.set_examples(4);
    eval.set_correct(2);
    eval.set_best(true);
    state.best_eval = eval;
    state.evals_without_improvement = 1;
    state.early_stopping_reference = 0.5;
    state.last_losses = {{"total", 1.5}, {"label", 1.25}};
    return state;
  }

  distill::testing::TempDir dir_{"checkpoint_test"};
  student::Student student_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
};

TEST_F(CheckpointTest, NoCheckpointYet) {
  absl::StatusOr<std::optional<std::string>> latest = LatestCheckpoint(dir_.path());
  ASSERT_TRUE(latest.ok());
  EXPECT_FALSE(latest->has_value());
}

TEST_F(CheckpointTest, WritesEverythingAndRestoresTheOptimizerExactly) {
  absl::StatusOr<std::string> dir = WriteCheckpoint(dir_.path(), student_, *optimizer_, State(4));
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(*dir, dir_.path() + "/checkpoints/step-4");
  EXPECT_EQ(ReadFile(dir_.path() + "/checkpoints/latest"), "step-4\n");
  absl::StatusOr<std::optional<std::string>> latest = LatestCheckpoint(dir_.path());
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ(**latest, *dir);

  absl::StatusOr<TrainerState> state = ReadTrainerState(*dir);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(TrainerStateToJson(*state), TrainerStateToJson(State(4)));
  EXPECT_EQ(state->position, (DataPosition{1, 2}));
  EXPECT_EQ(state->best_eval->accuracy(), 0.5);
  nlohmann::json json = nlohmann::json::parse(ReadFile(*dir + "/trainer_state.json"));
  EXPECT_EQ(json["scheduler"]["step"], 4);
  EXPECT_EQ(json["rng"]["seed"], 5);

  // Same weights, and an optimizer whose state equals the original bit for bit.
  absl::StatusOr<student::Student> loaded = student::LoadStudent(*dir);
  ASSERT_TRUE(loaded.ok());
  std::unique_ptr<torch::optim::AdamW> restored = MakeOptimizer(*loaded);
  ASSERT_TRUE(LoadOptimizerState(*dir, *restored).ok());
  const auto original_params = student_.model->module().parameters();
  const auto restored_params = loaded->model->module().parameters();
  ASSERT_EQ(original_params.size(), restored_params.size());
  int compared = 0;
  for (size_t i = 0; i < original_params.size(); ++i) {
    EXPECT_TRUE(torch::equal(original_params[i], restored_params[i]));
    const auto& a = static_cast<const torch::optim::AdamWParamState&>(
        *optimizer_->state().at(original_params[i].unsafeGetTensorImpl()));
    const auto& b = static_cast<const torch::optim::AdamWParamState&>(
        *restored->state().at(restored_params[i].unsafeGetTensorImpl()));
    EXPECT_EQ(a.step(), 2);
    EXPECT_EQ(a.step(), b.step());
    EXPECT_TRUE(torch::equal(a.exp_avg(), b.exp_avg()));
    EXPECT_TRUE(torch::equal(a.exp_avg_sq(), b.exp_avg_sq()));
    ++compared;
  }
  EXPECT_GT(compared, 10);
}

TEST_F(CheckpointTest, KeepsOnlyTheLatestAndTheBest) {
  ASSERT_TRUE(WriteCheckpoint(dir_.path(), student_, *optimizer_, State(2, "step-2")).ok());
  ASSERT_TRUE(WriteCheckpoint(dir_.path(), student_, *optimizer_, State(4, "step-2")).ok());
  ASSERT_TRUE(WriteCheckpoint(dir_.path(), student_, *optimizer_, State(6, "step-2")).ok());
  EXPECT_TRUE(fs::exists(dir_.path() + "/checkpoints/step-2"));
  EXPECT_FALSE(fs::exists(dir_.path() + "/checkpoints/step-4"));
  EXPECT_TRUE(fs::exists(dir_.path() + "/checkpoints/step-6"));
  ASSERT_TRUE(WriteCheckpoint(dir_.path(), student_, *optimizer_, State(8, "step-8")).ok());
  EXPECT_FALSE(fs::exists(dir_.path() + "/checkpoints/step-2"));
  EXPECT_FALSE(fs::exists(dir_.path() + "/checkpoints/step-6"));
  EXPECT_EQ(ReadFile(dir_.path() + "/checkpoints/latest"), "step-8\n");
}

TEST_F(CheckpointTest, InterruptedWritesLeaveThePreviousCheckpointAndAreCleanedUp) {
  ASSERT_TRUE(WriteCheckpoint(dir_.path(), student_, *optimizer_, State(2)).ok());
  // A crash while writing step 4: a partial temporary directory, `latest` untouched.
  fs::create_directories(dir_.path() + "/checkpoints/.tmp-step-4");
  std::ofstream(dir_.path() + "/checkpoints/.tmp-step-4/model.safetensors") << "partial";
  EXPECT_EQ(**LatestCheckpoint(dir_.path()), dir_.path() + "/checkpoints/step-2");
  RemoveIncompleteWrites(dir_.path());
  EXPECT_FALSE(fs::exists(dir_.path() + "/checkpoints/.tmp-step-4"));
  // `latest` naming a missing directory is data loss, not a fresh start.
  std::ofstream(dir_.path() + "/checkpoints/latest") << "step-9\n";
  EXPECT_EQ(LatestCheckpoint(dir_.path()).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(CheckpointTest, ModelDirectoryWithManifest) {
  absl::StatusOr<std::string> dir = WriteCheckpoint(dir_.path(), student_, *optimizer_, State(2));
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<std::string> hash =
      WriteModelDir(dir_.path(), *dir, R"({"objective": "OBJECTIVE_STANDARD"})");
  ASSERT_TRUE(hash.ok()) << hash.status();
  const std::string model = dir_.path() + "/model";
  EXPECT_THAT(*hash, ::testing::StartsWith("sha256:"));
  nlohmann::json manifest = nlohmann::json::parse(ReadFile(model + "/manifest.json"));
  EXPECT_EQ(manifest["objective"], "OBJECTIVE_STANDARD");
  ASSERT_EQ(manifest["files"].size(), 3u);
  EXPECT_EQ(manifest["files"][1]["path"], "model.safetensors");
  EXPECT_EQ(ReadFile(model + "/model.safetensors"), ReadFile(*dir + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(model + "/optimizer.pt"));
  // Written again (a worker restarted after finishing): replaced whole.
  ASSERT_TRUE(WriteModelDir(dir_.path(), *dir, R"({"objective": "OBJECTIVE_COT_SEQUENCE"})").ok());
  EXPECT_THAT(ReadFile(model + "/manifest.json"), HasSubstr("OBJECTIVE_COT_SEQUENCE"));
}

}  // namespace
}  // namespace distill::trainer
