// The coordinator's metrics follow job changes: jobs by state, stage durations and units, submissions.

#include "services/coordinator/job_metrics.h"

#include <string>

#include "absl/time/time.h"
#include "common/clock/timestamp.h"
#include "common/metrics/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/coordinator/pipeline/pipeline.h"

namespace distill::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class JobMetricsTest : public ::testing::Test {
 protected:
  std::string Text() const { return registry_.Serialize(); }

  // A new job, as SubmitJob stores it.
  v1::Job Created() {
    v1::JobSpec spec;
    spec.set_name("m");
    v1::Job job = NewJob("job-1", "req-1", spec, absl::FromUnixSeconds(1000));
    metrics_.Created(job);
    return job;
  }

  // Applies `mutate` to `job` and reports the change, as JobExecution::Update does.
  template <typename F>
  void Change(v1::Job& job, F mutate) {
    const v1::Job before = job;
    mutate(job);
    metrics_.Changed(before, job);
  }

  static v1::StageStatus& Stage(v1::Job& job, v1::Stage stage) {
    for (v1::StageStatus& s : *job.mutable_stages()) {
      if (s.stage() == stage) return s;
    }
    ADD_FAILURE() << "no stage " << stage;
    return *job.mutable_stages(0);
  }

  metrics::Registry registry_;
  JobMetrics metrics_{registry_};
};

TEST_F(JobMetricsTest, EveryChildExistsAtZeroBeforeAnyJob) {
  const std::string text = Text();
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs{state=\"queued\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs{state=\"cancelled\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs_submitted_total{outcome=\"rejected\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs_finished_total{state=\"succeeded\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stages_running{stage=\"load_dataset\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stage_units_total{stage=\"evaluate\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stage_duration_seconds_count{stage=\"deploy\",state=\"failed\"} 0\n"));
}

TEST_F(JobMetricsTest, AJobMovesThroughStatesStagesAndUnits) {
  metrics_.Submitted("created");
  v1::Job job = Created();
  EXPECT_THAT(Text(), HasSubstr("distill_coordinator_jobs{state=\"queued\"} 1\n"));
  EXPECT_THAT(Text(), HasSubstr("distill_coordinator_jobs_submitted_total{outcome=\"created\"} 1\n"));

  Change(job, [&](v1::Job& j) {
    j.set_state(v1::JOB_STATE_RUNNING);
    v1::StageStatus& s = Stage(j, v1::STAGE_LOAD_DATASET);
    s.set_state(v1::STAGE_STATE_RUNNING);
    *s.mutable_start_time() = ToTimestamp(absl::FromUnixSeconds(1000));
  });
  EXPECT_THAT(Text(), HasSubstr("distill_coordinator_jobs{state=\"queued\"} 0\n"));
  EXPECT_THAT(Text(), HasSubstr("distill_coordinator_jobs{state=\"running\"} 1\n"));
  EXPECT_THAT(Text(), HasSubstr("distill_coordinator_stages_running{stage=\"load_dataset\"} 1\n"));

  Change(job, [&](v1::Job& j) { Stage(j, v1::STAGE_LOAD_DATASET).set_done(40); });
  Change(job, [&](v1::Job& j) { Stage(j, v1::STAGE_LOAD_DATASET).set_done(100); });
  Change(job, [&](v1::Job& j) {
    v1::StageStatus& s = Stage(j, v1::STAGE_LOAD_DATASET);
    s.set_state(v1::STAGE_STATE_SUCCEEDED);
    *s.mutable_end_time() = ToTimestamp(absl::FromUnixSeconds(1003));
  });
  std::string text = Text();
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stage_units_total{stage=\"load_dataset\"} 100\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stages_running{stage=\"load_dataset\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stage_duration_seconds_count{stage=\"load_dataset\",state=\"succeeded\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stage_duration_seconds_sum{stage=\"load_dataset\",state=\"succeeded\"} 3\n"));
  // 3 s falls in the 6.4 s bucket, not in the 1.6 s one.
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stage_duration_seconds_bucket{stage=\"load_dataset\",state=\"succeeded\",le=\"1.6\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stage_duration_seconds_bucket{stage=\"load_dataset\",state=\"succeeded\",le=\"6.4\"} 1\n"));

  // A resumed stage that reports fewer units than before adds nothing; growth after it does.
  Change(job, [&](v1::Job& j) {
    v1::StageStatus& s = Stage(j, v1::STAGE_TEACH);
    s.set_state(v1::STAGE_STATE_RUNNING);
    s.set_done(30);
  });
  Change(job, [&](v1::Job& j) { Stage(j, v1::STAGE_TEACH).set_done(10); });
  Change(job, [&](v1::Job& j) { Stage(j, v1::STAGE_TEACH).set_done(15); });
  EXPECT_THAT(Text(), HasSubstr("distill_coordinator_stage_units_total{stage=\"teach\"} 35\n"));

  // Cancelled mid-TEACH: the stage ends CANCELLED (without times it is not timed), the job too.
  Change(job, [&](v1::Job& j) { j.set_state(v1::JOB_STATE_CANCELLING); });
  Change(job, [&](v1::Job& j) {
    Stage(j, v1::STAGE_TEACH).set_state(v1::STAGE_STATE_CANCELLED);
    j.set_state(v1::JOB_STATE_CANCELLED);
  });
  text = Text();
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs{state=\"running\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs{state=\"cancelling\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs{state=\"cancelled\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs_finished_total{state=\"cancelled\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stages_running{stage=\"teach\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stage_duration_seconds_count{stage=\"teach\",state=\"cancelled\"} 0\n"));

  // A save that changes nothing about state moves nothing.
  Change(job, [&](v1::Job& j) { j.set_failure_cause("cancelled by client"); });
  EXPECT_THAT(Text(), HasSubstr("distill_coordinator_jobs_finished_total{state=\"cancelled\"} 1\n"));
}

TEST_F(JobMetricsTest, LoadCountsStoredJobsAndResumedRunningStages) {
  v1::Job resumed = NewJob("job-2", "req-2", v1::JobSpec(), absl::FromUnixSeconds(1000));
  resumed.set_state(v1::JOB_STATE_RUNNING);
  Stage(resumed, v1::STAGE_TRAIN).set_state(v1::STAGE_STATE_RUNNING);
  metrics_.Load({{v1::JOB_STATE_SUCCEEDED, 7}, {v1::JOB_STATE_RUNNING, 1}}, {resumed});
  const std::string text = Text();
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs{state=\"succeeded\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_jobs{state=\"running\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("distill_coordinator_stages_running{stage=\"train\"} 1\n"));
  // Finished before this process: not counted as finished here.
  EXPECT_THAT(text, Not(HasSubstr("distill_coordinator_jobs_finished_total{state=\"succeeded\"} 7")));
}

}  // namespace
}  // namespace distill::coordinator
