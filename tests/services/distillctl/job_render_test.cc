// The job views of distillctl and `distill run` on hand-built Job protos: the live progress view, the
// final summary (and that its conclusion never claims a win the numbers do not show), list lines and
// line-oriented stage events.

#include "services/distillctl/job_render.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace distill::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kStart = absl::FromUnixSeconds(1735689600);  // 2025-01-01 00:00:00 UTC.

google::protobuf::Timestamp At(absl::Duration since_start) {
  google::protobuf::Timestamp t;
  t.set_seconds(absl::ToUnixSeconds(kStart + since_start));
  return t;
}

v1::StageStatus* AddStage(v1::Job* job, v1::Stage stage, v1::StageState state, int64_t done = 0,
                          int64_t total = 0) {
  v1::StageStatus* s = job->add_stages();
  s->set_stage(stage);
  s->set_state(state);
  s->set_done(done);
  s->set_total(total);
  return s;
}

// A job in TRAIN: two stages done, training two students, three to go.
v1::Job TrainingJob() {
  v1::Job job;
  job.set_job_id("job-20250101-7f3a9c");
  job.mutable_spec()->set_name("svamp-sbs");
  job.set_state(v1::JOB_STATE_RUNNING);
  job.set_current_stage(v1::STAGE_TRAIN);
  *job.mutable_start_time() = At(absl::ZeroDuration());
  v1::StageStatus* load = AddStage(&job, v1::STAGE_LOAD_DATASET, v1::STAGE_STATE_SUCCEEDED, 1000, 1000);
  *load->mutable_start_time() = At(absl::ZeroDuration());
  *load->mutable_end_time() = At(absl::Seconds(4));
  v1::StageStatus* teach = AddStage(&job, v1::STAGE_TEACH, v1::STAGE_STATE_SUCCEEDED, 900, 900);
  *teach->mutable_start_time() = At(absl::Seconds(4));
  *teach->mutable_end_time() = At(absl::Seconds(186));
  teach->mutable_teach()->set_samples_received(3600);
  teach->mutable_teach()->set_examples_failed(2);
  v1::ExampleErrorCount* error = teach->mutable_teach()->add_errors_by_reason();
  error->set_reason(v1::EXAMPLE_ERROR_REASON_CONTENT_REFUSED);
  error->set_count(2);
  AddStage(&job, v1::STAGE_CURATE, v1::STAGE_STATE_SUCCEEDED, 900, 900);
  v1::StageStatus* train = AddStage(&job, v1::STAGE_TRAIN, v1::STAGE_STATE_RUNNING, 120, 400);
  train->set_eta_seconds(40);
  train->set_message("training primary: step 120/400");
  v1::StudentRun* primary = train->mutable_train()->add_runs();
  primary->set_student("primary");
  primary->mutable_run()->set_state(v1::RUN_STATE_RUNNING);
  primary->mutable_run()->mutable_progress()->set_step(120);
  primary->mutable_run()->mutable_progress()->set_total_steps(200);
  v1::TaskLoss* label = primary->mutable_run()->mutable_progress()->add_losses();
  label->set_task(v1::LOSS_TASK_LABEL);
  label->set_loss(0.5);
  v1::TaskLoss* total = primary->mutable_run()->mutable_progress()->add_losses();
  total->set_task(v1::LOSS_TASK_TOTAL);
  total->set_loss(1.2345);
  primary->mutable_run()->mutable_best_eval()->set_accuracy(0.415);
  v1::StudentRun* baseline = train->mutable_train()->add_runs();
  baseline->set_student("standard");
  baseline->mutable_run()->set_state(v1::RUN_STATE_QUEUED);
  AddStage(&job, v1::STAGE_EVALUATE, v1::STAGE_STATE_PENDING);
  AddStage(&job, v1::STAGE_DEPLOY, v1::STAGE_STATE_PENDING);
  return job;
}

