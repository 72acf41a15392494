#include "services/distillctl/ctl_commands.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/cli/flags.h"
#include "common/dataset/example_json.h"
#include "common/strings/strings.h"
#include "distill/v1/inference.grpc.pb.h"
#include "distill/v1/jobs.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "services/coordinator/jobspec/job_yaml.h"
#include "services/distillctl/job_render.h"

namespace distill::ctl {
namespace {

using strings::Cat;

constexpr char kUsage[] =
    "usage: distillctl [global flags] <command> [flags] [args]\n"
    "\n"
    "commands:\n"
    "  submit JOB.yaml [--watch] [--request-id ID]\n"
    "                       submit a job file (relative paths are resolved against its folder); prints the\n"
    "                       job id. --request-id defaults to a random UUID; resubmitting with the same id\n"
    "                       returns the same job\n"
    "  watch JOB_ID         follow a job until it ends, then print its summary\n"
    "  list [--state queued|running|succeeded|failed|cancelling|cancelled] [--page-size N]\n"
    "       [--page-token T] [--all]\n"
    "                       list jobs, newest first; --all follows every page\n"
    "  get JOB_ID           a job's summary (its progress while it runs)\n"
    "  cancel JOB_ID        cancel a job; prints its new state\n"
    "  predict --model NAME [--version V] TEXT\n"
    "                       ask a deployed student for an answer\n"
    "  generate --model NAME [--version V] [--rationale] [--max-new-tokens N] [--temperature T] TEXT\n"
    "                       stream a student's generation (with --rationale, the rationale first)\n"
    "  health [--service NAME]\n"
    "                       ask --address for its gRPC health (grpc.health.v1 Check) and print the status:\n"
    "                       SERVING, NOT_SERVING, UNKNOWN; --service asks about one service (e.g.\n"
    "                       distill.v1.Curator), empty = the server as a whole; --timeout defaults to 5s.\n"
    "                       Exit 0 only when SERVING (the health probe of the images and the compose file)\n"
    "  help                 show this text; `distillctl <command> --help` lists a command's flags\n"
    "\n"
    "global flags, before or after the command:\n"
    "  --address HOST:PORT            the coordinator, or for health any service (default\n"
    "                                 $DISTILL_ADDRESS, else 127.0.0.1:50050)\n"
    "  --inference-address HOST:PORT  the inference service, for predict and generate\n"
    "                                 (default $DISTILL_INFERENCE_ADDRESS, else 127.0.0.1:50054)\n"
    "  --token TOKEN, --token-file PATH\n"
    "                                 bearer token sent as \"authorization: Bearer <token>\" metadata\n"
    "                                 (default $DISTILL_TOKEN)\n"
    "  --output text|json             json: one JSON object per line, with the protos' field names\n"
    "                                 (watch: every WatchJobResponse; list: every Job)\n"
    "  --timeout DURATION             deadline of unary calls, e.g. 30s (default 30s; health: 5s)\n"
    "\n"
    "On a terminal, watch redraws a live view; otherwise it prints a line per stage update.\n"
    "\n"
    "exit codes:\n"
    "  0  success; for submit --watch and watch: the job SUCCEEDED, whatever its verdict\n"
    "  1  the watched job FAILED or was CANCELLED; for health: the status is not SERVING\n"
    "  2  usage error, or a bad job file (its errors are printed as file:line: key: message)\n"
    "  3  the server rejected the request (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, UNAUTHENTICATED, "
    "...);\n"
    "     for health: NOT_FOUND, the server does not know --service\n"
    "  4  the server is unreachable (UNAVAILABLE, DEADLINE_EXCEEDED)\n";

// Flags every command takes.
struct GlobalOptions {
  std::string address;
  std::string inference_address;
  std::string token;
  std::string token_file;
  std::string output = "text";
  absl::Duration timeout = absl::Seconds(30);
};

// Global flags that take a separate value, folded ('-' → '_'): `--address HOST` skips HOST when looking
// for the command.
constexpr std::string_view kGlobalValueFlags[] = {
    "address", "inference_address", "token", "token_file", "output", "timeout"};

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

void AddGlobalFlags(cli::FlagSet& flags, GlobalOptions* options) {
  flags.String("address", &options->address, "coordinator HOST:PORT");
  flags.String("inference-address", &options->inference_address, "inference service HOST:PORT");
  flags.String("token", &options->token, "bearer token (default $DISTILL_TOKEN)");
  flags.String("token-file", &options->token_file, "file holding the bearer token");
  flags.String("output", &options->output, "text | json");
  flags.Duration("timeout", &options->timeout, "deadline of unary calls");
}

bool IsTerminalState(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

// Everything a command needs once its flags are parsed.
class Command {
 public:
  Command(std::string name, std::ostream& out, std::ostream& err)
      : name_(std::move(name)), out_(out), err_(err) {}

  std::ostream& out() const { return out_; }
  std::ostream& err() const { return err_; }
  bool json() const { return options_.output == "json"; }
  // Whether `out` is an interactive terminal (only std::cout can be).
  bool terminal() const { return &out_ == &std::cout && isatty(STDOUT_FILENO) == 1; }
  bool color() const {
    const char* term = std::getenv("TERM");
    return terminal() && std::getenv("NO_COLOR") == nullptr &&
           (term == nullptr || std::string(term) != "dumb");
  }
  const std::string& address() const { return options_.address; }
  // Replaces the 30s default of --timeout; call before Parse().
  void set_default_timeout(absl::Duration timeout) { options_.timeout = timeout; }
  const std::string& inference_address() const { return options_.inference_address; }

  int Fail(int code, const std::string& message) const {
    err_ << "distillctl " << name_ << ": " << message << "\n";
    return code;
  }

  // A failed call: exit 4 when the server cannot be reached, 3 when it answered with an error.
  int RpcFailure(const grpc::Status& status, std::string_view address) const {
    const bool unreachable = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                             status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    std::string message = Cat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                              ": ", status.error_message());
    if (unreachable) strings::Append(&message, " (server ", address, ")");
    return Fail(unreachable ? kExitUnreachable : kExitRejected, message);
  }

  // Parses `args` with the command's flags (registered on `flags` by the caller) and the global ones, and
  // resolves the defaults. Returns the positional arguments, or sets `exit_code` (help: 0, error: 2).
  bool Parse(cli::FlagSet& flags, const std::vector<std::string>& args, std::vector<std::string>* positional,
             int* exit_code) {
    AddGlobalFlags(flags, &options_);
    absl::StatusOr<std::vector<std::string>> parsed = flags.Parse(args);
    if (flags.help_requested()) {
      out_ << flags.Usage();
      *exit_code = kExitOk;
      return false;
    }
    if (!parsed.ok()) {
      *exit_code = Fail(kExitUsage, Cat(parsed.status().message(), "\n", flags.Usage()));
      return false;
    }
    if (options_.output != "text" && options_.output != "json") {
      *exit_code = Fail(kExitUsage, Cat("--output: expected text or json, got \"", options_.output, "\""));
      return false;
    }
    if (options_.timeout <= absl::ZeroDuration()) {
      *exit_code = Fail(kExitUsage, "--timeout: must be > 0");
      return false;
    }
    if (options_.address.empty()) options_.address = EnvOr("DISTILL_ADDRESS", "127.0.0.1:50050");
    if (options_.inference_address.empty()) {
      options_.inference_address = EnvOr("DISTILL_INFERENCE_ADDRESS", "127.0.0.1:50054");
    }
    if (options_.token.empty() && !options_.token_file.empty()) {
      std::ifstream in(options_.token_file, std::ios::binary);
      std::stringstream buffer;
      buffer << in.rdbuf();
      if (!in) {
        *exit_code = Fail(kExitUsage, Cat("--token-file: cannot read \"", options_.token_file, "\""));
        return false;
      }
      options_.token = std::string(absl::StripAsciiWhitespace(buffer.str()));
      if (options_.token.empty()) {
        *exit_code = Fail(kExitUsage, Cat("--token-file: \"", options_.token_file, "\" is empty"));
        return false;
      }
    }
    if (options_.token.empty()) options_.token = EnvOr("DISTILL_TOKEN", "");
    *positional = *std::move(parsed);
    return true;
  }

  // Adds the bearer token and, for a unary call, the deadline.
  void Prepare(grpc::ClientContext* context, bool unary) const {
    if (!options_.token.empty()) context->AddMetadata("authorization", Cat("Bearer ", options_.token));
    if (unary)
      context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.timeout));
  }

