#ifndef DISTILL_SERVICES_TRAINER_TRAINING_WORKER_PROTOCOL_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_WORKER_PROTOCOL_H_

// The contract between the trainer service (which owns runs: services/trainer/run_manager.h) and the
// worker processes that train (services/trainer/training/worker.h). One process per rank.
//
// Run directory (chosen by the service; the resolved RunSpec.output_uri):
//   RUN_DIR/spec.json              the RunSpec as proto3 JSON, every ArtifactRef.uri already resolved to a
//                                  local absolute path (written by the service before starting workers)
//   RUN_DIR/checkpoints/step-N/    atomic checkpoints (rank 0): model (config.json, model.safetensors,
//                                  spiece.model), optimizer state, scheduler, RNG and data position
//   RUN_DIR/checkpoints/latest     text file naming the newest complete checkpoint directory
//   RUN_DIR/model/                 the final Hugging Face model directory + manifest.json (on success)
//
// Invocation (argv after the program name):
//   trainer-worker --run-dir DIR --rank R --world-size N --master-addr ADDR --master-port PORT
//                  [--threads T]
// The `distill-trainer` and `distill` binaries both accept it as their first argument.
//
// A worker starting in a RUN_DIR that has a checkpoint resumes from it (FAILED_PRECONDITION when the
// checkpoint belongs to a different spec).
//
// Rank 0 reports on stdout, one JSON object per line: a distill.v1.WatchRunResponse (proto3 JSON) with
// `progress`, `eval`, `checkpoint` or `state_changed` set (state RUNNING, with resumed_from_step when it
// resumed). Other ranks print nothing on stdout. Everyone logs to stderr.
//
// Exit status: 0 = finished, RUN_DIR/model/ written. Otherwise the canonical absl::StatusCode of the
// failure (3 INVALID_ARGUMENT, 9 FAILED_PRECONDITION, 13 INTERNAL, ...), after printing the cause as the
// last stderr line, formatted "error: <message>". Death by a signal = crash. SIGTERM stops a worker at once
// (checkpoints already written stay valid).

#include <string>
#include <string_view>
#include <vector>

namespace distill::trainer {

inline constexpr std::string_view kWorkerCommand = "trainer-worker";
inline constexpr std::string_view kSpecFile = "spec.json";
inline constexpr std::string_view kCheckpointsDir = "checkpoints";
inline constexpr std::string_view kLatestCheckpointFile = "latest";
inline constexpr std::string_view kModelDir = "model";
inline constexpr std::string_view kErrorPrefix = "error: ";

struct WorkerArgs {
  std::string run_dir;
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;
  int threads = 0;  // intra-op threads; 0 = cores / world_size, at least 1
};

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_WORKER_PROTOCOL_H_
