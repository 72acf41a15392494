#ifndef DISTILL_TESTS_SERVICES_TRAINER_TRAINER_TEST_SUPPORT_H_
#define DISTILL_TESTS_SERVICES_TRAINER_TRAINER_TEST_SUPPORT_H_

// Shared by the trainer's service and CLI tests: a small arithmetic dataset in the curator's records
// format, and finding the worker processes of a run directory the way an operator would (/proc).

#include <dirent.h>
#include <signal.h>
#include <sys/types.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace distill::testing {

// `count` step-by-step records (one per example) of two-number additions, as the curator writes them.
// Without rationales when `with_rationales` is false.
inline std::string ArithmeticRecords(int count, bool with_rationales = true) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    const int a = i % 9 + 2;
    const int b = (3 * i) % 7 + 1;
    absl::StrAppend(&out, "{\"example_id\": \"q", i, "\", \"sample_index\": 0, \"input\": \"Tom has ", a,
                    " apples and buys ", b, " more. How many apples does he have?\", \"label_target\": \"",
                    a + b, "\"");
    if (with_rationales)
      absl::StrAppend(&out, ", \"rationale_target\": \"", a, " + ", b, " = ", a + b, ".\"");
    out += "}\n";
  }
  return out;
}

// Worker processes whose command line is `... trainer-worker --run-dir <run_dir>...`, by rank.
inline std::map<int, pid_t> FindWorkers(const std::string& run_dir) {
  std::map<int, pid_t> workers;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return workers;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"), std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::vector<std::string> argv;
    std::string arg;
    for (char c : buffer.str()) {
      if (c == '\0') {
        argv.push_back(arg);
        arg.clear();
      } else {
        arg.push_back(c);
      }
    }
    if (argv.size() < 2 || argv[1] != "trainer-worker") continue;
    std::string dir;
    int rank = -1;
    for (size_t i = 2; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--run-dir") dir = argv[i + 1];
      if (argv[i] == "--rank") (void)absl::SimpleAtoi(argv[i + 1], &rank);
    }
    // A zombie (exited, not yet reaped) no longer counts.
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat_line;
    std::getline(stat, stat_line);
    const size_t paren = stat_line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat_line.size() || stat_line[paren + 2] == 'Z') continue;
    if (dir.rfind(run_dir, 0) == 0 && rank >= 0) workers[rank] = pid;
  }
  closedir(proc);
  return workers;
}

// Whether every process in `pids` is gone (or a zombie), waiting up to `timeout`.
inline bool AllGone(const std::vector<pid_t>& pids, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    bool gone = true;
    for (pid_t pid : pids) {
      std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
      std::string line;
      if (!std::getline(stat, line)) continue;
      const size_t paren = line.rfind(')');
      if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') continue;
      gone = false;
    }
    if (gone) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace distill::testing

#endif  // DISTILL_TESTS_SERVICES_TRAINER_TRAINER_TEST_SUPPORT_H_
