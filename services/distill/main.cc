// `distill`: the all-in-one binary. Subcommands share the services' code paths.

#include <iostream>
#include <string>
#include <vector>

#include "common/cli/flags.h"
#include "common/rpc/signals.h"
#include "services/distill/cluster.h"
#include "services/distill/model_command.h"
#include "services/curator/curate_command.h"
#include "services/teacher_gateway/teach_command.h"

namespace {

constexpr char kUsage[] =
    "usage: distill <command> [flags]\n"
    "\n"
    "commands:\n"
    "  up        run every distill service in this process on loopback (Ctrl-C stops)\n"
    "  teach     ask a teacher backend for chain-of-thought samples (JSON lines in and out)\n"
    "  curate    turn teacher samples into training records, every drop explained\n"
    "  model     inspect, run and create student checkpoints (info, generate, logits, init)\n"
    "  help      show this text\n";

}  // namespace

int main(int argc, char** argv) {
  distill::rpc::BlockShutdownSignals();
  std::vector<std::string> args = distill::cli::Args(argc, argv);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "up") return distill::services::RunUp(args);
  if (command == "teach") return distill::teacher::RunTeach(args);
  if (command == "curate") return distill::curator::RunCurate(args);
  if (command == "model") return distill::services::RunModel(args, std::cout, std::cerr);
  std::cerr << "distill: unknown command \"" << command << "\"\n" << kUsage;
  return 2;
}
