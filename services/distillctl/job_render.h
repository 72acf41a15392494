#ifndef DISTILL_SERVICES_DISTILLCTL_JOB_RENDER_H_
#define DISTILL_SERVICES_DISTILLCTL_JOB_RENDER_H_

// Text views of a distillation job (proto/distill/v1/jobs.proto) for people, shared by `distillctl` and
// `distill run`. Pure functions: they format what the Job says and never claim more (a comparison of
// students says "beat" only when the numbers shown are strictly better). No I/O; functions that show an
// age or elapsed time take `now` (default: the real clock). Thread-safe.
//
// Stage names are written as in the proto without their prefix ("TRAIN", "LOAD_DATASET"); states, drop
// reasons, objectives and the like in lower case without their prefix ("running", "wrong_answer").

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "distill/v1/jobs.pb.h"

namespace distill::ctl {

// The live, multi-line view of a running job, ending in a newline: a header (id, name, state, elapsed),
// then one line per stage: name, state, a progress bar with done/total and unit, ETA (running) or
// duration (ended), and the stage's message. TRAIN adds a line per student (step/total, latest total loss,
// best validation accuracy); EVALUATE a line per student with its accuracy so far (and the teacher's);
// TEACH a line with samples, failures and cost. With `color`, states are coloured with ANSI escapes.
std::string RenderJobProgress(const v1::Job& job, bool color, absl::Time now = absl::Now());

// The final report for people, ending in a newline: id, name, state and duration; the teacher's accuracy
// (train, and test when measured); curation kept/dropped with every drop reason; a table of the students
// (objective, label source, test accuracy with correct/examples, parameters, size in MB, mean and p99
// latency in ms); one conclusion line per baseline comparing the primary student with it ("distilling
// step-by-step beat standard fine-tuning: 41.5% vs 23.0% test accuracy" only when the primary's accuracy is
// strictly higher as shown, else "… did not beat …"); the verdict and its reasoning; and for a FAILED or
// CANCELLED job, the cause.
std::string RenderJobSummary(const v1::Job& job);

// One line (no newline) for `distillctl list`, in the columns of RenderJobLineHeader(): id, name, state,
// current stage, duration (ended jobs) or time since start (others), and the primary student's test
// accuracy when known.
std::string RenderJobLine(const v1::Job& job, absl::Time now = absl::Now());
std::string RenderJobLineHeader();

// One line (no newline) for a stage update where the output is not a terminal, e.g.
// "TRAIN running 120/400 steps eta 40s: training primary: step 120/400 loss 1.23",
// "TEACH succeeded 900/900 examples in 3m02s", "TRAIN failed: primary: out of memory (RESOURCE_EXHAUSTED)".
std::string RenderStageEvent(const v1::StageStatus& stage);

// Formatting helpers, exposed for their tests and for callers that print next to the views.
// "41.5%" (one decimal) from a ratio in [0, 1].
std::string FormatPercent(double ratio);
// "45s", "3m02s", "1h05m"; "?" for a negative or non-finite value.
std::string FormatSeconds(double seconds);
// "TRAIN" for STAGE_TRAIN.
std::string StageName(v1::Stage stage);

}  // namespace distill::ctl

#endif  // DISTILL_SERVICES_DISTILLCTL_JOB_RENDER_H_