  std::unique_ptr<v1::DistillationJobs::Stub> Jobs() const {
    return v1::DistillationJobs::NewStub(
        grpc::CreateChannel(options_.address, grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<grpc::health::v1::Health::Stub> Health() const {
    return grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(options_.address, grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<v1::Inference::Stub> Inference() const {
    return v1::Inference::NewStub(
        grpc::CreateChannel(options_.inference_address, grpc::InsecureChannelCredentials()));
  }

  // Prints `message` as one JSON line.
  void PrintJson(const google::protobuf::Message& message) const {
    out_ << dataset::ProtoToJson(message) << "\n" << std::flush;
  }

 private:
  const std::string name_;
  std::ostream& out_;
  std::ostream& err_;
  GlobalOptions options_;
};

// Exactly `n` positional arguments named `what`, or exit 2.
bool ExpectPositional(const Command& c, const std::vector<std::string>& positional, size_t n,
                      std::string_view what, int* exit_code) {
  if (positional.size() == n) return true;
  *exit_code = c.Fail(kExitUsage, positional.size() < n ? Cat("missing ", what)
                                                        : Cat("unexpected argument \"", positional[n], "\""));
  return false;
}

// Columns of the terminal on standard output; 0 when unknown.
int TerminalWidth() {
  winsize size{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0) return 0;
  return size.ws_col;
}

// `line` cut to `width` visible columns (ANSI escapes take none, a UTF-8 character one), so that no line
// of the live view wraps and the cursor arithmetic stays right.
std::string FitToWidth(const std::string& line, int width) {
  if (width <= 0) return line;
  std::string out;
  int columns = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c == 0x1b) {
      const size_t end = line.find_first_of("ABCDEFGHJKSTfmnsu", i);
      if (end == std::string::npos) break;
      out.append(line, i, end - i + 1);
      i = end;
      continue;
    }
    const bool continuation = (c & 0xC0) == 0x80;
    if (!continuation && columns == width - 1) {
      out += "\x1b[0m";
      break;
    }
    out += line[i];
    if (!continuation) ++columns;
  }
  return out;
}

// The live view of `watch` on a terminal: RenderJobProgress redrawn in place (the cursor moves back up over
// the previous frame), at most 4 frames a second, and once a second without news so the elapsed time moves.
// Thread-safe: Update() is called by the reading thread while a thread of its own draws.
class LiveView {
 public:
  LiveView(std::ostream& out, bool color) : out_(out), color_(color), thread_([this] { Loop(); }) {}
  ~LiveView() { Stop(); }

  void Update(const v1::Job& job) {
    absl::MutexLock lock(&mu_);
    job_ = job;
    has_job_ = true;
    dirty_ = true;
  }

  // Stops the drawing thread and draws the last frame.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    thread_.join();
    absl::MutexLock lock(&mu_);
    if (has_job_) Draw();
  }

 private:
  bool DirtyOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return dirty_ || stopping_; }

  void Loop() {
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      mu_.AwaitWithTimeout(absl::Condition(this, &LiveView::DirtyOrStopping), absl::Seconds(1));
      if (stopping_) break;
      if (has_job_) Draw();
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(250));
    }
  }

  void Draw() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    dirty_ = false;
    const int width = TerminalWidth();
    std::vector<std::string> lines = absl::StrSplit(RenderJobProgress(job_, color_), '\n');
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    std::string frame;
    if (lines_drawn_ > 0) frame = Cat("\r\x1b[", lines_drawn_, "A");
    for (const std::string& line : lines) strings::Append(&frame, "\x1b[2K", FitToWidth(line, width), "\n");
    frame += "\x1b[J";
    out_ << frame << std::flush;
    lines_drawn_ = lines.size();
  }

  std::ostream& out_;
  const bool color_;
  absl::Mutex mu_;
  v1::Job job_ ABSL_GUARDED_BY(mu_);
  bool has_job_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  size_t lines_drawn_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// Replaces the job's status of `stage.stage()` with `stage` (adding it if the job has none yet).
