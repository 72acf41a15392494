// ValidateJobSpec: a realistic job passes; each kind of mistake is reported naming its field; several
// mistakes come back together in one status.

#include "services/coordinator/job_validation.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/coordinator/jobspec/job_yaml.h"
#include "tests/services/coordinator/full_job_yaml.h"

namespace distill::coordinator {
namespace {

using ::testing::HasSubstr;

constexpr const char* kArithJob = distill::testing::kFullJobYaml;

class JobValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<v1::JobSpec> spec = jobs::ParseJobSpecYaml(kArithJob, "arith.yaml");
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec_ = *spec;
  }

  // Expects the current spec to be rejected with a problem that contains `fragment`.
  void ExpectProblem(std::string_view fragment) {
    const absl::Status status = ValidateJobSpec(spec_);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), HasSubstr(fragment));
  }

  v1::JobSpec spec_;
};

TEST_F(JobValidationTest, TheDemoJobIsValid) {
  EXPECT_TRUE(ValidateJobSpec(spec_).ok()) << ValidateJobSpec(spec_);
}

TEST_F(JobValidationTest, AGivenSplitAndNoDeployAreValid) {
  spec_.mutable_dataset()->set_uri("/data/train.jsonl");
  spec_.mutable_dataset()->mutable_split()->mutable_given()->set_test_uri("/data/test.jsonl");
  spec_.clear_deploy();
  EXPECT_TRUE(ValidateJobSpec(spec_).ok()) << ValidateJobSpec(spec_);
}

TEST_F(JobValidationTest, BadName) {
  spec_.set_name("Arith_Demo");
  ExpectProblem("name: must be 1-63 characters of [a-z0-9-] starting with a letter, got \"Arith_Demo\"");
  spec_.set_name("7-up");
  ExpectProblem("name: must be 1-63 characters");
  spec_.set_name("");
  ExpectProblem("name: must be 1-63 characters");
  spec_.set_name(std::string(64, 'a'));
  ExpectProblem("name: must be 1-63 characters");
  spec_.set_name(std::string(63, 'a'));
  EXPECT_TRUE(ValidateJobSpec(spec_).ok()) << ValidateJobSpec(spec_);
}

TEST_F(JobValidationTest, MissingTask) {
  spec_.clear_task();
  ExpectProblem("task: is required");
}

TEST_F(JobValidationTest, MissingDatasetOrUri) {
  spec_.mutable_dataset()->clear_uri();
  ExpectProblem("dataset.uri: is required");
  spec_.clear_dataset();
  ExpectProblem("dataset: is required");
}

TEST_F(JobValidationTest, NoSplit) {
  spec_.mutable_dataset()->mutable_split()->clear_random();
  ExpectProblem("dataset.split: random or given is required");
}

TEST_F(JobValidationTest, GivenSplitWithoutATestFile) {
  spec_.mutable_dataset()->mutable_split()->mutable_given();
  ExpectProblem("dataset.split.given.test_uri: is required");
}

TEST_F(JobValidationTest, TestFractionOutOfRange) {
  spec_.mutable_dataset()->mutable_split()->mutable_random()->set_test_fraction(1.5);
  ExpectProblem("dataset.split.random.test_fraction: must be in (0, 1), got 1.5");
  spec_.mutable_dataset()->mutable_split()->mutable_random()->set_test_fraction(0);
  ExpectProblem("dataset.split.random.test_fraction: must be in (0, 1), got 0");
}

TEST_F(JobValidationTest, ValidationFractionOutOfRange) {
  spec_.mutable_dataset()->mutable_split()->set_validation_fraction(0.6);
  ExpectProblem("dataset.split.validation_fraction: must be in [0, 0.5), got 0.6");
  spec_.mutable_dataset()->mutable_split()->set_validation_fraction(-0.1);
  ExpectProblem("dataset.split.validation_fraction: must be in [0, 0.5)");
}

TEST_F(JobValidationTest, NegativeMaxExamples) {
  spec_.mutable_dataset()->set_max_examples(-1);
  ExpectProblem("dataset.max_examples: must be >= 0, got -1");
  spec_.mutable_dataset()->set_max_examples(0);
  spec_.mutable_evaluation()->set_max_examples(-3);
  ExpectProblem("evaluation.max_examples: must be >= 0, got -3");
}

TEST_F(JobValidationTest, BaselineNamedPrimary) {
  spec_.mutable_baselines(0)->set_name("primary");
  ExpectProblem("baselines[0].name: \"primary\" is reserved for the main student");
}

TEST_F(JobValidationTest, DuplicateBaselineNames) {
  v1::BaselineSpec* second = spec_.add_baselines();
  second->set_name("standard");
  second->set_objective(v1::OBJECTIVE_STANDARD);
  ExpectProblem("baselines[1].name: \"standard\" is used twice");
}

TEST_F(JobValidationTest, BadBaselineName) {
  spec_.mutable_baselines(0)->set_name("Standard FT");
  ExpectProblem("baselines[0].name: must be 1-64 characters of [a-z0-9_-], got \"Standard FT\"");
  spec_.mutable_baselines(0)->set_name("standard_ft-2");
  EXPECT_TRUE(ValidateJobSpec(spec_).ok()) << ValidateJobSpec(spec_);
}

TEST_F(JobValidationTest, BaselineWithoutObjective) {
  spec_.mutable_baselines(0)->clear_objective();
  ExpectProblem("baselines[0].objective: is required");
}

