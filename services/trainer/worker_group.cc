#include "services/trainer/worker_group.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/time/clock.h"
#include "common/strings/strings.h"
#include "services/trainer/training/worker_protocol.h"

namespace distill::trainer {
namespace {

// Longest line kept from a worker; the rest of a longer line is dropped.
constexpr size_t kMaxLineBytes = 1 << 20;
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);
// How long output is still read after every rank has exited (a grandchild may hold a pipe open).
constexpr absl::Duration kDrainTimeout = absl::Seconds(2);

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// A pipe whose read end is non-blocking; both ends close on exec.
absl::Status MakePipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError(strings::Cat("pipe: ", std::strerror(errno)));
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  return absl::OkStatus();
}

// Splits `data` into lines, keeping an unfinished last line in `*partial`.
template <typename F>
void SplitLines(std::string_view data, std::string* partial, F&& on_line) {
  while (!data.empty()) {
    const size_t newline = data.find('\n');
    const std::string_view piece = data.substr(0, newline);
    if (partial->size() < kMaxLineBytes) partial->append(piece.substr(0, kMaxLineBytes - partial->size()));
    if (newline == std::string_view::npos) return;
    on_line(std::string_view(*partial));
    partial->clear();
    data.remove_prefix(newline + 1);
  }
}

}  // namespace

struct WorkerGroup::Rank {
  int rank = 0;
  pid_t pid = -1;
  int stdout_fd = -1;  // rank 0 only
  int stderr_fd = -1;
  int log_fd = -1;
  std::string stdout_partial;
  std::string stderr_partial;
  std::optional<int> wait_status;
  bool stopped = false;
  absl::Time kill_at = absl::InfiniteFuture();
  std::string error;
  std::string last_line;
};

std::string DescribeWaitStatus(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    const char* abbrev = sigabbrev_np(sig);
    return abbrev != nullptr ? strings::Cat("signal ", sig, " (SIG", abbrev, ")")
                             : strings::Cat("signal ", sig);
  }
  if (WIFEXITED(wait_status)) return strings::Cat("status ", WEXITSTATUS(wait_status));
  return strings::Cat("wait status ", wait_status);
}

