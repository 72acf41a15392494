#ifndef DISTILL_SERVICES_TRAINER_WORKER_GROUP_H_
#define DISTILL_SERVICES_TRAINER_WORKER_GROUP_H_

// One launch of a run's worker processes (one per rank, see training/worker_protocol.h), watched until
// every rank has exited. A rank that dies (signal or non-zero exit) gets the others stopped, so a group
// never hangs on a dead peer; a stop request stops them all. Stopping is SIGTERM, then SIGKILL after a
// grace period.
//
// Children run in their own process groups (a terminal's Ctrl-C reaches the launcher only, which
// decides what happens to the run) with no blocked signals, and get SIGKILL if the thread that started
// them dies (PR_SET_PDEATHSIG), so no worker outlives its launcher.

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace distill::trainer {

struct WorkerGroupOptions {
  // The executable every rank runs.
  std::string binary;
  // argv after the program name, one entry per rank (index = rank).
  std::vector<std::vector<std::string>> rank_args;
  // Where each rank's stderr is appended as rank-R.log (created if needed). Empty = not kept.
  std::string log_dir;
  // Called with every line rank 0 prints on stdout (without the newline), on the Wait() thread.
  std::function<void(std::string_view line)> on_stdout_line;
  // Called with every line any rank prints on stderr, on the Wait() thread. May be null.
  std::function<void(int rank, std::string_view line)> on_stderr_line;
  // SIGTERM → SIGKILL delay when stopping a rank.
  absl::Duration kill_grace = absl::Seconds(10);
};

// How one rank ended.
struct RankExit {
  int rank = 0;
  // As from waitpid().
  int wait_status = 0;
  // Whether the group had asked it to stop (SIGTERM/SIGKILL) before it exited.
  bool stopped = false;
  // Its last stderr line that starts with "error: ", without the prefix; empty if none.
  std::string error;
  // Its last non-empty stderr line, whatever it says.
  std::string last_line;
};

struct WorkerGroupResult {
  // One entry per rank, in rank order.
  std::vector<RankExit> exits;
  // The rank whose own failure (a signal it was not sent by the group, or a non-zero exit status)
  // ended the group; nullopt when none failed on its own.
  std::optional<int> failed_rank;
  // Whether should_stop() asked for the stop.
  bool stop_requested = false;
};

// Not thread-safe: Start(), Wait() and the destructor run on one thread, which must stay alive while
// the workers run (PR_SET_PDEATHSIG follows the thread). pids() may be read by other threads only
// through a copy made by the owner.
class WorkerGroup {
 public:
  // Starts every rank. INTERNAL when a process cannot be started (the ones already started are killed).
  static absl::StatusOr<std::unique_ptr<WorkerGroup>> Start(WorkerGroupOptions options);
  // Kills (SIGKILL) and reaps every rank still running.
  ~WorkerGroup();

  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  // Process ids by rank.
  std::vector<pid_t> pids() const;

  // Watches the ranks until all have exited and their output is read, calling the options' line
  // callbacks. `should_stop` is polled about every 50 ms; once it returns true every rank is stopped.
  WorkerGroupResult Wait(const std::function<bool()>& should_stop);

 private:
  struct Rank;
  explicit WorkerGroup(WorkerGroupOptions options);
  void ReadOutput(absl::Duration timeout);
  void StopRank(Rank& rank, absl::Time now);

  WorkerGroupOptions options_;
  std::vector<std::unique_ptr<Rank>> ranks_;
};

// "signal 9 (SIGKILL)" / "status 13" for a wait status.
std::string DescribeWaitStatus(int wait_status);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_WORKER_GROUP_H_