v1::StudentResult* AddResult(v1::JobReport* report, const std::string& name, v1::Objective objective,
                             v1::LabelSource labels, int64_t correct, int64_t examples) {
  v1::StudentResult* s = report->add_students();
  s->set_student(name);
  s->set_objective(objective);
  s->set_label_source(labels);
  s->set_correct(correct);
  s->set_examples(examples);
  s->set_test_accuracy(static_cast<double>(correct) / static_cast<double>(examples));
  s->set_parameters(60506624);
  s->set_size_bytes(242000000);
  s->set_mean_latency_seconds(0.0123);
  s->set_p99_latency_seconds(0.0301);
  return s;
}

// A finished job whose primary (step-by-step) scored `primary_correct` and whose standard fine-tuning
// baseline scored `baseline_correct`, both out of 200 test examples.
v1::Job FinishedJob(int64_t primary_correct, int64_t baseline_correct) {
  v1::Job job;
  job.set_job_id("job-20250101-7f3a9c");
  job.mutable_spec()->set_name("svamp-sbs");
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  job.set_current_stage(v1::STAGE_DEPLOY);
  *job.mutable_start_time() = At(absl::ZeroDuration());
  *job.mutable_end_time() = At(absl::Seconds(723));
  v1::JobReport* report = job.mutable_report();
  report->set_teacher_train_accuracy(0.82);
  report->set_teacher_test_accuracy(0.795);
  report->set_duration_seconds(723);
  v1::CurationSummary* curation = report->mutable_curation();
  curation->set_received(3000);
  curation->set_kept(2400);
  curation->set_dropped(600);
  curation->set_examples_with_gold(1000);
  curation->set_examples_teacher_correct(820);
  v1::DropCount* wrong = curation->add_dropped_by_reason();
  wrong->set_reason(v1::DROP_REASON_WRONG_ANSWER);
  wrong->set_count(450);
  v1::DropCount* short_rationale = curation->add_dropped_by_reason();
  short_rationale->set_reason(v1::DROP_REASON_RATIONALE_TOO_SHORT);
  short_rationale->set_count(150);
  AddResult(report, "primary", v1::OBJECTIVE_STEP_BY_STEP, v1::LABEL_SOURCE_SELF_CONSISTENCY, primary_correct,
            200);
  AddResult(report, "standard", v1::OBJECTIVE_STANDARD, v1::LABEL_SOURCE_GOLD_ONLY, baseline_correct, 200);
  report->set_verdict(v1::VERDICT_PROMOTED);
  report->set_verdict_message("test accuracy 0.41 >= 0.30");
  return job;
}

TEST(RenderJobProgressTest, ShowsEveryStageWithItsNumbers) {
  const std::string view = RenderJobProgress(TrainingJob(), /*color=*/false, kStart + absl::Seconds(133));
  EXPECT_THAT(view, HasSubstr("job job-20250101-7f3a9c (svamp-sbs)  running  2m13s\n"));
  for (const char* stage : {"LOAD_DATASET", "TEACH", "CURATE", "TRAIN", "EVALUATE", "DEPLOY"}) {
    EXPECT_THAT(view, HasSubstr(stage));
  }
  EXPECT_THAT(view, HasSubstr("1000/1000 rows"));
  EXPECT_THAT(view, HasSubstr("in 3m02s"));
  EXPECT_THAT(view, HasSubstr("content_refused 2"));
  EXPECT_THAT(view, HasSubstr("120/400 steps"));
  EXPECT_THAT(view, HasSubstr("eta 40s"));
  EXPECT_THAT(view, HasSubstr("training primary: step 120/400"));
  // Per student: step, the TOTAL loss (not the label loss) and the best accuracy.
  EXPECT_THAT(view, HasSubstr("step 120/200"));
  EXPECT_THAT(view, HasSubstr("loss 1.2345"));
  EXPECT_THAT(view, HasSubstr("best acc 41.5%"));
  EXPECT_THAT(view, HasSubstr("standard"));
  EXPECT_THAT(view, Not(HasSubstr("\x1b[")));
  EXPECT_THAT(RenderJobProgress(TrainingJob(), /*color=*/true, kStart), HasSubstr("\x1b["));
}

