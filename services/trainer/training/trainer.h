#ifndef DISTILL_SERVICES_TRAINER_TRAINING_TRAINER_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_TRAINER_H_

// One rank of a training run: the core that the `trainer-worker` process (worker.h) runs, callable
// in-process by tests and benchmarks.
//
// What a rank does (see worker_protocol.h for the run directory):
//   1. validates the spec, joins the other ranks (collective.h), runs student::ConfigureTrainingProcess
//      (libtorch's intra-op pool gets the rank's threads; malloc tuning; flush-to-zero), and picks its
//      device (training.distributed.device: rank r on GPU r, bf16 autocast there);
//   2. reads records.jsonl, checks the records against the objective, splits off the eval examples;
//   3. resumes from RUN_DIR/checkpoints/latest when there is one (FAILED_PRECONDITION when it was written
//      for another spec or another dataset), else builds the student (student_init.h; a tokenizer trained
//      on the data is trained by rank 0 and shared through the store) and broadcasts rank 0's parameters;
//   4. encodes every record once and trains: each step runs the rank's micro-batches of the global batch
//      (batching.h), sums gradients across ranks (bucketed all-reduce), clips the global gradient norm, sets
//      the scheduled learning rate and takes an AdamW step (weight decay on matrices only, not on layer-norm
//      scales);
//   5. evaluates on rank 0 (evaluation.h) every eval_interval_steps (0: at the end of every epoch) and at the
//      end, while the other ranks wait; rank 0 decides best checkpoint and early stopping and broadcasts the
//      decision;
//   6. checkpoints on rank 0 (checkpoint.h): every checkpoint_interval_steps, after every evaluation when
//      that is 0 (every epoch when there is no eval set), whenever an evaluation is the best so far, and at
//      the end;
//   7. rank 0 writes RUN_DIR/model/ (the best checkpoint when evaluating, else the last) with manifest.json.
//
// Loss normalisation: every micro-batch's loss terms are weighted by its share of the global batch's target
// tokens (label, rationale and teacher-aligned positions counted separately), so the sum over micro-batches
// and ranks is the token-mean loss of the whole global batch, however it is split. Gradients are therefore
// summed across ranks, not averaged: one rank with batch 8 and two ranks with batch 4 compute the same
// gradient up to float rounding. Loss values reported are these global token means.
//
// Determinism: the same spec, data and world size give the same parameters. Before every step each rank
// reseeds libtorch's generator from (seed, rank, step), so dropout masks depend only on those; a run
// resumed from a checkpoint continues bit-identically (on CPU, with the same thread count).
//
// Divergence: a step whose loss or gradient norm is not finite (on any rank: both are all-reduced first, so
// every rank stops at the same step) fails the run with FAILED_PRECONDITION — the spec (usually the learning
// rate) does not fit the data; restarting would diverge again. The update is not applied.
//
// Process-wide state: a rank sets libtorch's intra-op thread count, flush-to-zero and the
// default generator's seed, so a process runs one rank at a time (in-process callers such as tests run
// ranks sequentially; several ranks in one process only with dropout 0, since they would share the
// generator).
//
// Errors: INVALID_ARGUMENT/FAILED_PRECONDITION/NOT_FOUND for bad specs, data and checkpoints (messages name
// the field or file:line), UNAVAILABLE when another rank fails or cannot be reached, INTERNAL for libtorch
// and file-system failures.

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "distill/v1/trainer.pb.h"
#include "services/trainer/training/worker_protocol.h"

namespace distill::trainer {

// Receives rank 0's events (WatchRunResponse with state_changed, progress, eval or checkpoint set, time
// filled in), in order, on the training thread.
using EventSink = std::function<void(const v1::WatchRunResponse&)>;

// Test seams.
struct TrainerHooks {
  // > 0: return ABORTED right after the checkpoint of this step is written (or, on ranks that do not write,
  // after this step), as if the process had died there.
  int64_t abort_after_step = 0;
  // Called on every rank after each step (after its evaluation and checkpoint) with the steps completed.
  std::function<void(int64_t step)> after_step;
};

// RUN_DIR/spec.json as a RunSpec. NOT_FOUND or INVALID_ARGUMENT naming the file.
absl::StatusOr<v1::RunSpec> ReadRunSpec(const std::string& run_dir);

// Runs rank args.rank of the run in args.run_dir with its spec.json. OK when the run finished (rank 0 wrote
// RUN_DIR/model/).
absl::Status Train(const WorkerArgs& args, const EventSink& sink, const TrainerHooks& hooks = {});

// Same with the spec given rather than read from the run directory.
absl::Status TrainWithSpec(const v1::RunSpec& spec, const WorkerArgs& args, const EventSink& sink,
                           const TrainerHooks& hooks = {});

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_TRAINER_H_
