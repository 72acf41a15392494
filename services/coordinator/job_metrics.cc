#include "services/coordinator/job_metrics.h"

#include <string>

#include "common/clock/timestamp.h"
#include "common/config/proto_yaml.h"
#include "common/metrics/builder.h"
#include "services/coordinator/pipeline/job_execution.h"

namespace distill::coordinator {
namespace {

constexpr v1::JobState kJobStates[] = {v1::JOB_STATE_QUEUED,    v1::JOB_STATE_RUNNING,    v1::JOB_STATE_CANCELLING,
                                       v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED,     v1::JOB_STATE_CANCELLED};
constexpr v1::Stage kStages[] = {v1::STAGE_LOAD_DATASET, v1::STAGE_TEACH,    v1::STAGE_CURATE,
                                 v1::STAGE_TRAIN,        v1::STAGE_EVALUATE, v1::STAGE_DEPLOY};
constexpr v1::StageState kStageEnds[] = {v1::STAGE_STATE_SUCCEEDED, v1::STAGE_STATE_FAILED, v1::STAGE_STATE_CANCELLED};

bool IsStageEnd(v1::StageState state) {
  return state == v1::STAGE_STATE_SUCCEEDED || state == v1::STAGE_STATE_FAILED || state == v1::STAGE_STATE_CANCELLED;
}

// From a tenth of a second to about seven hours.
metrics::BucketBoundaries StageBuckets() { return metrics::ExponentialBuckets(0.1, 4, 10); }

}  // namespace

JobMetrics::JobMetrics(metrics::Registry& r)
    : jobs_(metrics::BuildGauge()
                .Name("distill_coordinator_jobs")
                .Help("Jobs in the coordinator's store, by state.")
                .Register(r)),
      submitted_(metrics::BuildCounter()
                     .Name("distill_coordinator_jobs_submitted_total")
                     .Help("SubmitJob calls by outcome: created (a new job), existing (the client_request_id's "
                           "job), rejected (an error).")
                     .Register(r)),
      finished_(metrics::BuildCounter()
                    .Name("distill_coordinator_jobs_finished_total")
                    .Help("Jobs that reached a terminal state, by state.")
                    .Register(r)),
      running_(metrics::BuildGauge()
                   .Name("distill_coordinator_stages_running")
                   .Help("Pipeline stages running now, by stage.")
                   .Register(r)),
      duration_(metrics::BuildHistogram()
                    .Name("distill_coordinator_stage_duration_seconds")
                    .Help("Start to end of a pipeline stage, seconds, by stage and how it ended.")
                    .Register(r)),
      units_(metrics::BuildCounter()
                 .Name("distill_coordinator_stage_units_total")
                 .Help("Work done by pipeline stage: rows loaded (load_dataset), examples taught (teach), "
                       "examples curated (curate), optimizer steps (train), examples evaluated (evaluate), "
                       "deploys (deploy).")
                 .Register(r)) {
  for (v1::JobState state : kJobStates) jobs_.Add({{"state", config::ShortName(state)}});
  for (const char* outcome : {"created", "existing", "rejected"}) submitted_.Add({{"outcome", outcome}});
  for (v1::JobState state : {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
    finished_.Add({{"state", config::ShortName(state)}});
  }
  for (v1::Stage stage : kStages) {
    const std::string name = config::ShortName(stage);
    running_.Add({{"stage", name}});
    units_.Add({{"stage", name}});
    for (v1::StageState end : kStageEnds) {
      duration_.Add({{"stage", name}, {"state", config::ShortName(end)}}, StageBuckets());
    }
  }
}

void JobMetrics::Load(const std::map<v1::JobState, int64_t>& counts, const std::vector<v1::Job>& unfinished) {
  for (const auto& [state, count] : counts) jobs_.Add({{"state", config::ShortName(state)}}).Set(static_cast<double>(count));
  for (const v1::Job& job : unfinished) {
    for (const v1::StageStatus& stage : job.stages()) {
      if (stage.state() == v1::STAGE_STATE_RUNNING) running_.Add({{"stage", config::ShortName(stage.stage())}}).Increment();
    }
  }
}

void JobMetrics::Submitted(std::string_view outcome) { submitted_.Add({{"outcome", std::string(outcome)}}).Increment(); }

void JobMetrics::Created(const v1::Job& job) { jobs_.Add({{"state", config::ShortName(job.state())}}).Increment(); }

void JobMetrics::Changed(const v1::Job& before, const v1::Job& after) {
  if (before.state() != after.state()) {
    jobs_.Add({{"state", config::ShortName(before.state())}}).Decrement();
    jobs_.Add({{"state", config::ShortName(after.state())}}).Increment();
    if (IsTerminal(after.state()) && !IsTerminal(before.state())) {
      finished_.Add({{"state", config::ShortName(after.state())}}).Increment();
    }
  }
  for (int i = 0; i < after.stages_size(); ++i) {
    const v1::StageStatus& now = after.stages(i);
    const v1::StageStatus* was = i < before.stages_size() ? &before.stages(i) : nullptr;
    const std::string stage = config::ShortName(now.stage());
    const v1::StageState was_state = was == nullptr ? v1::STAGE_STATE_PENDING : was->state();
    // Units: only growth counts (a resumed stage may report fewer units than before the restart).
    const int64_t was_done = was == nullptr ? 0 : was->done();
    if (now.done() > was_done) units_.Add({{"stage", stage}}).Increment(static_cast<double>(now.done() - was_done));
    if (was_state == now.state()) continue;
    if (was_state == v1::STAGE_STATE_RUNNING) running_.Add({{"stage", stage}}).Decrement();
    if (now.state() == v1::STAGE_STATE_RUNNING) running_.Add({{"stage", stage}}).Increment();
    if (IsStageEnd(now.state()) && now.has_start_time() && now.has_end_time()) {
      const double seconds = absl::ToDoubleSeconds(FromTimestamp(now.end_time()) - FromTimestamp(now.start_time()));
      duration_.Add({{"stage", stage}, {"state", config::ShortName(now.state())}}, StageBuckets()).Observe(seconds);
    }
  }
}

}  // namespace distill::coordinator