TEST(RenderJobProgressTest, EvaluateShowsAccuracySoFarPerStudent) {
  v1::Job job = TrainingJob();
  job.mutable_stages(3)->set_state(v1::STAGE_STATE_SUCCEEDED);
  v1::StageStatus* evaluate = job.mutable_stages(4);
  evaluate->set_state(v1::STAGE_STATE_RUNNING);
  evaluate->set_done(300);
  evaluate->set_total(400);
  evaluate->mutable_evaluate()->set_examples_total(200);
  v1::StudentResult* primary = evaluate->mutable_evaluate()->add_students();
  primary->set_student("primary");
  primary->set_examples(200);
  primary->set_correct(83);
  primary->set_test_accuracy(0.415);
  v1::StudentResult* baseline = evaluate->mutable_evaluate()->add_students();
  baseline->set_student("standard");
  baseline->set_examples(100);
  baseline->set_correct(23);
  baseline->set_test_accuracy(0.23);
  const std::string view = RenderJobProgress(job, /*color=*/false, kStart);
  EXPECT_THAT(view, HasSubstr("300/400 examples"));
  EXPECT_THAT(view, HasSubstr("acc 41.5%"));
  EXPECT_THAT(view, HasSubstr("(83/200 correct)"));
  EXPECT_THAT(view, HasSubstr("acc 23.0%"));
  EXPECT_THAT(view, HasSubstr("100/200 examples"));
}

TEST(RenderJobSummaryTest, ReportsTeacherCurationStudentsAndVerdict) {
  const std::string summary = RenderJobSummary(FinishedJob(83, 46));
  EXPECT_THAT(summary, HasSubstr("job job-20250101-7f3a9c (svamp-sbs): succeeded in 12m03s"));
  EXPECT_THAT(summary, HasSubstr("teacher accuracy: train 82.0% (820/1000), test 79.5%"));
  EXPECT_THAT(
      summary,
      HasSubstr("kept 2400 of 3000 candidates, dropped 600 (wrong_answer 450, rationale_too_short 150)"));
  EXPECT_THAT(summary, HasSubstr("step_by_step"));
  EXPECT_THAT(summary, HasSubstr("self_consistency"));
  EXPECT_THAT(summary, HasSubstr("gold_only"));
  EXPECT_THAT(summary, HasSubstr("41.5%"));
  EXPECT_THAT(summary, HasSubstr("83/200"));
  EXPECT_THAT(summary, HasSubstr("23.0%"));
  EXPECT_THAT(summary, HasSubstr("46/200"));
  EXPECT_THAT(summary, HasSubstr("60.5M"));
  EXPECT_THAT(summary, HasSubstr("242.0"));
  EXPECT_THAT(summary, HasSubstr("12.3"));
  EXPECT_THAT(summary, HasSubstr("30.1"));
  EXPECT_THAT(summary, HasSubstr("verdict: promoted: test accuracy 0.41 >= 0.30"));
}

TEST(RenderJobSummaryTest, ClaimsAWinOnlyWhenThePrimaryIsStrictlyBetter) {
  EXPECT_THAT(RenderJobSummary(FinishedJob(83, 46)),
              HasSubstr("distilling step-by-step beat standard fine-tuning (standard): 41.5% vs 23.0% test "
                        "accuracy\n"));

  const std::string equal = RenderJobSummary(FinishedJob(46, 46));
  EXPECT_THAT(equal,
              HasSubstr("distilling step-by-step did not beat standard fine-tuning (standard): 23.0% vs "
                        "23.0% test accuracy\n"));
  EXPECT_THAT(equal, Not(HasSubstr("step-by-step beat")));

  const std::string worse = RenderJobSummary(FinishedJob(40, 46));
  EXPECT_THAT(worse, HasSubstr("did not beat standard fine-tuning (standard): 20.0% vs 23.0%"));
  EXPECT_THAT(worse, Not(HasSubstr("step-by-step beat")));
}

TEST(RenderJobSummaryTest, ATieInThePercentagesShownIsNoWin) {
  v1::Job job = FinishedJob(83, 46);
  // Different numbers of examples, accuracies that differ only beyond two decimals of a percent.
  job.mutable_report()->mutable_students(0)->set_test_accuracy(0.230001);
  job.mutable_report()->mutable_students(0)->set_examples(300);
  job.mutable_report()->mutable_students(1)->set_test_accuracy(0.23);
  EXPECT_THAT(RenderJobSummary(job),
              HasSubstr("did not beat standard fine-tuning (standard): 23.00% vs 23.00%"));
}