TEST_F(JobValidationTest, BaselineAlphaOnlyForStepByStep) {
  spec_.mutable_baselines(0)->set_alpha(0.3);
  ExpectProblem("baselines[0].alpha: only for objective step_by_step");

  spec_.mutable_baselines(0)->set_objective(v1::OBJECTIVE_STEP_BY_STEP);
  EXPECT_TRUE(ValidateJobSpec(spec_).ok()) << ValidateJobSpec(spec_);
  spec_.mutable_baselines(0)->set_alpha(1.5);
  ExpectProblem("baselines[0].alpha: must be in [0, 1], got 1.5");
}

TEST_F(JobValidationTest, CurationFormatMustFitTheObjective) {
  spec_.mutable_curation()->set_format(v1::OUTPUT_FORMAT_COT_SEQUENCE);
  ExpectProblem(
      "curation.format: OUTPUT_FORMAT_COT_SEQUENCE does not fit training.objective OBJECTIVE_STEP_BY_STEP");
  spec_.mutable_curation()->set_format(v1::OUTPUT_FORMAT_STEP_BY_STEP);
  EXPECT_TRUE(ValidateJobSpec(spec_).ok()) << ValidateJobSpec(spec_);
}

TEST_F(JobValidationTest, TeacherRequiredUnlessEveryStudentIsGoldOnly) {
  spec_.clear_teacher();
  // The primary student learns from teacher samples (label_source gold).
  ExpectProblem("teacher: is required unless every student uses label_source gold_only");

  // A baseline that inherits the primary's label source needs it too.
  spec_.mutable_curation()->set_label_source(v1::LABEL_SOURCE_GOLD_ONLY);
  spec_.mutable_training()->set_objective(v1::OBJECTIVE_STANDARD);
  spec_.mutable_training()->clear_alpha();
  spec_.mutable_baselines(0)->set_label_source(v1::LABEL_SOURCE_SELF_CONSISTENCY);
  ExpectProblem("teacher: is required");

  // Every student on gold labels only: no teacher needed.
  spec_.mutable_baselines(0)->set_label_source(v1::LABEL_SOURCE_GOLD_ONLY);
  EXPECT_TRUE(ValidateJobSpec(spec_).ok()) << ValidateJobSpec(spec_);
  spec_.mutable_baselines(0)->clear_label_source();
  EXPECT_TRUE(ValidateJobSpec(spec_).ok()) << ValidateJobSpec(spec_);
}

TEST_F(JobValidationTest, TeacherFields) {
  spec_.mutable_teacher()->set_samples_per_example(0);
  ExpectProblem("teacher.samples_per_example: must be >= 1, got 0");
  spec_.mutable_teacher()->set_samples_per_example(1);
  spec_.mutable_teacher()->clear_backend();
  ExpectProblem("teacher.backend: is required");
  spec_.mutable_teacher()->set_backend("synthetic");
  spec_.mutable_teacher()->set_budget_usd(-1);
  ExpectProblem("teacher.budget_usd: must be >= 0, got -1");
}

TEST_F(JobValidationTest, TrainingIsCheckedByTheTrainersRules) {
  spec_.mutable_training()->mutable_hyperparameters()->set_learning_rate(-1);
  ExpectProblem("training.hyperparameters.learning_rate: must be > 0, got -1");
}

TEST_F(JobValidationTest, BadDeployModelName) {
  spec_.mutable_deploy()->set_model_name("Arith Model");
  ExpectProblem(
      "deploy.model_name: must be 1-63 characters of [a-z0-9._-] starting with a letter or digit, got "
      "\"Arith Model\"");
  spec_.mutable_deploy()->set_model_name("-arith");
  ExpectProblem("deploy.model_name: ");
  spec_.mutable_deploy()->set_model_name(std::string(64, 'm'));
  ExpectProblem("deploy.model_name: ");
  spec_.mutable_deploy()->set_model_name("arith.v2_small-1");
  EXPECT_TRUE(ValidateJobSpec(spec_).ok()) << ValidateJobSpec(spec_);
}

TEST_F(JobValidationTest, MinAccuracyOutOfRange) {
  spec_.mutable_deploy()->set_min_accuracy(2);
  ExpectProblem("deploy.min_accuracy: must be in [0, 1], got 2");
}

TEST_F(JobValidationTest, EveryProblemIsReportedAtOnce) {
  spec_.set_name("Bad Name");
  spec_.mutable_dataset()->mutable_split()->mutable_random()->set_test_fraction(1.5);
  spec_.mutable_baselines(0)->set_name("primary");
  spec_.mutable_teacher()->set_samples_per_example(0);
  spec_.mutable_training()->mutable_hyperparameters()->set_learning_rate(-1);
  spec_.mutable_deploy()->set_min_accuracy(2);

  const absl::Status status = ValidateJobSpec(spec_);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  const std::vector<std::string> problems = absl::StrSplit(status.message(), "; ");
  EXPECT_EQ(problems.size(), 6u) << status.message();
  for (const char* field : {"name: ", "dataset.split.random.test_fraction: ", "baselines[0].name: ",
                            "teacher.samples_per_example: ", "training.hyperparameters.learning_rate: ",
                            "deploy.min_accuracy: "}) {
    EXPECT_THAT(status.message(), HasSubstr(field));
  }
}

}  // namespace
}  // namespace distill::coordinator
