#ifndef DISTILL_SERVICES_TRAINER_RUN_MANAGER_H_
#define DISTILL_SERVICES_TRAINER_RUN_MANAGER_H_

// The trainer's core: owns training runs, in memory. Knows nothing of gRPC; the Trainer service
// (trainer_service.h) and `distill train` (train_command.h) both drive it.
//
// A run's life:
//   StartRun validates the spec and its artifacts, picks the run directory (RUN_DIR, the resolved
//   output_uri), writes RUN_DIR/spec.json with every URI resolved to a local path, and queues the run.
//   A supervisor thread per run waits for a slot (at most max_concurrent_runs train at once), starts
//   world_size worker processes (training/worker_protocol.h), turns rank 0's stdout events into the
//   run's snapshot and its WatchRun stream, and decides the end from the exit statuses:
//     every rank exited 0            → SUCCEEDED, `model` = RUN_DIR/model/
//     CancelRun                      → workers stopped, CANCELLED "cancelled by client"
//     a rank crashed (signal, or an exit status that may be transient: INTERNAL, UNKNOWN, UNAVAILABLE,
//       ABORTED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, DATA_LOSS)
//                                    → the other ranks are stopped and the whole group restarts from
//                                      its last checkpoint, up to max_worker_restarts times; then FAILED
//     any other exit status (bad input found by a worker: INVALID_ARGUMENT, FAILED_PRECONDITION, ...)
//                                    → FAILED at once: a restart would fail the same way
//     Shutdown()                     → workers stopped, FAILED UNAVAILABLE (starting the same spec again
//                                      with the same output_uri resumes from the checkpoint)
//   Runs do not depend on any client: watchers come and go.
//
// Metrics (all `distill_trainer_*`, no run label: values are those of the latest event of any run):
//   loss_nats{task}                     gauge: loss by task (total, label, rationale, token_kl)
//   learning_rate                       gauge
//   tokens_per_second, samples_per_second  gauges: throughput over all ranks
//   step_seconds{phase}                 histogram: data, forward, backward, all_reduce, optimizer and
//                                       total; one observation per progress event (the mean step
//                                       since the previous event)
//   eval_accuracy_ratio                 gauge: latest evaluation
//   checkpoint_write_seconds            histogram
//   world_size                          gauge: worker processes running, over all runs
//   runs{state}                         gauge: runs held in memory by state
//   worker_restarts_total               counter: worker-group restarts after a crash
//   runs_started_total{outcome}         counter: StartRun calls by outcome (created, existing, rejected)
//   runs_finished_total{state}          counter: runs that reached a terminal state, by state

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock/clock.h"
#include "common/metrics/registry.h"
#include "distill/v1/trainer.pb.h"
#include "services/trainer/trainer_config.h"

namespace distill::trainer {

// Thread-safe. Destroying it calls Shutdown().
class RunManager {
 public:
  // `registry` receives the distill_trainer_* metrics and must outlive the manager. INVALID_ARGUMENT
  // for a bad config (e.g. a malformed MASTER_PORT in the environment).
  static absl::StatusOr<std::unique_ptr<RunManager>> Create(TrainerConfig config, metrics::Registry* registry,
                                                            Clock* clock = Clock::Real());
  ~RunManager();

  RunManager(const RunManager&) = delete;
  RunManager& operator=(const RunManager&) = delete;

  struct StartResult {
    v1::Run run;
    // False when client_request_id matched an existing run with the same spec.
    bool created = false;
  };
  // See trainer.proto's StartRun: INVALID_ARGUMENT naming the field for bad specs and artifacts that
  // are missing or empty, FAILED_PRECONDITION for content hashes that do not match, checkpoints that
  // do not match their config, records that do not fit the objective, or an output_uri another active
  // run writes to; ALREADY_EXISTS for a reused client_request_id with another spec; UNAVAILABLE after
  // Shutdown().
  absl::StatusOr<StartResult> StartRun(const v1::StartRunRequest& request);