void ApplyStage(const v1::StageStatus& stage, v1::Job* job) {
  for (v1::StageStatus& existing : *job->mutable_stages()) {
    if (existing.stage() == stage.stage()) {
      existing = stage;
      return;
    }
  }
  *job->add_stages() = stage;
}

// Follows a job to its end. Exit 0 when it SUCCEEDED, 1 when it FAILED or was CANCELLED.
int Watch(const Command& c, const std::string& job_id) {
  std::unique_ptr<v1::DistillationJobs::Stub> stub = c.Jobs();
  grpc::ClientContext context;
  c.Prepare(&context, /*unary=*/false);
  v1::WatchJobRequest request;
  request.set_job_id(job_id);
  std::unique_ptr<grpc::ClientReader<v1::WatchJobResponse>> reader = stub->WatchJob(&context, request);

  std::unique_ptr<LiveView> live;
  if (!c.json() && c.terminal()) live = std::make_unique<LiveView>(c.out(), c.color());
  StageEventThrottle throttle;
  v1::Job job;
  bool have_job = false;
  bool ended = false;
  v1::WatchJobResponse event;
  while (reader->Read(&event)) {
    if (c.json()) c.PrintJson(event);
    if (event.has_job()) {
      const bool first = !have_job;
      job = event.job();
      have_job = true;
      if (!c.json() && live == nullptr && first) {
        c.out() << "job " << job.job_id() << " (" << job.spec().name() << ") " << jobs::ShortName(job.state())
                << "\n";
        for (const v1::StageStatus& stage : job.stages()) {
          if (throttle.ShouldPrint(stage, absl::Now()) && stage.state() == v1::STAGE_STATE_RUNNING) {
            c.out() << RenderStageEvent(stage) << "\n";
          }
        }
        c.out() << std::flush;
      }
      // The final snapshot: the server closes the stream after it, and nothing more is needed.
      ended = IsTerminalState(job.state());
    } else if (event.has_stage()) {
      ApplyStage(event.stage(), &job);
      if (event.stage().state() == v1::STAGE_STATE_RUNNING) job.set_current_stage(event.stage().stage());
      if (!c.json() && live == nullptr && throttle.ShouldPrint(event.stage(), absl::Now())) {
        c.out() << RenderStageEvent(event.stage()) << "\n" << std::flush;
      }
    }
    if (live != nullptr && have_job) live->Update(job);
    if (ended) break;
  }
  if (live != nullptr) live->Stop();
  if (ended) {
    context.TryCancel();
    while (reader->Read(&event)) {
    }
    (void)reader->Finish();
    if (!c.json()) c.out() << "\n" << RenderJobSummary(job) << std::flush;
    return job.state() == v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitJobFailed;
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return c.RpcFailure(status, c.address());
  return c.Fail(kExitUnreachable, Cat("the server closed the stream before job ", job_id, " ended"));
}

int Submit(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Command c("submit", out, err);
  bool watch = false;
  std::string request_id;
  cli::FlagSet flags("distillctl submit JOB.yaml [--watch] [--request-id ID] [global flags]");
  flags.Bool("watch", &watch, "follow the job until it ends (exit code as for watch)");
  flags.String("request-id", &request_id, "idempotency key; empty = a random UUID");
  std::vector<std::string> positional;
  int exit_code;
  if (!c.Parse(flags, args, &positional, &exit_code)) return exit_code;
  if (!ExpectPositional(c, positional, 1, "the job file", &exit_code)) return exit_code;

  absl::StatusOr<v1::JobSpec> spec = jobs::LoadJobSpecFile(positional[0]);
  if (!spec.ok()) return c.Fail(kExitUsage, std::string(spec.status().message()));
  v1::SubmitJobRequest request;
  request.set_client_request_id(request_id.empty() ? NewRequestId() : request_id);
  *request.mutable_spec() = *std::move(spec);
  grpc::ClientContext context;
  c.Prepare(&context, /*unary=*/true);
  v1::SubmitJobResponse response;
  const grpc::Status status = c.Jobs()->SubmitJob(&context, request, &response);
  if (!status.ok()) return c.RpcFailure(status, c.address());
  if (!response.created()) {
    err << "distillctl submit: request id " << request.client_request_id() << " matched the existing job "
        << response.job().job_id() << "\n";
  }
  if (c.json()) {
    c.PrintJson(response.job());
  } else {
    out << response.job().job_id() << "\n" << std::flush;
  }
  return watch ? Watch(c, response.job().job_id()) : kExitOk;
}

int WatchCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Command c("watch", out, err);
  cli::FlagSet flags("distillctl watch JOB_ID [global flags]");
  std::vector<std::string> positional;
  int exit_code;
  if (!c.Parse(flags, args, &positional, &exit_code)) return exit_code;
  if (!ExpectPositional(c, positional, 1, "the job id", &exit_code)) return exit_code;
  return Watch(c, positional[0]);
}