WorkerGroup::WorkerGroup(WorkerGroupOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<WorkerGroup>> WorkerGroup::Start(WorkerGroupOptions options) {
  auto group = std::unique_ptr<WorkerGroup>(new WorkerGroup(std::move(options)));
  const WorkerGroupOptions& o = group->options_;
  if (!o.log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.log_dir, ec);
  }
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return absl::InternalError(strings::Cat("/dev/null: ", std::strerror(errno)));
  const pid_t parent = getpid();
  absl::Status status = absl::OkStatus();
  for (size_t r = 0; r < o.rank_args.size() && status.ok(); ++r) {
    auto rank = std::make_unique<Rank>();
    rank->rank = static_cast<int>(r);
    int out[2] = {-1, -1};
    int err[2] = {-1, -1};
    int exec_error[2] = {-1, -1};
    if (r == 0) status = MakePipe(out);
    if (status.ok()) status = MakePipe(err);
    if (status.ok() && pipe2(exec_error, O_CLOEXEC) != 0) {
      status = absl::InternalError(strings::Cat("pipe: ", std::strerror(errno)));
    }
    if (!status.ok()) {
      for (int fd : {out[0], out[1], err[0], err[1], exec_error[0], exec_error[1]}) {
        if (fd >= 0) close(fd);
      }
      break;
    }
    if (!o.log_dir.empty()) {
      const std::string log = strings::Cat(o.log_dir, "/rank-", r, ".log");
      rank->log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
    // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
    std::vector<std::string> argv_strings;
    argv_strings.push_back(o.binary);
    argv_strings.insert(argv_strings.end(), o.rank_args[r].begin(), o.rank_args[r].end());
    std::vector<char*> argv;
    for (std::string& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The parent's environment, plus OMP_WAIT_POLICY=PASSIVE unless set: idle OpenMP threads then sleep
    // instead of spinning, which keeps ranks that share a host's cores from slowing each other (see
    // bench/trainer/README.md). It must be in the environment before the worker starts, so the worker
    // cannot set it itself.
    std::vector<std::string> env_strings;
    bool has_wait_policy = false;
    for (char** e = environ; *e != nullptr; ++e) {
      env_strings.emplace_back(*e);
      has_wait_policy = has_wait_policy || env_strings.back().rfind("OMP_WAIT_POLICY=", 0) == 0;
    }
    if (!has_wait_policy) env_strings.emplace_back("OMP_WAIT_POLICY=PASSIVE");
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int child_stdout = r == 0 ? out[1] : devnull;
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      setpgid(0, 0);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      signal(SIGPIPE, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      dup2(devnull, STDIN_FILENO);
      dup2(child_stdout, STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
#ifdef SYS_close_range
      // Descriptors the parent opened without O_CLOEXEC (sockets of other libraries) stay out of the
      // worker. CLOSE_RANGE_CLOEXEC = 4 (Linux 5.11); on older kernels this fails harmlessly.
      syscall(SYS_close_range, 3U, ~0U, 4U);
#endif
      execve(argv[0], argv.data(), envp.data());
      const int e = errno;
      [[maybe_unused]] ssize_t n = write(exec_error[1], &e, sizeof(e));
      _exit(127);
    }
    const int fork_errno = errno;
    close(exec_error[1]);
    if (out[1] >= 0) close(out[1]);
    close(err[1]);
    if (pid < 0) {
      close(exec_error[0]);
      CloseFd(out[0]);
      CloseFd(err[0]);
      CloseFd(rank->log_fd);
      status = absl::InternalError(
          strings::Cat("cannot start worker rank ", r, ": fork: ", std::strerror(fork_errno)));
      break;
    }
    rank->pid = pid;
    rank->stdout_fd = out[0];
    rank->stderr_fd = err[0];
    // The child's exec closes this pipe; a failed exec writes its errno first.
    int child_errno = 0;
    ssize_t n;
    do {
      n = read(exec_error[0], &child_errno, sizeof(child_errno));
    } while (n < 0 && errno == EINTR);
    close(exec_error[0]);
    group->ranks_.push_back(std::move(rank));
    if (n == static_cast<ssize_t>(sizeof(child_errno))) {
      status = absl::InternalError(
          strings::Cat("cannot start worker rank ", r, ": ", o.binary, ": ", std::strerror(child_errno)));
    }
  }
  close(devnull);
  if (!status.ok()) return status;  // the destructor kills and reaps what was started
  return group;
}

WorkerGroup::~WorkerGroup() {
  for (auto& rank : ranks_) {
    if (!rank->wait_status.has_value() && rank->pid > 0) {
      kill(-rank->pid, SIGKILL);
      kill(rank->pid, SIGKILL);
      int status = 0;
      while (waitpid(rank->pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    CloseFd(rank->stdout_fd);
    CloseFd(rank->stderr_fd);
    CloseFd(rank->log_fd);
  }
}

std::vector<pid_t> WorkerGroup::pids() const {
  std::vector<pid_t> pids;
  for (const auto& rank : ranks_) pids.push_back(rank->pid);
  return pids;
}

void WorkerGroup::StopRank(Rank& rank, absl::Time now) {
  if (rank.wait_status.has_value() || rank.stopped) return;
  rank.stopped = true;
  rank.kill_at = now + options_.kill_grace;
  // The whole process group: a worker's own children go too.
  kill(-rank.pid, SIGTERM);
  kill(rank.pid, SIGTERM);
}

void WorkerGroup::ReadOutput(absl::Duration timeout) {
  std::vector<pollfd> fds;
  std::vector<std::pair<Rank*, bool>> owners;  // (rank, is_stdout)
  for (auto& rank : ranks_) {
    if (rank->stdout_fd >= 0) {
      fds.push_back({rank->stdout_fd, POLLIN, 0});
      owners.push_back({rank.get(), true});
    }
    if (rank->stderr_fd >= 0) {
      fds.push_back({rank->stderr_fd, POLLIN, 0});
      owners.push_back({rank.get(), false});
    }
  }
  if (fds.empty()) {
    absl::SleepFor(timeout);
    return;
  }
  const int ready = poll(fds.data(), fds.size(), static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (ready <= 0) return;
  char buffer[1 << 16];
  for (size_t i = 0; i < fds.size(); ++i) {
    if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    Rank& rank = *owners[i].first;
    const bool is_stdout = owners[i].second;
    // Read until the pipe is empty, so a burst of lines is handled in one pass.
    while (true) {
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;  // EAGAIN: drained for now
      if (n == 0) {
        // EOF: deliver a last line that had no newline.
        std::string& partial = is_stdout ? rank.stdout_partial : rank.stderr_partial;
        if (!partial.empty())
          SplitLines("\n", &partial, [&](std::string_view line) {
            if (is_stdout) {
              if (options_.on_stdout_line) options_.on_stdout_line(line);
            } else {
              if (!line.empty()) rank.last_line = std::string(line);
              if (line.substr(0, kErrorPrefix.size()) == kErrorPrefix) {
                rank.error = std::string(line.substr(kErrorPrefix.size()));
              }
              if (options_.on_stderr_line) options_.on_stderr_line(rank.rank, line);
            }
          });
        CloseFd(is_stdout ? rank.stdout_fd : rank.stderr_fd);
        break;
      }
      const std::string_view data(buffer, static_cast<size_t>(n));
      if (is_stdout) {
        SplitLines(data, &rank.stdout_partial, [&](std::string_view line) {
          if (options_.on_stdout_line) options_.on_stdout_line(line);
        });
      } else {
        if (rank.log_fd >= 0) [[maybe_unused]]
          ssize_t w = write(rank.log_fd, data.data(), data.size());
        SplitLines(data, &rank.stderr_partial, [&](std::string_view line) {
          if (!line.empty()) rank.last_line = std::string(line);
          if (line.substr(0, kErrorPrefix.size()) == kErrorPrefix) {
            rank.error = std::string(line.substr(kErrorPrefix.size()));
          }
          if (options_.on_stderr_line) options_.on_stderr_line(rank.rank, line);
        });
      }
    }
  }
}

WorkerGroupResult WorkerGroup::Wait(const std::function<bool()>& should_stop) {
  WorkerGroupResult result;
  absl::Time drain_deadline = absl::InfiniteFuture();
  while (true) {
    const absl::Time now = absl::Now();
    bool all_exited = true;
    for (auto& rank : ranks_) all_exited = all_exited && rank->wait_status.has_value();
    if (!all_exited && !result.stop_requested && should_stop && should_stop()) {
      result.stop_requested = true;
      for (auto& rank : ranks_) StopRank(*rank, now);
    }
    bool output_open = false;
    for (auto& rank : ranks_) output_open = output_open || rank->stdout_fd >= 0 || rank->stderr_fd >= 0;
    if (all_exited && (!output_open || now >= drain_deadline)) break;
    ReadOutput(kPollInterval);
    if (all_exited) continue;
    const absl::Time after = absl::Now();
    for (auto& rank : ranks_) {
      if (rank->wait_status.has_value()) continue;
      int status = 0;
      const pid_t reaped = waitpid(rank->pid, &status, WNOHANG);
      if (reaped == rank->pid) {
        rank->wait_status = status;
        const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!clean && !rank->stopped && !result.failed_rank.has_value()) {
          result.failed_rank = rank->rank;
        }
        // The rest of the group cannot finish without this rank, or (when it finished cleanly)
        // must finish within the grace period.
        if (!clean) {
          for (auto& other : ranks_) StopRank(*other, after);
        } else {
          for (auto& other : ranks_) {
            if (!other->wait_status.has_value() && !other->stopped) {
              other->kill_at = std::min(other->kill_at, after + options_.kill_grace);
            }
          }
        }
      } else if (rank->stopped && after >= rank->kill_at) {
        kill(-rank->pid, SIGKILL);
        kill(rank->pid, SIGKILL);
      } else if (!rank->stopped && after >= rank->kill_at) {
        // A peer finished cleanly long ago and this rank is still running.
        StopRank(*rank, after);
      }
    }
    bool now_all_exited = true;
    for (auto& rank : ranks_) now_all_exited = now_all_exited && rank->wait_status.has_value();
    if (now_all_exited) drain_deadline = absl::Now() + kDrainTimeout;
  }
  // A failure seen at the same time as another rank's death by a signal: the signal is the cause (the
  // other rank most likely failed because its peer vanished).
  if (result.failed_rank.has_value()) {
    const Rank& first = *ranks_[*result.failed_rank];
    if (!WIFSIGNALED(*first.wait_status)) {
      for (auto& rank : ranks_) {
        if (!rank->stopped && WIFSIGNALED(*rank->wait_status)) {
          result.failed_rank = rank->rank;
          break;
        }
      }
    }
  }
  for (auto& rank : ranks_) {
    RankExit exit;
    exit.rank = rank->rank;
    exit.wait_status = *rank->wait_status;
    exit.stopped = rank->stopped;
    exit.error = rank->error;
    exit.last_line = rank->last_line;
    result.exits.push_back(std::move(exit));
    CloseFd(rank->stdout_fd);
    CloseFd(rank->stderr_fd);
    CloseFd(rank->log_fd);
  }
  return result;
}

}  // namespace distill::trainer
