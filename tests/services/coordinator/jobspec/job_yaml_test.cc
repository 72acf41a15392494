#include "services/coordinator/jobspec/job_yaml.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"
#include "tests/services/coordinator/full_job_yaml.h"

namespace distill::jobs {
namespace {

using ::testing::HasSubstr;

constexpr const char* kArithJob = distill::testing::kFullJobYaml;

constexpr char kArithJobProto[] = R"pb(
  name: "arith-demo"
  task { name: "arith" type: TASK_TYPE_NUMERIC }
  dataset {
    uri: "synthetic:arith?count=2000&seed=1&min_ops=1&max_ops=1"
    split {
      random { seed: 7 test_fraction: 0.1 }
      validation_fraction: 0.05
    }
  }
  teacher {
    backend: "synthetic"
    samples_per_example: 1
    sampling { temperature: 0.7 max_new_tokens: 256 }
  }
  curation {
    label_source: LABEL_SOURCE_GOLD
    filters { max_rationale_tokens: 80 }
  }
  student { preset: "mini" }
  training {
    objective: OBJECTIVE_STEP_BY_STEP
    alpha: 0.5
    hyperparameters { learning_rate: 0.003 batch_size: 32 max_steps: 400 warmup_steps: 20 seed: 1 }
    distributed { world_size: 1 threads_per_rank: 1 }
  }
  baselines { name: "standard" objective: OBJECTIVE_STANDARD label_source: LABEL_SOURCE_GOLD_ONLY }
  evaluation { max_examples: 200 }
  deploy { model_name: "arith" min_accuracy: 0.2 }
)pb";

void ExpectSpec(const v1::JobSpec& actual, const std::string& expected_text) {
  v1::JobSpec expected;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(expected_text, &expected));
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differencer.Compare(expected, actual)) << diff;
}

void ExpectInvalid(const absl::Status& status, std::string_view message) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(std::string(status.message()), message);
}

void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream out(path);
  out << text;
}

TEST(ParseJobSpecYamlTest, ReadsARealisticJob) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpecYaml(kArithJob, "arith.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ExpectSpec(*spec, kArithJobProto);
  // Presence of the optional fields the job set, and of those it did not.
  EXPECT_TRUE(spec->training().has_alpha());
  EXPECT_TRUE(spec->teacher().sampling().has_temperature());
  EXPECT_FALSE(spec->teacher().sampling().has_top_p());
  EXPECT_FALSE(spec->baselines(0).has_alpha());
}

TEST(ParseJobSpecYamlTest, CheckpointShorthandAndFullEnumNames) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpecYaml(R"(
name: flan
dataset:
  uri: data/train.csv
  format: DATASET_FORMAT_CSV
  columns: {input: question, gold: answer}
  split: {given: {test_uri: data/test.csv}}
student: {checkpoint: ./flan-t5-small}
training: {objective: Cot_Sequence}
teacher: {backend: openai, prompt_strategy: zero_shot_cot}
)",
                                                      "flan.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ExpectSpec(*spec, R"pb(
    name: "flan"
    dataset {
      uri: "data/train.csv"
      format: DATASET_FORMAT_CSV
      columns { input: "question" gold: "answer" }
      split { given { test_uri: "data/test.csv" } }
    }
    student { checkpoint { uri: "./flan-t5-small" } }
    training { objective: OBJECTIVE_COT_SEQUENCE }
    teacher { backend: "openai" prompt_strategy: PROMPT_STRATEGY_ZERO_SHOT_COT }
  )pb");
}

TEST(ParseJobSpecYamlTest, EmptyFileIsAnEmptySpec) {
  // Required fields are the coordinator's to enforce.
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpecYaml("# nothing yet\n", "empty.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->ByteSizeLong(), 0u);
}

TEST(ParseJobSpecYamlTest, ReportsEveryProblemWithFileLineAndKeyPath) {
  ExpectInvalid(
      ParseJobSpecYaml(R"(name: arith
training:
  objective: step-by-step
  hyperparameters:
    learnig_rate: 0.003
    batch_size: "32"
baselines:
  - {name: standard, objective: standard}
  - {name: cot, objective: cot_sequence, label_source: teacher}
student: {preset: mini, checkpoint: ./ckpt}
)",
                       "jobs/arith.yaml")
          .status(),
      "jobs/arith.yaml:3: training.objective: expected one of: standard, step_by_step, cot_sequence; "
      "got \"step-by-step\"\n"
      "jobs/arith.yaml:5: training.hyperparameters.learnig_rate: unknown key (did you mean "
      "\"learning_rate\"?)\n"
      "jobs/arith.yaml:6: training.hyperparameters.batch_size: expected an integer, got the quoted "
      "string \"32\" (write it without quotes)\n"
      "jobs/arith.yaml:9: baselines[1].label_source: expected one of: gold, self_consistency, "
      "gold_only; got \"teacher\"\n"
      "jobs/arith.yaml:10: student.checkpoint: cannot be set together with \"preset\" (both belong "
      "to oneof \"source\"; set only one)");
}

