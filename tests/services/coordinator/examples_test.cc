// Every job file under examples/ parses and passes SubmitJob's validation, so the README's commands do not
// fail on a typo. (The offline demo itself runs end to end in tests/integration/pipeline_test.cc at tiny
// scale; the full demo is a manual run, see README.)

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "services/coordinator/job_validation.h"
#include "services/coordinator/jobspec/job_yaml.h"
#include "services/coordinator/pipeline/pipeline.h"
#include "tests/support/paths.h"

namespace distill::coordinator {
namespace {

TEST(ExamplesTest, EveryExampleJobParsesAndValidates) {
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(::distill::testing::SourceDir() + "/examples")) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    SCOPED_TRACE(entry.path().string());
    absl::StatusOr<v1::JobSpec> spec = jobs::LoadJobSpecFile(entry.path().string());
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_TRUE(ValidateJobSpec(*spec).ok()) << ValidateJobSpec(*spec);
    // Relative paths were made absolute against the file's folder.
    if (spec->dataset().uri().find(':') == std::string::npos) {
      EXPECT_TRUE(std::filesystem::path(spec->dataset().uri()).is_absolute()) << spec->dataset().uri();
    }
  }
  EXPECT_GE(files, 3);
}

TEST(ExamplesTest, TheDemoComparesStepByStepWithStandardFineTuningOnTheSameExamples) {
  absl::StatusOr<v1::JobSpec> spec =
      jobs::LoadJobSpecFile(::distill::testing::SourceDir() + "/examples/arith-demo.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::vector<StudentPlan> plans = PlanStudents(*spec);
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].objective, v1::OBJECTIVE_STEP_BY_STEP);
  EXPECT_EQ(plans[1].objective, v1::OBJECTIVE_STANDARD);
  // The same label source keeps the same examples (those whose rationale the curator accepted).
  EXPECT_EQ(plans[0].label_source, plans[1].label_source);
  EXPECT_EQ(spec->teacher().backend(), "synthetic");
  EXPECT_EQ(spec->dataset().uri().rfind("synthetic:", 0), 0u);
}

}  // namespace
}  // namespace distill::coordinator
