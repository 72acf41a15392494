#ifndef DISTILL_SERVICES_TRAINER_TRAINER_CONFIG_H_
#define DISTILL_SERVICES_TRAINER_TRAINER_CONFIG_H_

// The `trainer:` section of the trainer's config file:
//
//   trainer:
//     artifact_root: distill-data/artifacts   # artifact://x resolves to <artifact_root>/x
//     runs_dir: runs                          # runs without output_uri: artifact://runs/<run_id>/
//     worker_binary: ""                       # empty = this binary (/proc/self/exe)
//     max_concurrent_runs: 1                  # more wait QUEUED
//     master_addr: ""                         # empty = $MASTER_ADDR, else 127.0.0.1
//     master_port_range: ""                   # "" = $MASTER_PORT, else a free port; "0" = a free port;
//                                             # "29500" or "29500-29599"
//     threads_per_rank: 0                     # when a spec says 0; 0 = cores / world_size
//     worker_kill_grace: 10s                  # SIGTERM, then SIGKILL after this
//     forward_worker_logs: true               # copy workers' stderr lines to the service's stderr
//     max_retained_runs: 1000                 # finished runs kept in memory (oldest forgotten first)

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/yaml.h"

namespace distill::trainer {

struct TrainerConfig {
  // Root directory of the artifact store. Empty = no store: only file:// URIs and absolute paths
  // resolve (how `distill train` runs).
  std::string artifact_root = "distill-data/artifacts";
  // Directory inside the store for runs whose spec has no output_uri: artifact://<runs_dir>/<run_id>/.
  std::string runs_dir = "runs";
  // Executable started as `<worker_binary> trainer-worker --run-dir ...` for every rank. Empty = the
  // running binary itself (/proc/self/exe), which is how `distill-trainer` and `distill` run.
  std::string worker_binary;
  // Runs whose workers train at the same time, >= 1. Later runs wait in QUEUED, first come first served.
  int max_concurrent_runs = 1;
  // Address of the c10d TCPStore that rank 0 hosts and the other ranks connect to. Empty =
  // $MASTER_ADDR when set, else 127.0.0.1 (local workers).
  std::string master_addr;
  // TCPStore ports: "" = $MASTER_PORT when set, else a free port; "0" = a free port chosen for every
  // worker group (bind to port 0); "P" = always port P; "A-B" = the first port in [A, B] that no other
  // running group uses and that can be bound.
  std::string master_port_range;
  // Intra-op threads per rank for specs that leave threads_per_rank at 0, >= 0. 0 = the worker's
  // default (cores / world_size, at least 1).
  int threads_per_rank = 0;
  // How long a worker may take to exit after SIGTERM (cancel, crash of another rank, shutdown) before
  // it is sent SIGKILL, > 0.
  absl::Duration worker_kill_grace = absl::Seconds(10);
  // Copy every stderr line of every worker to this process's stderr (they also go to
  // RUN_DIR/logs/rank-R.log).
  bool forward_worker_logs = true;
  // Finished runs kept in memory for GetRun/ListRuns, >= 1; the oldest are forgotten first.
  int max_retained_runs = 1000;
};

// Reads `root`'s `trainer:` section over the values already in *config; problems are recorded in the
// document (reported by Document::Finish()).
void ReadTrainerConfig(config::Node& root, TrainerConfig* config);

// The TCPStore ports `range` allows as [first, last]; first == last == 0 means "any free port".
// INVALID_ARGUMENT for anything but "", "0", "P" or "A-B" with 1 <= A <= B <= 65535 ("" reads as 0).
struct PortRange {
  int first = 0;
  int last = 0;
};
absl::StatusOr<PortRange> ParsePortRange(const std::string& range);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINER_CONFIG_H_
