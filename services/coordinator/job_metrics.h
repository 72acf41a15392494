#ifndef DISTILL_SERVICES_COORDINATOR_JOB_METRICS_H_
#define DISTILL_SERVICES_COORDINATOR_JOB_METRICS_H_

// The coordinator's own metrics, derived from the job changes it saves (every change of a job passes
// through Changed(), so the metrics cannot drift from the store):
//
//   distill_coordinator_jobs{state}                        gauge: jobs in the store by state (queued, running,
//                                                          cancelling, succeeded, failed, cancelled)
//   distill_coordinator_jobs_submitted_total{outcome}      counter: SubmitJob calls by outcome (created, existing,
//                                                          rejected)
//   distill_coordinator_jobs_finished_total{state}         counter: jobs that reached a terminal state here
//   distill_coordinator_stages_running{stage}              gauge: stages running now
//   distill_coordinator_stage_duration_seconds{stage,state} histogram: start to end of each stage that ended
//                                                          (succeeded, failed, cancelled)
//   distill_coordinator_stage_units_total{stage}           counter: units of work done by stage: rows loaded,
//                                                          examples taught, examples curated, optimizer steps,
//                                                          examples evaluated, deploys
//
// Stage labels are the short stage names (load_dataset, teach, curate, train, evaluate, deploy). Every child
// exists from the start (at 0), so rates and ratios have series before the first job. Thread-safe.

#include <cstdint>
#include <map>
#include <string_view>

#include "common/metrics/counter.h"
#include "common/metrics/family.h"
#include "common/metrics/gauge.h"
#include "common/metrics/histogram.h"
#include "common/metrics/registry.h"
#include "distill/v1/jobs.pb.h"

namespace distill::coordinator {

class JobMetrics {
 public:
  // Registers the families with `registry`, which must outlive this object.
  explicit JobMetrics(metrics::Registry& registry);

  JobMetrics(const JobMetrics&) = delete;
  JobMetrics& operator=(const JobMetrics&) = delete;

  // At start-up: the jobs the store holds, by state, and the unfinished jobs being resumed (their running
  // stages count as running).
  void Load(const std::map<v1::JobState, int64_t>& counts, const std::vector<v1::Job>& unfinished);

  // A SubmitJob call's outcome: "created", "existing" or "rejected".
  void Submitted(std::string_view outcome);
  // A new job was stored (in its first state, QUEUED).
  void Created(const v1::Job& job);
  // One saved change of a job, from `before` to `after`.
  void Changed(const v1::Job& before, const v1::Job& after);

 private:
  metrics::Family<metrics::Gauge>& jobs_;
  metrics::Family<metrics::Counter>& submitted_;
  metrics::Family<metrics::Counter>& finished_;
  metrics::Family<metrics::Gauge>& running_;
  metrics::Family<metrics::Histogram>& duration_;
  metrics::Family<metrics::Counter>& units_;
};

}  // namespace distill::coordinator

#endif  // DISTILL_SERVICES_COORDINATOR_JOB_METRICS_H_
