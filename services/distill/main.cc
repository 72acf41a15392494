// `distill`: the all-in-one binary. Subcommands share the services' code paths.

#include <iostream>
#include <string>
#include <vector>

#include "common/cli/flags.h"
#include "common/rpc/signals.h"
#include "services/distill/cluster.h"
#include "services/distill/model_command.h"
#include "services/distill/run_command.h"
#include "services/curator/curate_command.h"
#include "services/teacher_gateway/teach_command.h"
#include "services/trainer/train_command.h"
#include "services/trainer/training/worker.h"
#include "services/trainer/training/worker_protocol.h"

namespace {

constexpr char kUsage[] =
    "usage: distill <command> [flags]\n"
    "\n"
    "commands:\n"
    "  run       run a distillation job file end to end in an all-in-one cluster, then serve the student\n"
    "  up        run every distill service in this process on loopback (Ctrl-C stops)\n"
    "  teach     ask a teacher backend for chain-of-thought samples (JSON lines in and out)\n"
    "  curate    turn teacher samples into training records, every drop explained\n"
    "  model     inspect, run and create student checkpoints (info, generate, logits, init)\n"
    "  train     fine-tune a student on curated records, with a progress bar (Ctrl-C cancels)\n"
    "  help      show this text\n";

}  // namespace

int main(int argc, char** argv) {
  // Hidden: a training worker started by the trainer (services/trainer/training/worker_protocol.h). Before
  // BlockShutdownSignals, since SIGTERM must stop a worker at once.
  if (argc > 1 && argv[1] == distill::trainer::kWorkerCommand) {
    return distill::trainer::RunTrainerWorker(distill::cli::Args(argc, argv, 2));
  }
  distill::rpc::BlockShutdownSignals();
  std::vector<std::string> args = distill::cli::Args(argc, argv);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "run") return distill::services::RunJob(args);
  if (command == "up") return distill::services::RunUp(args);
  if (command == "teach") return distill::teacher::RunTeach(args);
  if (command == "curate") return distill::curator::RunCurate(args);
  if (command == "model") return distill::services::RunModel(args, std::cout, std::cerr);
  if (command == "train") return distill::trainer::RunTrain(args);
  std::cerr << "distill: unknown command \"" << command << "\"\n" << kUsage;
  return 2;
}
