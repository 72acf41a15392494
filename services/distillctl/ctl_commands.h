#ifndef DISTILL_SERVICES_DISTILLCTL_CTL_COMMANDS_H_
#define DISTILL_SERVICES_DISTILLCTL_CTL_COMMANDS_H_

// `distillctl`: the command-line client of the coordinator (distill.v1.DistillationJobs), of the
// inference service (distill.v1.Inference) and, as a container probe, of any distill server's
// grpc.health.v1.Health. The usage text (kUsage in ctl_commands.cc, printed by `distillctl help`) lists
// the commands, the global flags and the exit codes:
//
//   distillctl [global flags] submit JOB.yaml [--watch] [--request-id ID]
//   distillctl [global flags] watch JOB_ID
//   distillctl [global flags] list [--state running|...] [--page-size N] [--page-token T] [--all]
//   distillctl [global flags] get JOB_ID
//   distillctl [global flags] cancel JOB_ID
//   distillctl [global flags] predict --model NAME [--version V] TEXT
//   distillctl [global flags] generate --model NAME [--version V] [--rationale] [--max-new-tokens N]
//                                      [--temperature T] TEXT
//   distillctl [global flags] health [--service NAME]
//
// Global flags (--address, --inference-address, --token, --token-file, --output, --timeout) may come
// before or after the command. Results go to `out`, diagnostics to `err`. `watch` redraws a live view in
// place only when `out` is std::cout and standard output is a terminal; otherwise it prints one line per
// stage update.

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "distill/v1/jobs.pb.h"

namespace distill::ctl {

// Exit codes of RunDistillctl.
// Success; for watch and submit --watch: the job SUCCEEDED, whatever its verdict.
inline constexpr int kExitOk = 0;
// The watched job FAILED or was CANCELLED.
inline constexpr int kExitJobFailed = 1;
// health: the server (or --service) answered with a status other than SERVING.
inline constexpr int kExitNotServing = 1;
// Bad flags or arguments, or a bad job file.
inline constexpr int kExitUsage = 2;
// The server answered with an error (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, UNAUTHENTICATED, ...).
inline constexpr int kExitRejected = 3;
// UNAVAILABLE or DEADLINE_EXCEEDED: the server cannot be reached (or did not answer in time).
inline constexpr int kExitUnreachable = 4;

// Runs one distillctl command; `args` is argv without the program name. Returns the exit code.
int RunDistillctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// A random RFC 4122 version-4 UUID in lower-case hex, e.g. "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b": the
// default client_request_id of submit.
std::string NewRequestId();

// Decides which stage updates a line-oriented `watch` prints: the first update of each stage and every
// change of a stage's state always, progress of the same state at most once per `interval` per stage.
// Not thread-safe.
class StageEventThrottle {
 public:
  explicit StageEventThrottle(absl::Duration interval = absl::Seconds(2)) : interval_(interval) {}

  // Whether to print `stage`, an update seen at `now`. A true answer records it as printed.
  bool ShouldPrint(const v1::StageStatus& stage, absl::Time now);

 private:
  struct Printed {
    v1::StageState state;
    absl::Time time;
  };
  const absl::Duration interval_;
  std::map<v1::Stage, Printed> printed_;
};

}  // namespace distill::ctl

#endif  // DISTILL_SERVICES_DISTILLCTL_CTL_COMMANDS_H_