TEST(RenderJobSummaryTest, AFailedJobShowsItsCause) {
  v1::Job job = FinishedJob(83, 46);
  job.set_state(v1::JOB_STATE_FAILED);
  job.mutable_report()->clear_students();
  job.mutable_report()->clear_verdict();
  job.set_failure_cause("TRAIN: primary: learning_rate: must be > 0");
  job.set_failure_code(3);
  const std::string summary = RenderJobSummary(job);
  EXPECT_THAT(summary, HasSubstr(": failed"));
  EXPECT_THAT(summary, HasSubstr("failed: TRAIN: primary: learning_rate: must be > 0 (INVALID_ARGUMENT)"));
  EXPECT_THAT(summary, Not(HasSubstr("beat")));
  EXPECT_THAT(summary, Not(HasSubstr("verdict")));
}

TEST(RenderJobLineTest, ShowsIdNameStateStageTimeAndAccuracy) {
  const std::string line = RenderJobLine(FinishedJob(83, 46), kStart + absl::Hours(5));
  EXPECT_THAT(line, HasSubstr("job-20250101-7f3a9c"));
  EXPECT_THAT(line, HasSubstr("svamp-sbs"));
  EXPECT_THAT(line, HasSubstr("succeeded"));
  EXPECT_THAT(line, HasSubstr("DEPLOY"));
  EXPECT_THAT(line, HasSubstr("12m03s"));
  EXPECT_THAT(line, HasSubstr("41.5%"));
  EXPECT_EQ(line.find('\n'), std::string::npos);

  const std::string running = RenderJobLine(TrainingJob(), kStart + absl::Seconds(75));
  EXPECT_THAT(running, HasSubstr("running"));
  EXPECT_THAT(running, HasSubstr("TRAIN"));
  EXPECT_THAT(running, HasSubstr("1m15s"));
}

TEST(RenderStageEventTest, OneLinePerUpdate) {
  v1::StageStatus train;
  train.set_stage(v1::STAGE_TRAIN);
  train.set_state(v1::STAGE_STATE_RUNNING);
  train.set_done(120);
  train.set_total(400);
  train.set_eta_seconds(40);
  train.set_message("training primary: step 120/400 loss 1.23");
  EXPECT_EQ(RenderStageEvent(train),
            "TRAIN running 120/400 steps eta 40s: training primary: step 120/400 loss 1.23");

  v1::StageStatus teach;
  teach.set_stage(v1::STAGE_TEACH);
  teach.set_state(v1::STAGE_STATE_SUCCEEDED);
  teach.set_done(900);
  teach.set_total(900);
  *teach.mutable_start_time() = At(absl::Seconds(4));
  *teach.mutable_end_time() = At(absl::Seconds(186));
  EXPECT_EQ(RenderStageEvent(teach), "TEACH succeeded 900/900 examples in 3m02s");

  v1::StageStatus failed;
  failed.set_stage(v1::STAGE_TRAIN);
  failed.set_state(v1::STAGE_STATE_FAILED);
  failed.set_message("primary: out of memory");
  failed.set_error_code(8);
  EXPECT_EQ(RenderStageEvent(failed), "TRAIN failed: primary: out of memory (RESOURCE_EXHAUSTED)");

  v1::StageStatus deploy;
  deploy.set_stage(v1::STAGE_DEPLOY);
  deploy.set_state(v1::STAGE_STATE_SKIPPED);
  EXPECT_EQ(RenderStageEvent(deploy), "DEPLOY skipped");
}

TEST(FormatTest, PercentSecondsAndStageNames) {
  EXPECT_EQ(FormatPercent(0.415), "41.5%");
  EXPECT_EQ(FormatSeconds(45), "45s");
  EXPECT_EQ(FormatSeconds(182), "3m02s");
  EXPECT_EQ(FormatSeconds(3900), "1h05m");
  EXPECT_EQ(FormatSeconds(-1), "?");
  EXPECT_EQ(StageName(v1::STAGE_LOAD_DATASET), "LOAD_DATASET");
}

}  // namespace
}  // namespace distill::ctl
