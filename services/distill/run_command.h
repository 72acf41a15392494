#ifndef DISTILL_SERVICES_DISTILL_RUN_COMMAND_H_
#define DISTILL_SERVICES_DISTILL_RUN_COMMAND_H_

// `distill run JOB.yaml`: the one-command demo. Starts the all-in-one cluster on loopback, submits the job,
// shows its progress live (distillctl's watch view), prints the final table, and keeps the student served
// (gRPC and the OpenAI-compatible HTTP API) until Ctrl-C — or exits at once with --exit. Ctrl-C while the
// job runs cancels it.

#include <string>
#include <vector>

namespace distill::services {

// Returns the process exit code: 0 when the job SUCCEEDED, 1 when it failed or was cancelled, 2 for bad
// flags or a bad job file, 3 when the cluster or the submission failed.
int RunJob(const std::vector<std::string>& args);

}  // namespace distill::services

#endif  // DISTILL_SERVICES_DISTILL_RUN_COMMAND_H_