absl::StatusOr<v1::JobState> ParseJobState(const std::string& name) {
  std::string accepted;
  const google::protobuf::EnumDescriptor* type = v1::JobState_descriptor();
  for (int i = 0; i < type->value_count(); ++i) {
    const auto state = static_cast<v1::JobState>(type->value(i)->number());
    if (state == v1::JOB_STATE_UNSPECIFIED) continue;
    const std::string lower = jobs::ShortName(state);
    if (lower == absl::AsciiStrToLower(name)) return state;
    strings::Append(&accepted, accepted.empty() ? "" : ", ", lower);
  }
  return absl::InvalidArgumentError(Cat("--state: expected one of: ", accepted, ", got \"", name, "\""));
}

int List(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Command c("list", out, err);
  std::string state, page_token;
  int page_size = 0;
  bool all = false;
  cli::FlagSet flags("distillctl list [flags] [global flags]");
  flags.String("state", &state,
               "only jobs in this state: queued | running | succeeded | failed | cancelling | "
               "cancelled; empty = any");
  flags.Int("page-size", &page_size, "jobs per page, in [0, 1000]; 0 = the server's default (50)");
  flags.String("page-token", &page_token, "the page to start at, as printed after the previous page");
  flags.Bool("all", &all, "follow every page");
  std::vector<std::string> positional;
  int exit_code;
  if (!c.Parse(flags, args, &positional, &exit_code)) return exit_code;
  if (!ExpectPositional(c, positional, 0, "", &exit_code)) return exit_code;
  v1::ListJobsRequest request;
  if (!state.empty()) {
    absl::StatusOr<v1::JobState> parsed = ParseJobState(state);
    if (!parsed.ok()) return c.Fail(kExitUsage, std::string(parsed.status().message()));
    request.set_state(*parsed);
  }
  if (page_size < 0 || page_size > 1000) return c.Fail(kExitUsage, "--page-size: must be in [0, 1000]");
  request.set_page_size(page_size);
  request.set_page_token(page_token);

  std::unique_ptr<v1::DistillationJobs::Stub> stub = c.Jobs();
  bool header = false;
  while (true) {
    grpc::ClientContext context;
    c.Prepare(&context, /*unary=*/true);
    v1::ListJobsResponse response;
    const grpc::Status status = stub->ListJobs(&context, request, &response);
    if (!status.ok()) return c.RpcFailure(status, c.address());
    const absl::Time now = absl::Now();
    for (const v1::Job& job : response.jobs()) {
      if (c.json()) {
        c.PrintJson(job);
        continue;
      }
      if (!header) out << RenderJobLineHeader() << "\n";
      header = true;
      out << RenderJobLine(job, now) << "\n";
    }
    out << std::flush;
    if (response.next_page_token().empty()) break;
    if (!all) {
      err << "more jobs: --page-token " << response.next_page_token() << " (or --all)\n";
      break;
    }
    request.set_page_token(response.next_page_token());
  }
  return kExitOk;
}

