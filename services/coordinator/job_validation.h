#ifndef DISTILL_SERVICES_COORDINATOR_JOB_VALIDATION_H_
#define DISTILL_SERVICES_COORDINATOR_JOB_VALIDATION_H_

// SubmitJob's check of a JobSpec, before anything is persisted or started.

#include "absl/status/status.h"
#include "distill/v1/jobs.pb.h"

namespace distill::coordinator {

// Checks everything that can be checked without other services or files: required sections, ranges,
// names, consistent combinations, and the training part through the trainer's own RunSpec validation
// (so both agree). INVALID_ARGUMENT listing every problem, "; "-separated, each naming the field by its
// path in the spec: "training.hyperparameters.learning_rate: must be > 0, got -1".
absl::Status ValidateJobSpec(const v1::JobSpec& spec);

}  // namespace distill::coordinator

#endif  // DISTILL_SERVICES_COORDINATOR_JOB_VALIDATION_H_
