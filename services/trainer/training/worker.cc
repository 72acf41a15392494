#include "services/trainer/training/worker.h"

#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "common/cli/flags.h"
#include "common/dataset/example_json.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "services/trainer/training/trainer.h"

namespace distill::trainer {
namespace {

constexpr char kUsage[] =
    "trainer-worker --run-dir DIR --rank R --world-size N --master-addr ADDR --master-port PORT [--threads "
    "T]";

// Reads an integer environment variable into `out` when it is set.
absl::Status FromEnv(const char* name, int* out) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return absl::OkStatus();
  if (!absl::SimpleAtoi(value, out)) {
    return absl::InvalidArgumentError(strings::Cat(name, ": expected an integer, got \"", value, "\""));
  }
  return absl::OkStatus();
}

int Fail(const absl::Status& status) {
  std::cerr << kErrorPrefix << status.message() << std::endl;
  return static_cast<int>(status.code());
}

}  // namespace

absl::StatusOr<WorkerArgs> ParseWorkerArgs(const std::vector<std::string>& args) {
  WorkerArgs w;
  RETURN_IF_ERROR(FromEnv("RANK", &w.rank));
  RETURN_IF_ERROR(FromEnv("WORLD_SIZE", &w.world_size));
  RETURN_IF_ERROR(FromEnv("MASTER_PORT", &w.master_port));
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') w.master_addr = addr;
  cli::FlagSet flags(kUsage);
  flags.String("run-dir", &w.run_dir, "the run directory (holds spec.json)");
  flags.Int("rank", &w.rank, "this worker's rank, in [0, world-size) (default: $RANK)");
  flags.Int("world-size", &w.world_size, "number of ranks (default: $WORLD_SIZE)");
  flags.String("master-addr", &w.master_addr, "host of rank 0's rendezvous store (default: $MASTER_ADDR)");
  flags.Int("master-port", &w.master_port, "port of rank 0's rendezvous store (default: $MASTER_PORT)");
  flags.Int("threads", &w.threads,
            "this rank's threads (libtorch's intra-op pool, which MKL's products share); 0 = the spec's "
            "threads_per_rank, else cores / world size");
  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (flags.help_requested()) return absl::CancelledError(flags.Usage());
  if (!positional.ok()) return positional.status();
  if (!positional->empty())
    return absl::InvalidArgumentError(strings::Cat("unexpected argument \"", (*positional)[0], "\""));
  if (w.run_dir.empty()) return absl::InvalidArgumentError("--run-dir: required");
  if (w.world_size < 1)
    return absl::InvalidArgumentError(strings::Cat("--world-size: must be >= 1, got ", w.world_size));
  if (w.rank < 0 || w.rank >= w.world_size) {
    return absl::InvalidArgumentError(
        strings::Cat("--rank: must be in [0, ", w.world_size, "), got ", w.rank));
  }
  if (w.threads < 0)
    return absl::InvalidArgumentError(strings::Cat("--threads: must be >= 0, got ", w.threads));
  if (w.world_size > 1 && (w.master_port < 1 || w.master_port > 65535)) {
    return absl::InvalidArgumentError(
        strings::Cat("--master-port: must be in [1, 65535] for world size > 1, got ", w.master_port));
  }
  return w;
}

int RunTrainerWorker(const std::vector<std::string>& args) { return RunTrainerWorker(args, TrainerHooks()); }

int RunTrainerWorker(const std::vector<std::string>& args, const TrainerHooks& hooks) {
  absl::StatusOr<WorkerArgs> parsed = ParseWorkerArgs(args);
  if (absl::IsCancelled(parsed.status())) {  // --help
    std::cout << parsed.status().message();
    return 0;
  }
  if (!parsed.ok()) return Fail(parsed.status());
  const EventSink sink = [](const v1::WatchRunResponse& event) {
    std::cout << dataset::ProtoToJson(event) << std::endl;
  };
  absl::Status status = Train(*parsed, sink, hooks);
  if (!status.ok()) return Fail(status);
  return 0;
}

}  // namespace distill::trainer
