#include "services/trainer/training/spec.h"

#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/student/runtime/device.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/trainer/training/training_testing.h"

namespace distill::trainer {
namespace {

using ::testing::HasSubstr;

v1::RunSpec Valid() { return testing::TinySpec("/data/records.jsonl"); }

struct BadField {
  std::string name;
  std::function<void(v1::RunSpec&)> mutate;
  std::string message;
};

class BadSpecTest : public ::testing::TestWithParam<BadField> {};

TEST_P(BadSpecTest, IsInvalidArgumentNamingTheField) {
  v1::RunSpec spec = Valid();
  GetParam().mutate(spec);
  absl::Status status = ValidateRunSpec(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().message));
}

v1::Hyperparameters& H(v1::RunSpec& s) { return *s.mutable_training()->mutable_hyperparameters(); }

INSTANTIATE_TEST_SUITE_P(
    Fields, BadSpecTest,
    ::testing::Values(
        BadField{"learning_rate_zero", [](auto& s) { H(s).set_learning_rate(0); },
                 "training.hyperparameters.learning_rate: must be > 0, got 0"},
        BadField{"learning_rate_negative", [](auto& s) { H(s).set_learning_rate(-1); },
                 "training.hyperparameters.learning_rate: must be > 0, got -1"},
        BadField{"batch_size_zero", [](auto& s) { H(s).set_batch_size(0); },
                 "training.hyperparameters.batch_size: must be >= 1, got 0"},
        BadField{"alpha_above_one",
                 [](auto& s) {
                   s.mutable_training()->set_objective(v1::OBJECTIVE_STEP_BY_STEP);
                   s.mutable_training()->set_alpha(1.5);
                 },
                 "training.alpha: must be in [0, 1], got 1.5"},
        BadField{"alpha_negative",
                 [](auto& s) {
                   s.mutable_training()->set_objective(v1::OBJECTIVE_STEP_BY_STEP);
                   s.mutable_training()->set_alpha(-0.1);
                 },
                 "training.alpha: must be in [0, 1], got -0.1"},
        BadField{"alpha_without_step_by_step", [](auto& s) { s.mutable_training()->set_alpha(0.5); },
                 "training.alpha: only with OBJECTIVE_STEP_BY_STEP"},
        BadField{"world_size_zero",
                 [](auto& s) { s.mutable_training()->mutable_distributed()->set_world_size(0); },
                 "training.distributed.world_size: must be >= 1, got 0"},
        BadField{"no_dataset", [](auto& s) { s.clear_dataset(); }, "dataset.uri: required"},
        BadField{"empty_dataset_uri", [](auto& s) { s.mutable_dataset()->set_uri(""); },
                 "dataset.uri: required"},
        BadField{"no_task_type", [](auto& s) { s.mutable_task()->set_type(v1::TASK_TYPE_UNSPECIFIED); },
                 "task.type: required"},
        BadField{"classification_without_labels",
                 [](auto& s) { s.mutable_task()->set_type(v1::TASK_TYPE_CLASSIFICATION); }, "task.labels"},
        BadField{"no_student", [](auto& s) { s.clear_student(); }, "student: required"},
        BadField{"unknown_preset", [](auto& s) { s.mutable_student()->set_preset("huge"); },
                 "student.preset: unknown preset \"huge\""},
        BadField{"vocab_too_small", [](auto& s) { s.mutable_student()->set_vocab_size(100); },
                 "student.vocab_size: must be 0 (default) or in [256, 256000], got 100"},
        BadField{"vocab_with_checkpoint",
                 [](auto& s) {
                   s.mutable_student()->mutable_checkpoint()->set_uri("/models/t5");
                   s.mutable_student()->set_vocab_size(1000);
                 },
                 "student.vocab_size: must be 0 with student.checkpoint"},
        BadField{"no_objective",
                 [](auto& s) { s.mutable_training()->set_objective(v1::OBJECTIVE_UNSPECIFIED); },
                 "training.objective: required"},
        BadField{"no_limits", [](auto& s) { H(s).set_max_steps(0); },
                 "training.hyperparameters.max_steps: one of max_steps and max_epochs must be > 0"},
        BadField{"negative_warmup", [](auto& s) { H(s).set_warmup_steps(-1); },
                 "training.hyperparameters.warmup_steps: must be >= 0, got -1"},
        BadField{"beta_one", [](auto& s) { H(s).set_adam_beta2(1.0); },
                 "training.hyperparameters.adam_beta2: must be in [0, 1), got 1"},
        BadField{"dropout_one", [](auto& s) { H(s).set_dropout_rate(1.0); },
                 "training.hyperparameters.dropout_rate: must be in [0, 1), got 1"},
        BadField{"max_source_tokens_one", [](auto& s) { H(s).set_max_source_tokens(1); },
                 "training.hyperparameters.max_source_tokens: must be 0 (default) or >= 2, got 1"},
        BadField{"holdout_too_large", [](auto& s) { s.mutable_eval()->set_holdout_fraction(0.7); },
                 "eval.holdout_fraction: must be in (0, 0.5], got 0.7"},
        BadField{"patience_without_eval", [](auto& s) { H(s).set_early_stopping_patience(3); },
                 "training.hyperparameters.early_stopping_patience: needs an eval set"},
        BadField{"min_delta_above_one", [](auto& s) { H(s).set_early_stopping_min_delta(2); },
                 "training.hyperparameters.early_stopping_min_delta: must be in [0, 1], got 2"},
        BadField{"no_distributed", [](auto& s) { s.mutable_training()->clear_distributed(); },
                 "training.distributed: required"}),
    [](const ::testing::TestParamInfo<BadField>& info) { return info.param.name; });

TEST(ValidateRunSpecTest, AcceptsAValidSpec) {
  EXPECT_TRUE(ValidateRunSpec(Valid()).ok()) << ValidateRunSpec(Valid());
  v1::RunSpec epochs = Valid();
  H(epochs).set_max_steps(0);
  H(epochs).set_max_epochs(2.5);
  EXPECT_TRUE(ValidateRunSpec(epochs).ok());
}

TEST(ValidateRunSpecTest, ReportsEveryProblemAtOnce) {
  v1::RunSpec spec = Valid();
  H(spec).set_learning_rate(0);
  H(spec).set_batch_size(0);
  spec.mutable_training()->mutable_distributed()->set_world_size(0);
  const std::string message(ValidateRunSpec(spec).message());
  EXPECT_THAT(message, HasSubstr("learning_rate"));
  EXPECT_THAT(message, HasSubstr("batch_size"));
  EXPECT_THAT(message, HasSubstr("world_size"));
}

TEST(ValidateRunSpecTest, NcclOrCudaWithoutACudaBuildIsFailedPrecondition) {
  if (BuiltWithCuda()) GTEST_SKIP() << "CUDA build";
  v1::RunSpec nccl = Valid();
  nccl.mutable_training()->mutable_distributed()->set_backend(v1::COLLECTIVE_BACKEND_NCCL);
  absl::Status status = ValidateRunSpec(nccl);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("training.distributed.backend"));
  v1::RunSpec cuda = Valid();
  cuda.mutable_training()->mutable_distributed()->set_device("cuda");
  status = ValidateRunSpec(cuda);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("training.distributed.device"));
}