int Get(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Command c("get", out, err);
  cli::FlagSet flags("distillctl get JOB_ID [global flags]");
  std::vector<std::string> positional;
  int exit_code;
  if (!c.Parse(flags, args, &positional, &exit_code)) return exit_code;
  if (!ExpectPositional(c, positional, 1, "the job id", &exit_code)) return exit_code;
  v1::GetJobRequest request;
  request.set_job_id(positional[0]);
  grpc::ClientContext context;
  c.Prepare(&context, /*unary=*/true);
  v1::GetJobResponse response;
  const grpc::Status status = c.Jobs()->GetJob(&context, request, &response);
  if (!status.ok()) return c.RpcFailure(status, c.address());
  if (c.json()) {
    c.PrintJson(response.job());
  } else if (IsTerminalState(response.job().state())) {
    out << RenderJobSummary(response.job()) << std::flush;
  } else {
    out << RenderJobProgress(response.job(), c.color()) << std::flush;
  }
  return kExitOk;
}

int Cancel(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Command c("cancel", out, err);
  cli::FlagSet flags("distillctl cancel JOB_ID [global flags]");
  std::vector<std::string> positional;
  int exit_code;
  if (!c.Parse(flags, args, &positional, &exit_code)) return exit_code;
  if (!ExpectPositional(c, positional, 1, "the job id", &exit_code)) return exit_code;
  v1::CancelJobRequest request;
  request.set_job_id(positional[0]);
  grpc::ClientContext context;
  c.Prepare(&context, /*unary=*/true);
  v1::CancelJobResponse response;
  const grpc::Status status = c.Jobs()->CancelJob(&context, request, &response);
  if (!status.ok()) return c.RpcFailure(status, c.address());
  if (c.json()) {
    c.PrintJson(response.job());
  } else {
    out << response.job().job_id() << " " << jobs::ShortName(response.job().state()) << "\n" << std::flush;
  }
  return kExitOk;
}

