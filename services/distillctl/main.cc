// `distillctl`: the command-line client of a distill cluster (see services/distillctl/ctl_commands.h).

#include <iostream>

#include "common/cli/flags.h"
#include "services/distillctl/ctl_commands.h"

int main(int argc, char** argv) {
  return distill::ctl::RunDistillctl(distill::cli::Args(argc, argv), std::cout, std::cerr);
}
