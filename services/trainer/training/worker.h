#ifndef DISTILL_SERVICES_TRAINER_TRAINING_WORKER_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_WORKER_H_

// The `trainer-worker` process (worker_protocol.h): parses its flags, trains one rank (trainer.h), prints
// rank 0's events on stdout as WatchRunResponse JSON lines, and exits with the status code of the outcome
// after printing "error: <message>" as its last stderr line.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/trainer/training/trainer.h"
#include "services/trainer/training/worker_protocol.h"

namespace distill::trainer {

// Parses the worker's flags (argv after the command name):
//   --run-dir DIR --rank R --world-size N --master-addr ADDR --master-port PORT [--threads T]
// A flag that is absent takes the environment's value where Kubernetes and torchrun set one (RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT), else WorkerArgs' default. INVALID_ARGUMENT naming the flag.
absl::StatusOr<WorkerArgs> ParseWorkerArgs(const std::vector<std::string>& args);

// Runs a worker process's whole life; returns its exit status (0 = finished; otherwise the canonical
// absl::StatusCode; 0 with --help after printing the usage).
int RunTrainerWorker(const std::vector<std::string>& args);
// The same with test seams (trainer.h).
int RunTrainerWorker(const std::vector<std::string>& args, const TrainerHooks& hooks);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_WORKER_H_
