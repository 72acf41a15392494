#include "services/trainer/trainer_config.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/strings/strings.h"

namespace distill::trainer {

void ReadTrainerConfig(config::Node& root, TrainerConfig* config) {
  config::Node node = root.Child("trainer");
  node.Read("artifact_root", &config->artifact_root);
  node.Read("runs_dir", &config->runs_dir);
  node.Read("worker_binary", &config->worker_binary);
  node.Read("max_concurrent_runs", &config->max_concurrent_runs);
  node.Read("master_addr", &config->master_addr);
  node.Read("master_port_range", &config->master_port_range);
  node.Read("threads_per_rank", &config->threads_per_rank);
  node.Read("worker_kill_grace", &config->worker_kill_grace);
  node.Read("forward_worker_logs", &config->forward_worker_logs);
  node.Read("max_retained_runs", &config->max_retained_runs);
  node.Check(!config->artifact_root.empty(), "artifact_root", "must not be empty");
  node.Check(!config->runs_dir.empty() && config->runs_dir.front() != '/' &&
                 config->runs_dir.find("..") == std::string::npos,
             "runs_dir",
             strings::Cat("must be a relative path inside the store, got \"", config->runs_dir, "\""));
  node.Check(config->max_concurrent_runs >= 1, "max_concurrent_runs",
             strings::Cat("must be >= 1, got ", config->max_concurrent_runs));
  if (absl::StatusOr<PortRange> range = ParsePortRange(config->master_port_range); !range.ok()) {
    node.Error("master_port_range", std::string(range.status().message()));
  }
  node.Check(config->threads_per_rank >= 0, "threads_per_rank",
             strings::Cat("must be >= 0, got ", config->threads_per_rank));
  node.Check(config->worker_kill_grace > absl::ZeroDuration(), "worker_kill_grace",
             strings::Cat("must be > 0, got ", absl::FormatDuration(config->worker_kill_grace)));
  node.Check(config->max_retained_runs >= 1, "max_retained_runs",
             strings::Cat("must be >= 1, got ", config->max_retained_runs));
}

absl::StatusOr<PortRange> ParsePortRange(const std::string& range) {
  if (range.empty() || range == "0") return PortRange{};
  std::vector<std::string> parts = absl::StrSplit(range, absl::MaxSplits('-', 1));
  PortRange result;
  const bool parsed = absl::SimpleAtoi(parts[0], &result.first) &&
                      absl::SimpleAtoi(parts.size() == 2 ? parts[1] : parts[0], &result.last);
  if (!parsed || result.first < 1 || result.last > 65535 || result.first > result.last) {
    return absl::InvalidArgumentError(strings::Cat(
        "expected 0 (a free port), a port or FIRST-LAST with 1 <= FIRST <= LAST <= 65535, got \"", range,
        "\""));
  }
  return result;
}

}  // namespace distill::trainer