TEST(ParseJobSpecYamlTest, SyntaxErrorNamesLineAndColumn) {
  absl::Status status = ParseJobSpecYaml("name: a\ntask: {name: arith\n", "bad.yaml").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("bad.yaml:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("invalid YAML"));
}

TEST(ResolveJobPathsTest, MakesRelativeLocalPathsAbsolute) {
  v1::JobSpec spec;
  spec.mutable_dataset()->set_uri("data/train.jsonl");
  spec.mutable_dataset()->mutable_split()->mutable_given()->set_test_uri("../shared/test.jsonl");
  spec.mutable_student()->mutable_checkpoint()->set_uri("./flan-t5-small/");
  spec.mutable_student()->mutable_tokenizer()->set_uri("spiece.model");
  ResolveJobPaths(&spec, "/home/me/jobs");
  EXPECT_EQ(spec.dataset().uri(), "/home/me/jobs/data/train.jsonl");
  EXPECT_EQ(spec.dataset().split().given().test_uri(), "/home/me/shared/test.jsonl");
  EXPECT_EQ(spec.student().checkpoint().uri(), "/home/me/jobs/flan-t5-small/");
  EXPECT_EQ(spec.student().tokenizer().uri(), "/home/me/jobs/spiece.model");
}

TEST(ResolveJobPathsTest, LeavesUrisWithASchemeAbsolutePathsAndEmptyValues) {
  for (std::string uri :
       {"artifact://datasets/svamp/train.jsonl", "file:///data/train.jsonl", "synthetic:arith?count=10",
        "https://example.com/train.jsonl", "http://example.com/train.jsonl", "/data/train.jsonl", ""}) {
    SCOPED_TRACE(uri);
    v1::JobSpec spec;
    spec.mutable_dataset()->set_uri(uri);
    spec.mutable_student()->mutable_checkpoint()->set_uri(uri);
    ResolveJobPaths(&spec, "/home/me/jobs");
    EXPECT_EQ(spec.dataset().uri(), uri);
    EXPECT_EQ(spec.student().checkpoint().uri(), uri);
  }
}

TEST(ResolveJobPathsTest, AddsNothingToASpecWithoutPaths) {
  v1::JobSpec spec;
  spec.mutable_student()->set_preset("mini");
  ResolveJobPaths(&spec, "/home/me/jobs");
  EXPECT_FALSE(spec.has_dataset());
  EXPECT_FALSE(spec.student().has_tokenizer());
  EXPECT_EQ(spec.student().source_case(), v1::StudentInit::kPreset);
}

TEST(ResolveJobPathsTest, RelativeBaseIsTakenFromTheWorkingDirectory) {
  v1::JobSpec spec;
  spec.mutable_dataset()->set_uri("train.jsonl");
  ResolveJobPaths(&spec, "jobs");
  EXPECT_EQ(spec.dataset().uri(), (std::filesystem::current_path() / "jobs/train.jsonl").string());
}

TEST(LoadJobSpecFileTest, ResolvesPathsAgainstTheFilesDirectory) {
  distill::testing::TempDir dir("job_yaml_test");
  ASSERT_FALSE(dir.path().empty());
  std::string path = dir.File("flan.yaml");
  WriteFile(path, "name: flan\ndataset: {uri: data/train.jsonl}\nstudent: {checkpoint: ./flan-t5-small}\n");
  absl::StatusOr<v1::JobSpec> spec = LoadJobSpecFile(path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "flan");
  EXPECT_EQ(spec->dataset().uri(), dir.File("data/train.jsonl"));
  EXPECT_EQ(spec->student().checkpoint().uri(), dir.File("flan-t5-small"));
}

TEST(LoadJobSpecFileTest, ProblemsNameThePath) {
  distill::testing::TempDir dir("job_yaml_test");
  ASSERT_FALSE(dir.path().empty());
  std::string path = dir.File("bad.yaml");
  WriteFile(path, "name: x\ntraining: {objective: distill}\n");
  ExpectInvalid(LoadJobSpecFile(path).status(),
                path +
                    ":2: training.objective: expected one of: standard, step_by_step, cot_sequence; got "
                    "\"distill\"");
}

TEST(LoadJobSpecFileTest, MissingFileIsNotFoundNamingThePath) {
  absl::Status status = LoadJobSpecFile("/nonexistent-distill-dir/job.yaml").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("/nonexistent-distill-dir/job.yaml"));
}

TEST(ShortNameTest, LowerCaseWithoutThePrefix) {
  EXPECT_EQ(ShortName(v1::OBJECTIVE_STEP_BY_STEP), "step_by_step");
  EXPECT_EQ(ShortName(v1::VERDICT_BELOW_THRESHOLD), "below_threshold");
  EXPECT_EQ(EnumShortName(v1::DatasetFormat_descriptor()->FindValueByNumber(v1::DATASET_FORMAT_JSONL)),
            "jsonl");
}

}  // namespace
}  // namespace distill::jobs
