// The trainer worker as its own small binary, so the tests that need real processes (several ranks, SIGKILL)
// do not depend on distill-trainer's command dispatch.
//
// DISTILL_TEST_BLOCK_AFTER_STEP=N makes the worker stop making progress after step N (it sleeps until
// killed), so a test can kill it mid-run without racing the run's end.

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "common/cli/flags.h"
#include "services/trainer/training/worker.h"

int main(int argc, char** argv) {
  distill::trainer::TrainerHooks hooks;
  if (const char* block = std::getenv("DISTILL_TEST_BLOCK_AFTER_STEP"); block != nullptr) {
    const int64_t step = std::stoll(block);
    hooks.after_step = [step](int64_t done) {
      if (done != step) return;
      std::cerr << "blocking after step " << done << std::endl;
      for (;;) ::pause();
    };
  }
  return distill::trainer::RunTrainerWorker(distill::cli::Args(argc, argv), hooks);
}