  // The run's snapshot. NOT_FOUND for an unknown id, INVALID_ARGUMENT for an empty one.
  absl::StatusOr<v1::Run> GetRun(const std::string& run_id) const;

  // Stops the run's workers (SIGTERM, SIGKILL after worker_kill_grace) and returns once it is
  // CANCELLED; a run that already ended is returned unchanged. NOT_FOUND / INVALID_ARGUMENT as GetRun.
  absl::StatusOr<v1::Run> CancelRun(const std::string& run_id);

  // Newest first. INVALID_ARGUMENT for page_size outside [0, 1000] or a page token that is malformed or
  // was issued for another state filter.
  absl::StatusOr<v1::ListRunsResponse> ListRuns(const v1::ListRunsRequest& request) const;

  // Streams the run to `send`: its snapshot, then every event as it happens, then (once terminal) the
  // final snapshot, and returns OK. Returns CANCELLED as soon as `send` returns false or `stop` returns
  // true (polled a few times a second); the run is not affected. NOT_FOUND / INVALID_ARGUMENT as
  // GetRun. `send` is called without any lock held.
  absl::Status WatchRun(const std::string& run_id,
                        const std::function<bool(const v1::WatchRunResponse&)>& send,
                        const std::function<bool()>& stop = nullptr);

  // Process ids of the run's current workers, by rank; empty while none run. For tests and diagnostics.
  std::vector<pid_t> WorkerPids(const std::string& run_id) const;

  // False once Shutdown() began, or when the worker binary is not executable.
  bool Ready() const;

  // Stops every worker and fails every unfinished run (UNAVAILABLE), waits for the supervisor threads,
  // and rejects later StartRun calls. Watchers receive their runs' final snapshots. Idempotent.
  void Shutdown();

 private:
  struct RunRecord;
  struct Metrics;
  struct GroupEnd;

  RunManager(TrainerConfig config, metrics::Registry* registry, Clock* clock);

  // StartRun's checks of the spec and its artifacts; fills the resolved copy of the spec that
  // spec.json holds (dataset, checkpoints and tokenizer as local paths).
  absl::Status ValidateAndResolve(const v1::RunSpec& spec, v1::RunSpec* resolved) const;
  // The local directory and URI of output_uri, or the default under runs_dir for `run_id`.
  absl::Status ResolveRunDir(const v1::RunSpec& spec, const std::string& run_id, std::string* dir,
                             std::string* uri) const;
  // "artifact://<path>" for a path under the artifact root, else "file://<path>"; a trailing '/' when
  // `directory`.
  std::string UriForPath(const std::string& path, bool directory) const;

  void Supervise(std::shared_ptr<RunRecord> run);
  // Runs one worker group of `run` to its end.
  GroupEnd RunGroup(RunRecord& run, int attempt);
  void HandleWorkerLine(RunRecord& run, std::string_view line);
  absl::StatusOr<int> AcquirePort();
  void ReleasePort(int port);

  // Appends an event to the run's stream and wakes its watchers.
  void PublishLocked(RunRecord& run, v1::WatchRunResponse event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetStateLocked(RunRecord& run, v1::RunState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Terminal transition: state, end time, cause, state_changed event, metrics.
  void FinishLocked(RunRecord& run, v1::RunState state, const std::string& cause, int code)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the oldest finished runs beyond max_retained_runs; their threads are moved to `joinable`.
  void EvictLocked(std::vector<std::thread>* joinable) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<RunRecord> FindLocked(const std::string& run_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TrainerConfig config_;
  Clock* const clock_;
  std::string worker_binary_;
  std::string master_addr_;
  int port_first_ = 0;  // 0: any free port
  int port_last_ = 0;
  std::unique_ptr<Metrics> metrics_;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // By run id; the sequence number orders them for ListRuns.
  std::map<std::string, std::shared_ptr<RunRecord>> runs_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::shared_ptr<RunRecord>> by_seq_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> by_request_id_ ABSL_GUARDED_BY(mu_);
  // Runs waiting for a slot, first come first served.
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<int> ports_in_use_ ABSL_GUARDED_BY(mu_);
};

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_RUN_MANAGER_H_
