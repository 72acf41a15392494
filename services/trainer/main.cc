#include <string>

#include "common/cli/flags.h"
#include "common/rpc/service_main.h"
#include "services/trainer/trainer_service.h"
#include "services/trainer/training/worker.h"
#include "services/trainer/training/worker_protocol.h"

int main(int argc, char** argv) {
  // The trainer starts its workers as `distill-trainer trainer-worker ...`; before ServiceMain, which
  // blocks the signals a worker must die of.
  if (argc > 1 && argv[1] == distill::trainer::kWorkerCommand) {
    return distill::trainer::RunTrainerWorker(distill::cli::Args(argc, argv, 2));
  }
  return distill::rpc::ServiceMain(argc, argv, distill::services::TrainerDefinition());
}