TEST(ValidateRunSpecTest, DeviceIsCpuCudaOrCudaN) {
  for (const char* good : {"", "cpu", "cuda", "cuda:0", "cuda:7"}) {
    v1::RunSpec spec = Valid();
    spec.mutable_training()->mutable_distributed()->set_device(good);
    const absl::Status status = ValidateRunSpec(spec);
    EXPECT_TRUE(status.ok() || status.code() == absl::StatusCode::kFailedPrecondition)
        << good << ": " << status;
  }
  for (const char* bad : {"gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda0", "cpu:0", "cuda:99999"}) {
    v1::RunSpec spec = Valid();
    spec.mutable_training()->mutable_distributed()->set_device(bad);
    const absl::Status status = ValidateRunSpec(spec);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(
        std::string(status.message()),
        HasSubstr(
            std::string("training.distributed.device: must be \"cpu\", \"cuda\" or \"cuda:N\", got \"") +
            bad + "\""));
  }
}

TEST(ValidateRunSpecTest, CudaNPinsOneRankAndNcclNeedsCuda) {
  v1::RunSpec pinned = Valid();
  pinned.mutable_training()->mutable_distributed()->set_world_size(2);
  pinned.mutable_training()->mutable_distributed()->set_device("cuda:0");
  absl::Status status = ValidateRunSpec(pinned);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"cuda:0\" pins one GPU, but world_size is 2"));
  v1::RunSpec nccl_cpu = Valid();
  nccl_cpu.mutable_training()->mutable_distributed()->set_backend(v1::COLLECTIVE_BACKEND_NCCL);
  nccl_cpu.mutable_training()->mutable_distributed()->set_device("cpu");
  status = ValidateRunSpec(nccl_cpu);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("training.distributed.backend: NCCL needs a CUDA device"));
}

