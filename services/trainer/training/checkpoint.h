#ifndef DISTILL_SERVICES_TRAINER_TRAINING_CHECKPOINT_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_CHECKPOINT_H_

// Training checkpoints and the final model directory (layout in worker_protocol.h).
//
// RUN_DIR/checkpoints/step-N/ holds
//   config.json, model.safetensors, spiece.model   the student (a Hugging Face model directory)
//   optimizer.pt                                   AdamW state (torch::save: step counts, both moments)
//   trainer_state.json                             TrainerState: step, scheduler, data position, RNG scheme,
//                                                  evaluations, spec and dataset hashes
// A checkpoint is written into checkpoints/.tmp-step-N/, every file and the directory are fsynced, the
// directory is renamed to step-N, and only then `latest` (a text file naming it) is replaced atomically; so
// `latest` always names a complete checkpoint, and a crash at any point leaves the previous one usable.
// Afterwards every checkpoint but the latest and the best is removed.
//
// RNG: the trainer reseeds libtorch's generator before every step from (seed, rank, step) and lays out each
// epoch's batches from (seed, epoch) (batching.h), so the random state of every rank — not only rank 0, which
// writes checkpoints — is a function of the step and the data position, both stored here; nothing else needs
// saving to continue bit-identically.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/student/student.h"
#include "distill/v1/trainer.pb.h"
#include "services/trainer/training/batching.h"
#include "torch/optim/optimizer.h"

namespace distill::trainer {

inline constexpr char kOptimizerFile[] = "optimizer.pt";
inline constexpr char kTrainerStateFile[] = "trainer_state.json";
inline constexpr char kManifestFile[] = "manifest.json";

// Everything besides tensors that a resumed run needs.
struct TrainerState {
  int64_t step = 0;          // optimizer steps completed
  int64_t total_steps = 0;   // the run's step budget when written
  DataPosition position;     // where step + 1 takes its batch
  uint64_t seed = 0;         // Hyperparameters.seed (RNG streams derive from it)
  double learning_rate = 0;  // rate of the last step taken (the scheduler is a function of `step`)
  std::string spec_hash;     // SpecHash of the run's spec
  std::string dataset_hash;  // FileContentHash of records.jsonl
  // Evaluation: the latest and the best result so far, and the checkpoint that holds the best weights.
  std::optional<v1::EvalResult> latest_eval;
  std::optional<v1::EvalResult> best_eval;
  std::string best_checkpoint;           // "step-N"; empty before the first evaluation
  double early_stopping_reference = -1;  // accuracy that later evaluations must beat by min_delta
  int evals_without_improvement = 0;
  bool stopped_early = false;
  // Mean training losses of the last progress window, for the manifest ("total", "label", ...).
  std::vector<std::pair<std::string, double>> last_losses;
};

std::string CheckpointsDir(const std::string& run_dir);
std::string CheckpointName(int64_t step);  // "step-N"

// The directory `latest` names, or nullopt when the run has no checkpoint. DATA_LOSS when `latest` names a
// directory that is missing.
absl::StatusOr<std::optional<std::string>> LatestCheckpoint(const std::string& run_dir);

// Reads DIR/trainer_state.json. INVALID_ARGUMENT naming the file when it is malformed.
absl::StatusOr<TrainerState> ReadTrainerState(const std::string& checkpoint_dir);
std::string TrainerStateToJson(const TrainerState& state);

// Writes the checkpoint of `state.step` as described above and returns its directory. Then removes every
// checkpoint other than this one and `state.best_checkpoint`.
absl::StatusOr<std::string> WriteCheckpoint(const std::string& run_dir, const student::Student& student,
                                            const torch::optim::Optimizer& optimizer,
                                            const TrainerState& state);

// Restores optimizer state written by WriteCheckpoint into `optimizer`, which must have been built with the
// same parameter groups. FAILED_PRECONDITION when it does not fit.
absl::Status LoadOptimizerState(const std::string& checkpoint_dir, torch::optim::Optimizer& optimizer);

// Removes leftovers of interrupted checkpoint and model writes (.tmp-* directories).
void RemoveIncompleteWrites(const std::string& run_dir);

// Copies the student files of `checkpoint_dir` to RUN_DIR/model/ with `manifest` (a JSON object; its "files"
// entry is filled in with each file's path, size and content hash), atomically (a temporary directory
// renamed over the old one). Returns the manifest's content hash.
absl::StatusOr<std::string> WriteModelDir(const std::string& run_dir, const std::string& checkpoint_dir,
                                          const std::string& manifest_json);

// fsyncs a file or directory. INTERNAL naming it on failure.
absl::Status SyncPath(const std::string& path);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_CHECKPOINT_H_
