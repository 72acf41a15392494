#ifndef DISTILL_SERVICES_TRAINER_TRAINING_SPEC_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_SPEC_H_

// A RunSpec checked and with its defaults applied: what the trainer service validates in StartRun and
// what every worker trains by.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "distill/v1/trainer.pb.h"

namespace distill::trainer {

// Whether this build can train on CUDA with NCCL (CMake option DISTILL_WITH_CUDA).
bool BuiltWithCuda();

// Checks every field of `spec` that can be checked without reading files: required fields set, numbers
// in range, consistent combinations (alpha only with STEP_BY_STEP, vocab_size only with a preset, early
// stopping only with an eval set, at least one of max_steps/max_epochs). INVALID_ARGUMENT listing every
// problem, "; "-separated, each naming the field by its path in the spec:
//   "training.hyperparameters.learning_rate: must be > 0, got 0"
// FAILED_PRECONDITION (and only that problem) when the spec asks for NCCL or CUDA and this build has no
// CUDA (BuiltWithCuda()). Files (dataset, checkpoint, eval examples) are checked when a worker opens
// them. The service calls this in StartRun; every worker calls it again on start.
absl::Status ValidateRunSpec(const v1::RunSpec& spec);

// Whether this host has the GPUs a valid spec asks for (training.distributed.device, and one GPU per rank
// for "cuda" or for the default on a host with GPUs). FAILED_PRECONDITION naming the field and what was
// found. The trainer calls it in StartRun and every worker on start; the coordinator, which may run
// where there is no GPU, does not.
absl::Status CheckDeviceOnThisHost(const v1::RunSpec& spec);

// The spec's effective settings: every "0 = default" resolved. Built only from a valid spec.
struct RunSettings {
  v1::Objective objective = v1::OBJECTIVE_STANDARD;
  double alpha = 0.5;  // STEP_BY_STEP label-loss weight
  v1::TokenDistillation token_distillation = v1::TOKEN_DISTILLATION_UNSPECIFIED;
  double token_distillation_weight = 1.0;

  double learning_rate = 0;  // peak
  int batch_size = 1;        // micro-batch per rank, records
  int grad_accumulation_steps = 1;
  int64_t warmup_steps = 0;
  v1::LrSchedule schedule = v1::LR_SCHEDULE_LINEAR;
  int64_t max_steps = 0;     // 0 = no step limit
  double max_epochs = 0;     // 0 = no epoch limit
  double max_grad_norm = 0;  // 0 = no clipping
  double weight_decay = 0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  uint64_t seed = 0;
  int64_t eval_interval_steps = 0;        // 0 = every epoch
  int64_t checkpoint_interval_steps = 0;  // 0 = after every evaluation
  int early_stopping_patience = 0;        // 0 = off
  double early_stopping_min_delta = 0;
  int max_source_tokens = 512;
  int max_target_tokens = 256;
  std::optional<double> dropout_rate;  // unset = the model config's
  int log_interval_steps = 10;

  int world_size = 1;
  bool use_cuda = false;     // device (and NCCL) resolved against this build and host
  int cuda_index = -1;       // "cuda:N": N; otherwise -1 (rank r takes GPU r)
  int threads_per_rank = 0;  // intra-op threads per rank; 0 = cores / world_size

  bool evaluate = false;        // an eval set is configured
  double holdout_fraction = 0;  // > 0: eval on held-out examples; 0: eval.examples
  int eval_max_examples = 0;    // 0 = all
  int eval_max_new_tokens = 128;

  // Global batch in records: batch_size × grad_accumulation_steps × world_size.
  int64_t global_batch() const { return int64_t{batch_size} * grad_accumulation_steps * world_size; }
};

// Resolves the defaults of a spec that passed ValidateRunSpec.
RunSettings ResolveRunSettings(const v1::RunSpec& spec);

// "sha256:<hex>" identifying what a run computes: the spec without the fields that do not change the
// trajectory (name, output_uri, max_worker_restarts, threads_per_rank), in canonical form. A checkpoint
// records it; resuming under another hash is FAILED_PRECONDITION.
std::string SpecHash(const v1::RunSpec& spec);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_SPEC_H_