TEST(CheckDeviceOnThisHostTest, AGpuThisHostLacksIsFailedPrecondition) {
  if (student::CudaDeviceCount() > 0) GTEST_SKIP() << "this host has a GPU (the gpu-labelled tests cover it)";
  auto with = [](const char* device, v1::CollectiveBackend backend = v1::COLLECTIVE_BACKEND_UNSPECIFIED) {
    v1::RunSpec spec = Valid();
    spec.mutable_training()->mutable_distributed()->set_device(device);
    spec.mutable_training()->mutable_distributed()->set_backend(backend);
    return CheckDeviceOnThisHost(spec);
  };
  EXPECT_TRUE(with("").ok());
  EXPECT_TRUE(with("cpu").ok());
  for (const char* device : {"cuda", "cuda:0", "cuda:1"}) {
    const absl::Status status = with(device);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << device;
    EXPECT_THAT(std::string(status.message()), HasSubstr("training.distributed.device: \""));
    EXPECT_THAT(std::string(status.message()), HasSubstr("but this host has none"));
  }
  const absl::Status nccl = with("", v1::COLLECTIVE_BACKEND_NCCL);
  EXPECT_EQ(nccl.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(nccl.message()), HasSubstr("training.distributed.backend: NCCL needs a CUDA GPU"));
}

TEST(CheckDeviceOnThisHostTest, MoreRanksThanGpusIsFailedPrecondition) {
  const int gpus = student::CudaDeviceCount();
  if (gpus == 0) GTEST_SKIP() << "no CUDA GPU on this host";
  v1::RunSpec spec = Valid();
  spec.mutable_training()->mutable_distributed()->set_device("cuda");
  spec.mutable_training()->mutable_distributed()->set_world_size(gpus + 1);
  const absl::Status status = CheckDeviceOnThisHost(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("training.distributed.world_size"));
  spec.mutable_training()->mutable_distributed()->set_device(absl::StrCat("cuda:", gpus).c_str());
  spec.mutable_training()->mutable_distributed()->set_world_size(1);
  EXPECT_EQ(CheckDeviceOnThisHost(spec).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ResolveRunSettingsTest, AppliesTheDefaults) {
  v1::RunSpec spec;
  spec.mutable_training()->set_objective(v1::OBJECTIVE_COT_SEQUENCE);
  spec.mutable_training()->mutable_hyperparameters()->set_learning_rate(1e-3);
  spec.mutable_training()->mutable_hyperparameters()->set_batch_size(4);
  spec.mutable_training()->mutable_distributed()->set_world_size(2);
  spec.mutable_eval()->set_holdout_fraction(0.1);
  const RunSettings s = ResolveRunSettings(spec);
  EXPECT_EQ(s.grad_accumulation_steps, 1);
  EXPECT_EQ(s.schedule, v1::LR_SCHEDULE_LINEAR);
  EXPECT_EQ(s.adam_beta1, 0.9);
  EXPECT_EQ(s.adam_beta2, 0.999);
  EXPECT_EQ(s.adam_epsilon, 1e-8);
  EXPECT_EQ(s.max_source_tokens, 512);
  EXPECT_EQ(s.max_target_tokens, 256);
  EXPECT_EQ(s.log_interval_steps, 10);
  EXPECT_FALSE(s.dropout_rate.has_value());
  EXPECT_EQ(s.alpha, 0.5);
  EXPECT_TRUE(s.evaluate);
  EXPECT_EQ(s.holdout_fraction, 0.1);
  EXPECT_EQ(s.eval_max_new_tokens, 256);  // COT_SEQUENCE
  EXPECT_EQ(s.global_batch(), 8);
  EXPECT_EQ(s.use_cuda, BuiltWithCuda() && student::CudaDeviceCount() > 0);
}

TEST(SpecHashTest, IgnoresWhatDoesNotChangeTheTrajectory) {
  const v1::RunSpec spec = Valid();
  v1::RunSpec same = spec;
  same.set_name("other name");
  same.set_output_uri("artifact://runs/x/");
  same.mutable_training()->set_max_worker_restarts(3);
  same.mutable_training()->mutable_distributed()->set_threads_per_rank(8);
  EXPECT_EQ(SpecHash(spec), SpecHash(same));
  EXPECT_THAT(SpecHash(spec), ::testing::StartsWith("sha256:"));
  v1::RunSpec other = spec;
  H(other).set_seed(8);
  EXPECT_NE(SpecHash(spec), SpecHash(other));
}

}  // namespace
}  // namespace distill::trainer