int Predict(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Command c("predict", out, err);
  std::string model, version;
  cli::FlagSet flags("distillctl predict --model NAME [--version V] TEXT [global flags]");
  flags.String("model", &model, "the deployed model's name");
  flags.String("version", &version, "its version; empty = the active one");
  std::vector<std::string> positional;
  int exit_code;
  if (!c.Parse(flags, args, &positional, &exit_code)) return exit_code;
  if (!ExpectPositional(c, positional, 1, "the input text", &exit_code)) return exit_code;
  if (model.empty()) return c.Fail(kExitUsage, Cat("--model is required\n", flags.Usage()));
  v1::PredictRequest request;
  request.set_model(model);
  request.set_version(version);
  request.set_input(positional[0]);
  grpc::ClientContext context;
  c.Prepare(&context, /*unary=*/true);
  v1::PredictResponse response;
  const grpc::Status status = c.Inference()->Predict(&context, request, &response);
  if (!status.ok()) return c.RpcFailure(status, c.inference_address());
  if (c.json()) {
    c.PrintJson(response);
  } else {
    out << (response.answer().empty() ? response.text() : response.answer()) << "\n" << std::flush;
  }
  return kExitOk;
}

int Generate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Command c("generate", out, err);
  std::string model, version;
  bool rationale = false;
  int max_new_tokens = 0;
  double temperature = 0;
  cli::FlagSet flags("distillctl generate --model NAME [flags] TEXT [global flags]");
  flags.String("model", &model, "the deployed model's name");
  flags.String("version", &version, "its version; empty = the active one");
  flags.Bool("rationale", &rationale, "also generate and stream the rationale, before the answer");
  flags.Int("max-new-tokens", &max_new_tokens, "token limit per segment; 0 = the server's default");
  flags.Double("temperature", &temperature, "sampling temperature; unset = the server's default (greedy)");
  std::vector<std::string> positional;
  int exit_code;
  if (!c.Parse(flags, args, &positional, &exit_code)) return exit_code;
  if (!ExpectPositional(c, positional, 1, "the input text", &exit_code)) return exit_code;
  if (model.empty()) return c.Fail(kExitUsage, Cat("--model is required\n", flags.Usage()));
  if (max_new_tokens < 0) return c.Fail(kExitUsage, "--max-new-tokens: must be >= 0");
  v1::GenerateRequest request;
  request.set_model(model);
  request.set_version(version);
  request.set_input(positional[0]);
  request.set_include_rationale(rationale);
  if (max_new_tokens > 0) request.mutable_sampling()->set_max_new_tokens(max_new_tokens);
  if (flags.IsSet("temperature"))
    request.mutable_sampling()->set_temperature(static_cast<float>(temperature));

  std::unique_ptr<v1::Inference::Stub> stub = c.Inference();
  grpc::ClientContext context;
  c.Prepare(&context, /*unary=*/false);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  v1::OutputSegment segment = v1::OUTPUT_SEGMENT_UNSPECIFIED;
  bool printed = false;
  while (reader->Read(&response)) {
    if (c.json()) {
      c.PrintJson(response);
      continue;
    }
    if (!response.has_chunk()) continue;
    // The answer starts on a line of its own after a streamed rationale.
    if (printed && response.chunk().segment() != segment) out << "\n";
    segment = response.chunk().segment();
    out << response.chunk().text() << std::flush;
    printed = true;
  }
  if (!c.json() && printed) out << "\n" << std::flush;
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return c.RpcFailure(status, c.inference_address());
  return kExitOk;
}

