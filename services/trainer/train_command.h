#ifndef DISTILL_SERVICES_TRAINER_TRAIN_COMMAND_H_
#define DISTILL_SERVICES_TRAINER_TRAIN_COMMAND_H_

// `distill train`: one training run without the cluster, on the trainer's own code path (a RunManager in
// this process; workers are this binary's `trainer-worker` subcommand).
//
//   distill train --data RECORDS.jsonl|CURATED_DIR --objective standard|step_by_step|cot_sequence
//                 --init tiny|mini|small|base|CHECKPOINT_DIR --out DIR
//                 [--world-size N] [--max-steps N] [--epochs E] [--batch-size B] [--lr X] [--alpha A]
//                 [--eval-holdout F | --eval-examples FILE] [--task-type numeric|...] [--seed S] ...
//
// Progress goes to stderr: a redrawn progress bar when stderr is a terminal, plain lines otherwise.
// Checkpoints and logs go to the run directory (--run-dir, default DIR/run); running the same command
// again resumes from its last checkpoint. On success the model (config.json, model.safetensors,
// spiece.model, manifest.json) is copied into DIR and a JSON summary is printed on stdout. Ctrl-C (or
// SIGTERM) cancels the run: the workers stop and the checkpoints stay.

#include <string>
#include <vector>

namespace distill::trainer {

// Returns the exit code: 0 when the run succeeded, 2 for bad flags or input (including a run that
// failed on its input), 1 for any other failure and for a cancelled run.
int RunTrain(const std::vector<std::string>& args);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAIN_COMMAND_H_