// The container probe: one grpc.health.v1 Check of --address. Health checks need no token (the servers
// leave them open for probes), but one given is sent like for any other command.
int HealthCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Command c("health", out, err);
  c.set_default_timeout(absl::Seconds(5));
  std::string service;
  cli::FlagSet flags("distillctl health [--service NAME] [global flags]");
  flags.String("service", &service,
               "fully qualified service name, e.g. distill.v1.Curator; empty = the server as a whole");
  std::vector<std::string> positional;
  int exit_code;
  if (!c.Parse(flags, args, &positional, &exit_code)) return exit_code;
  if (!ExpectPositional(c, positional, 0, "", &exit_code)) return exit_code;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::ClientContext context;
  c.Prepare(&context, /*unary=*/true);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = c.Health()->Check(&context, request, &response);
  if (!status.ok()) return c.RpcFailure(status, c.address());
  if (c.json()) {
    c.PrintJson(response);
  } else {
    out << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n" << std::flush;
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk : kExitNotServing;
}

// The index of the command in `args`: the first argument that is neither a flag nor the separate value of
// a global flag; args.size() when there is none.
size_t FindCommand(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") return i + 1 < args.size() ? i + 1 : args.size();
    if (arg.size() < 2 || arg[0] != '-') return i;
    if (arg.find('=') != std::string::npos) continue;
    std::string name = arg.substr(arg.find_first_not_of('-'));
    std::replace(name.begin(), name.end(), '-', '_');
    for (std::string_view flag : kGlobalValueFlags) {
      if (name == flag) {
        ++i;
        break;
      }
    }
  }
  return args.size();
}

}  // namespace

std::string NewRequestId() {
  std::random_device device;
  uint8_t bytes[16];
  for (int i = 0; i < 16; i += 4) {
    const uint32_t word = device();
    for (int j = 0; j < 4; ++j) bytes[i + j] = static_cast<uint8_t>(word >> (8 * j));
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0F) | 0x40);  // Version 4.
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant.
  std::string id;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id += '-';
    id += absl::StrFormat("%02x", bytes[i]);
  }
  return id;
}

bool StageEventThrottle::ShouldPrint(const v1::StageStatus& stage, absl::Time now) {
  auto it = printed_.find(stage.stage());
  if (it != printed_.end() && it->second.state == stage.state() && now - it->second.time < interval_)
    return false;
  printed_[stage.stage()] = Printed{stage.state(), now};
  return true;
}

int RunDistillctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const size_t index = FindCommand(args);
  if (index == args.size()) {
    for (const std::string& arg : args) {
      if (arg == "-h" || arg == "-help" || arg == "--help") {
        out << kUsage;
        return kExitOk;
      }
    }
    err << kUsage;
    return kExitUsage;
  }
  const std::string command = args[index];
  std::vector<std::string> rest = args;
  rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(index));
  if (command == "help") {
    out << kUsage;
    return kExitOk;
  }
  if (command == "submit") return Submit(rest, out, err);
  if (command == "watch") return WatchCommand(rest, out, err);
  if (command == "list") return List(rest, out, err);
  if (command == "get") return Get(rest, out, err);
  if (command == "cancel") return Cancel(rest, out, err);
  if (command == "predict") return Predict(rest, out, err);
  if (command == "generate") return Generate(rest, out, err);
  if (command == "health") return HealthCommand(rest, out, err);
  err << "distillctl: unknown command \"" << command << "\"\n\n" << kUsage;
  return kExitUsage;
}

}  // namespace distill::ctl
