#include "services/trainer/run_manager.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/artifacts/artifacts.h"
#include "common/clock/timestamp.h"
#include "common/dataset/example_json.h"
#include "common/logging/logging.h"
#include "common/metrics/builder.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "common/student/checkpoint/file_io.h"
#include "common/student/checkpoint/hf_config.h"
#include "common/student/checkpoint/hf_names.h"
#include "common/student/checkpoint/safetensors.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "nlohmann/json.hpp"
#include "services/trainer/training/records.h"
#include "services/trainer/training/spec.h"
#include "services/trainer/training/worker_protocol.h"
#include "services/trainer/worker_group.h"

namespace distill::trainer {
namespace {

namespace fs = std::filesystem;

// Events kept per run for watchers that fall behind; older ones are dropped (a watcher that lags this
// far skips them: the snapshot it started from and the next ones still tell the story).
constexpr size_t kMaxEventsKept = 4096;
constexpr absl::Duration kWatchPollInterval = absl::Milliseconds(200);
constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr size_t kMaxClientRequestIdBytes = 128;
// A Hugging Face checkpoint directory's files (as common/student/student.h names them).
constexpr char kConfigFile[] = "config.json";
constexpr char kWeightsFile[] = "model.safetensors";
constexpr char kTokenizerFile[] = "spiece.model";

bool IsTerminal(v1::RunState state) {
  return state == v1::RUN_STATE_SUCCEEDED || state == v1::RUN_STATE_FAILED ||
         state == v1::RUN_STATE_CANCELLED;
}

constexpr v1::RunState kAllStates[] = {v1::RUN_STATE_QUEUED, v1::RUN_STATE_RUNNING, v1::RUN_STATE_SUCCEEDED,
                                       v1::RUN_STATE_FAILED, v1::RUN_STATE_CANCELLED};

std::string StateLabel(v1::RunState state) {
  switch (state) {
    case v1::RUN_STATE_QUEUED:
      return "queued";
    case v1::RUN_STATE_RUNNING:
      return "running";
    case v1::RUN_STATE_SUCCEEDED:
      return "succeeded";
    case v1::RUN_STATE_FAILED:
      return "failed";
    case v1::RUN_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

const char* LossTaskLabel(v1::LossTask task) {
  switch (task) {
    case v1::LOSS_TASK_TOTAL:
      return "total";
    case v1::LOSS_TASK_LABEL:
      return "label";
    case v1::LOSS_TASK_RATIONALE:
      return "rationale";
    case v1::LOSS_TASK_TOKEN_KL:
      return "token_kl";
    default:
      return nullptr;
  }
}


// Exit statuses after which the same worker group may well succeed when started again.
bool IsTransient(int code) {
  switch (static_cast<absl::StatusCode>(code)) {
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

std::string NewRunId() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(&mu);
  const uint64_t bits = absl::Uniform<uint64_t>(*gen) & 0xffffffffffffULL;
  return strings::Cat("run-", absl::Hex(bits, absl::kZeroPad12));
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec) return path;
  return abs.lexically_normal().string();
}

// The step of RUN_DIR/checkpoints/latest ("step-400" or a path ending in it); nullopt when absent.
std::optional<int64_t> LatestCheckpointStep(const std::string& run_dir) {
  std::ifstream in(fs::path(run_dir) / std::string(kCheckpointsDir) / std::string(kLatestCheckpointFile));
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  std::string name = fs::path(std::string(absl::StripAsciiWhitespace(text))).lexically_normal().string();
  while (!name.empty() && name.back() == '/') name.pop_back();
  name = fs::path(name).filename().string();
  absl::string_view digits = name;
  if (!absl::ConsumePrefix(&digits, "step-")) return std::nullopt;
  int64_t step = 0;
  if (!absl::SimpleAtoi(digits, &step)) return std::nullopt;
  return step;
}

// Sum of the sizes of the regular files under `dir`.
int64_t DirectoryBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += static_cast<int64_t>(it->file_size(size_ec));
  }
  return total;
}

// Reads only the JSON header of a safetensors file: names, dtypes and shapes (no tensor data).
absl::StatusOr<student::SafetensorsFile> ReadSafetensorsHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(strings::Cat("cannot read \"", path, "\""));
  unsigned char size_bytes[8];
  if (!in.read(reinterpret_cast<char*>(size_bytes), 8)) {
    return absl::InvalidArgumentError(strings::Cat(path, ": truncated"));
  }
  uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = (size << 8) | size_bytes[i];
  if (size > student::kMaxSafetensorsHeaderBytes) {
    return absl::InvalidArgumentError(strings::Cat(path, ": header of ", size, " bytes is too large"));
  }
  std::string header(size, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(size))) {
    return absl::InvalidArgumentError(strings::Cat(path, ": truncated header"));
  }
  nlohmann::json json = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object())
    return absl::InvalidArgumentError(strings::Cat(path, ": header is not a JSON object"));
  student::SafetensorsFile file;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") continue;
    if (!entry.is_object() || !entry.contains("dtype") || !entry["dtype"].is_string() ||
        !entry.contains("shape") || !entry["shape"].is_array()) {
      return absl::InvalidArgumentError(strings::Cat(path, ": tensor \"", name, "\" has no dtype or shape"));
    }
    absl::StatusOr<student::DType> dtype = student::ParseDType(entry["dtype"].get<std::string>());
    if (!dtype.ok()) return absl::InvalidArgumentError(strings::Cat(path, ": ", dtype.status().message()));
    student::Tensor tensor;
    tensor.dtype = *dtype;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_integer())
        return absl::InvalidArgumentError(strings::Cat(path, ": bad shape of ", name));
      tensor.shape.push_back(d.get<int64_t>());
    }
    file.tensors.emplace(name, std::move(tensor));
  }
  return file;
}

void WriteStderrLine(std::string_view line) {
  std::string buffer(line);
  buffer.push_back('\n');
  std::fwrite(buffer.data(), 1, buffer.size(), stderr);
}

}  // namespace

struct RunManager::Metrics {
  explicit Metrics(metrics::Registry& r)
      : loss(metrics::BuildGauge()
                 .Name("distill_trainer_loss_nats")
                 .Help("Training loss by task (total, label, rationale, token_kl), nats per target token, "
                       "averaged "
                       "over the steps of the latest progress event of any run.")
                 .Register(r)),
        learning_rate(metrics::BuildGauge()
                          .Name("distill_trainer_learning_rate")
                          .Help("Learning rate at the latest progress event of any run.")
                          .Register(r)
                          .Add({})),
        tokens_per_second(
            metrics::BuildGauge()
                .Name("distill_trainer_tokens_per_second")
                .Help("Non-padding tokens trained per second over all ranks, latest progress event.")
                .Register(r)
                .Add({})),
        samples_per_second(metrics::BuildGauge()
                               .Name("distill_trainer_samples_per_second")
                               .Help("Records trained per second over all ranks, latest progress event.")
                               .Register(r)
                               .Add({})),
        step_seconds(
            metrics::BuildHistogram()
                .Name("distill_trainer_step_seconds")
                .Help("Wall time of one optimizer step by phase (data, forward, backward, all_reduce, "
                      "optimizer) and in total, seconds; one observation per progress event (its mean "
                      "step).")
                .Register(r)),
        eval_accuracy(metrics::BuildGauge()
                          .Name("distill_trainer_eval_accuracy_ratio")
                          .Help("Accuracy of the latest evaluation of any run, 0-1.")
                          .Register(r)
                          .Add({})),
        checkpoint_seconds(metrics::BuildHistogram()
                               .Name("distill_trainer_checkpoint_write_seconds")
                               .Help("Time to write one checkpoint, seconds.")
                               .Register(r)
                               .Add({}, metrics::ExponentialBuckets(0.01, 2, 14))),
        world_size(metrics::BuildGauge()
                       .Name("distill_trainer_world_size")
                       .Help("Worker processes (ranks) running, over all runs.")
                       .Register(r)
                       .Add({})),
        runs(metrics::BuildGauge()
                 .Name("distill_trainer_runs")
                 .Help("Runs held by the trainer, by state.")
                 .Register(r)),
        restarts(metrics::BuildCounter()
                     .Name("distill_trainer_worker_restarts_total")
                     .Help("Worker groups restarted from their last checkpoint after a worker crashed.")
                     .Register(r)
                     .Add({})),
        started(
            metrics::BuildCounter()
                .Name("distill_trainer_runs_started_total")
                .Help(
                    "StartRun calls by outcome: created (a new run), existing (the client_request_id's run), "
                    "rejected (an error).")
                .Register(r)),
        finished(metrics::BuildCounter()
                     .Name("distill_trainer_runs_finished_total")
                     .Help("Runs that reached a terminal state, by state.")
                     .Register(r)),
        steps(metrics::BuildCounter()
                  .Name("distill_trainer_steps_total")
                  .Help("Optimizer steps reported by the workers of every run (a resumed run counts the steps "
                        "past the latest step it had reported).")
                  .Register(r)
                  .Add({})),
        last_progress(metrics::BuildGauge()
                          .Name("distill_trainer_last_progress_timestamp_seconds")
                          .Help("Unix time of the latest progress event or run start of any run; 0 before any. "
                                "A running run whose value is old is stalled.")
                          .Register(r)
                          .Add({})),
        nonfinite_losses(metrics::BuildCounter()
                             .Name("distill_trainer_nonfinite_losses_total")
                             .Help("Progress events whose loss was NaN or infinite, by task.")
                             .Register(r)) {
    for (const char* phase : {"data", "forward", "backward", "all_reduce", "optimizer", "total"}) {
      phases.emplace(phase, &step_seconds.Add({{"phase", phase}}, metrics::ExponentialBuckets(0.001, 2, 16)));
    }
    for (v1::RunState state : kAllStates)
      state_gauges.emplace(state, &runs.Add({{"state", StateLabel(state)}}));
    for (const char* outcome : {"created", "existing", "rejected"}) {
      started_by.emplace(outcome, &started.Add({{"outcome", outcome}}));
    }
    for (v1::RunState state : {v1::RUN_STATE_SUCCEEDED, v1::RUN_STATE_FAILED, v1::RUN_STATE_CANCELLED}) {
      finished_by.emplace(state, &finished.Add({{"state", StateLabel(state)}}));
    }
    // Every task up front, so that alerts on the counter have a series (at 0) from the start.
    for (v1::LossTask task : {v1::LOSS_TASK_TOTAL, v1::LOSS_TASK_LABEL, v1::LOSS_TASK_RATIONALE, v1::LOSS_TASK_TOKEN_KL}) {
      nonfinite_losses.Add({{"task", LossTaskLabel(task)}});
    }
  }

  void ObserveProgress(const v1::StepProgress& p) {
    for (const v1::TaskLoss& l : p.losses()) {
      const char* task = LossTaskLabel(l.task());
      if (task == nullptr) continue;
      loss.Add({{"task", task}}).Set(l.loss());
      if (!std::isfinite(l.loss())) nonfinite_losses.Add({{"task", task}}).Increment();
    }
    learning_rate.Set(p.learning_rate());
    tokens_per_second.Set(p.tokens_per_second());
    samples_per_second.Set(p.samples_per_second());
    if (p.step_seconds() > 0) phases["total"]->Observe(p.step_seconds());
    if (p.has_phases()) {
      phases["data"]->Observe(p.phases().data());
      phases["forward"]->Observe(p.phases().forward());
      phases["backward"]->Observe(p.phases().backward());
      phases["all_reduce"]->Observe(p.phases().all_reduce());
      phases["optimizer"]->Observe(p.phases().optimizer());
    }
  }

  // The stall alert's clock: a step was reported, or a run started, at `now`.
  void MarkProgress(absl::Time now) { last_progress.Set(absl::ToDoubleSeconds(now - absl::UnixEpoch())); }

  metrics::Family<metrics::Gauge>& loss;
  metrics::Gauge& learning_rate;
  metrics::Gauge& tokens_per_second;
  metrics::Gauge& samples_per_second;
  metrics::Family<metrics::Histogram>& step_seconds;
  std::map<std::string, metrics::Histogram*> phases;
  metrics::Gauge& eval_accuracy;
  metrics::Histogram& checkpoint_seconds;
  metrics::Gauge& world_size;
  metrics::Family<metrics::Gauge>& runs;
  std::map<v1::RunState, metrics::Gauge*> state_gauges;
  metrics::Counter& restarts;
  metrics::Family<metrics::Counter>& started;
  std::map<std::string, metrics::Counter*> started_by;
  metrics::Family<metrics::Counter>& finished;
  std::map<v1::RunState, metrics::Counter*> finished_by;
  metrics::Counter& steps;
  metrics::Gauge& last_progress;
  metrics::Family<metrics::Counter>& nonfinite_losses;
};

struct RunManager::RunRecord {
  int64_t seq = 0;
  // The snapshot every reader gets.
  v1::Run run;
  // The spec as the client sent it, for idempotency.
  v1::RunSpec request_spec;
  // Absolute local path of RUN_DIR.
  std::string run_dir;
  // Live events, for watchers; events.front() has index events_base.
  std::deque<v1::WatchRunResponse> events;
  int64_t events_base = 0;
  int64_t events_end() const { return events_base + static_cast<int64_t>(events.size()); }
  std::vector<pid_t> pids;
  bool cancel_requested = false;
  // Set once; joined by Shutdown() or when the run is forgotten.
  std::thread supervisor;
};

// How one worker group ended.
struct RunManager::GroupEnd {
  enum Kind { kSucceeded, kStopped, kFailed };
  Kind kind = kFailed;
  bool restartable = false;
  // kFailed: what happened, for failure_cause; `crash` is the short form used in restart messages.
  std::string cause;
  std::string crash;
  int code = 0;
  v1::ArtifactRef model;
};

RunManager::RunManager(TrainerConfig config, metrics::Registry* registry, Clock* clock)
    : config_(std::move(config)), clock_(clock), metrics_(std::make_unique<Metrics>(*registry)) {}

absl::StatusOr<std::unique_ptr<RunManager>> RunManager::Create(TrainerConfig config,
                                                               metrics::Registry* registry, Clock* clock) {
  auto manager = std::unique_ptr<RunManager>(new RunManager(std::move(config), registry, clock));
  const TrainerConfig& c = manager->config_;
  manager->worker_binary_ = c.worker_binary.empty() ? "/proc/self/exe" : c.worker_binary;
  const char* env_addr = std::getenv("MASTER_ADDR");
  manager->master_addr_ = !c.master_addr.empty()                      ? c.master_addr
                          : (env_addr != nullptr && env_addr[0] != 0) ? env_addr
                                                                      : "127.0.0.1";
  std::string ports = c.master_port_range;
  std::string ports_source = "trainer.master_port_range";
  if (ports.empty()) {
    const char* env_port = std::getenv("MASTER_PORT");
    if (env_port != nullptr && env_port[0] != 0) {
      ports = env_port;
      ports_source = "MASTER_PORT";
    }
  }
  absl::StatusOr<PortRange> range = ParsePortRange(ports);
  if (!range.ok())
    return absl::InvalidArgumentError(strings::Cat(ports_source, ": ", range.status().message()));
  manager->port_first_ = range->first;
  manager->port_last_ = range->last;
  return manager;
}

RunManager::~RunManager() { Shutdown(); }

bool RunManager::Ready() const {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return false;
  }
  return access(worker_binary_.c_str(), X_OK) == 0;
}

std::string RunManager::UriForPath(const std::string& path, bool directory) const {
  std::string abs = Absolute(path);
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  const std::string suffix = directory ? "/" : "";
  if (!config_.artifact_root.empty()) {
    const fs::path rel = fs::path(abs).lexically_relative(Absolute(config_.artifact_root));
    const std::string r = rel.string();
    if (!r.empty() && r != "." && r.substr(0, 2) != "..")
      return strings::Cat(artifacts::kArtifactScheme, r, suffix);
  }
  return strings::Cat("file://", abs, suffix);
}

absl::Status RunManager::ValidateAndResolve(const v1::RunSpec& spec, v1::RunSpec* resolved) const {
  RETURN_IF_ERROR(ValidateRunSpec(spec));
  RETURN_IF_ERROR(CheckDeviceOnThisHost(spec));
  *resolved = spec;
  const std::string& root = config_.artifact_root;

  // The dataset: a records file, or a curator output directory holding records.jsonl.
  ASSIGN_OR_RETURN(std::string dataset, artifacts::ResolveUri(root, spec.dataset().uri(), "dataset.uri"));
  absl::StatusOr<std::string> records_path = RecordsPath(dataset);
  if (!records_path.ok()) {
    // A missing dataset is a bad spec (trainer.proto), whatever the filesystem calls it.
    absl::string_view why = records_path.status().message();
    absl::ConsumePrefix(&why, "dataset: ");
    return absl::InvalidArgumentError(strings::Cat("dataset.uri: ", why));
  }
  const bool dataset_is_dir = fs::is_directory(dataset);
  RETURN_IF_ERROR(artifacts::VerifyContentHash(
      dataset_is_dir ? (fs::path(dataset) / "manifest.json").string() : *records_path,
      spec.dataset().content_hash(), "dataset"));
  absl::StatusOr<std::vector<RecordLine>> records = ReadTrainingRecords(*records_path);
  if (!records.ok()) {
    // Unreadable counts as missing; malformed or empty as bad input.
    return absl::InvalidArgumentError(
        strings::Cat(records.status().code() == absl::StatusCode::kNotFound ? "dataset.uri: " : "",
                     records.status().message()));
  }
  RETURN_IF_ERROR(CheckRecordsFitObjective(*records, spec.training().objective(), *records_path));
  resolved->mutable_dataset()->set_uri(Absolute(*records_path));

  // A checkpoint to start from: the three files, its manifest's hash, and weights that fit its config.
  if (spec.student().has_checkpoint()) {
    ASSIGN_OR_RETURN(std::string dir, artifacts::ResolveUri(root, spec.student().checkpoint().uri(),
                                                            "student.checkpoint.uri"));
    if (!fs::is_directory(dir)) {
      return absl::InvalidArgumentError(
          strings::Cat("student.checkpoint.uri: \"", dir, "\" is not a checkpoint directory"));
    }
    for (const char* file : {kConfigFile, kWeightsFile, kTokenizerFile}) {
      if (!fs::exists(fs::path(dir) / file)) {
        return absl::InvalidArgumentError(strings::Cat("student.checkpoint: \"", dir, "\" has no ", file));
      }
    }
    RETURN_IF_ERROR(artifacts::VerifyContentHash((fs::path(dir) / "manifest.json").string(),
                                                 spec.student().checkpoint().content_hash(),
                                                 "student.checkpoint"));
    absl::StatusOr<student::T5Config> config = student::ReadT5Config((fs::path(dir) / kConfigFile).string());
    if (!config.ok()) {
      return absl::FailedPreconditionError(strings::Cat("student.checkpoint: ", config.status().message()));
    }
    absl::StatusOr<student::SafetensorsFile> header =
        ReadSafetensorsHeader((fs::path(dir) / kWeightsFile).string());
    if (!header.ok()) {
      return absl::FailedPreconditionError(strings::Cat("student.checkpoint: ", header.status().message()));
    }
    if (absl::Status match = student::CheckAgainstConfig(*header, *config, kWeightsFile); !match.ok()) {
      return absl::FailedPreconditionError(
          strings::Cat("student.checkpoint: the weights do not match config.json: ", match.message()));
    }
    resolved->mutable_student()->mutable_checkpoint()->set_uri(Absolute(dir) + "/");
  }
  if (spec.student().has_tokenizer()) {
    ASSIGN_OR_RETURN(std::string path,
                     artifacts::ResolveUri(root, spec.student().tokenizer().uri(), "student.tokenizer.uri"));
    if (!fs::is_regular_file(path)) {
      return absl::InvalidArgumentError(strings::Cat("student.tokenizer.uri: no such file \"", path, "\""));
    }
    RETURN_IF_ERROR(
        artifacts::VerifyContentHash(path, spec.student().tokenizer().content_hash(), "student.tokenizer"));
    resolved->mutable_student()->mutable_tokenizer()->set_uri(Absolute(path));
  }
  if (spec.eval().has_examples()) {
    ASSIGN_OR_RETURN(std::string path,
                     artifacts::ResolveUri(root, spec.eval().examples().uri(), "eval.examples.uri"));
    std::error_code ec;
    if (!fs::is_regular_file(path)) {
      return absl::InvalidArgumentError(strings::Cat("eval.examples.uri: no such file \"", path, "\""));
    }
    if (fs::file_size(path, ec) == 0) {
      return absl::InvalidArgumentError(strings::Cat("eval.examples: \"", path, "\" is empty"));
    }
    RETURN_IF_ERROR(
        artifacts::VerifyContentHash(path, spec.eval().examples().content_hash(), "eval.examples"));
    resolved->mutable_eval()->mutable_examples()->set_uri(Absolute(path));
  }
  return absl::OkStatus();
}

absl::Status RunManager::ResolveRunDir(const v1::RunSpec& spec, const std::string& run_id, std::string* dir,
                                       std::string* uri) const {
  if (spec.output_uri().empty()) {
    if (config_.artifact_root.empty()) {
      return absl::InvalidArgumentError("output_uri: required (this trainer has no artifact store)");
    }
    *uri = strings::Cat(artifacts::kArtifactScheme, config_.runs_dir, "/", run_id, "/");
  } else {
    *uri = spec.output_uri();
    if (uri->back() != '/') uri->push_back('/');
  }
  ASSIGN_OR_RETURN(std::string path, artifacts::ResolveUri(config_.artifact_root, *uri, "output_uri"));
  *dir = Absolute(path);
  while (dir->size() > 1 && dir->back() == '/') dir->pop_back();
  return absl::OkStatus();
}

absl::StatusOr<RunManager::StartResult> RunManager::StartRun(const v1::StartRunRequest& request) {
  absl::StatusOr<StartResult> result = [&]() -> absl::StatusOr<StartResult> {
    const std::string& request_id = request.client_request_id();
    if (request_id.empty()) return absl::InvalidArgumentError("client_request_id: required");
    if (request_id.size() > kMaxClientRequestIdBytes) {
      return absl::InvalidArgumentError(
          strings::Cat("client_request_id: at most 128 bytes, got ", request_id.size()));
    }
    if (!request.has_spec()) return absl::InvalidArgumentError("spec: required");
    // An existing run answers at once; only new runs pay for validation.
    auto existing = [&]() -> std::optional<absl::StatusOr<StartResult>> {
      auto it = by_request_id_.find(request_id);
      if (it == by_request_id_.end()) return std::nullopt;
      std::shared_ptr<RunRecord> run = FindLocked(it->second);
      if (!google::protobuf::util::MessageDifferencer::Equals(run->request_spec, request.spec())) {
        return absl::AlreadyExistsError(strings::Cat("client_request_id: \"", request_id,
                                                     "\" already started run ", run->run.run_id(),
                                                     " with a different spec"));
      }
      return StartResult{.run = run->run, .created = false};
    };
    {
      absl::MutexLock lock(&mu_);
      if (shutting_down_) return absl::UnavailableError("the trainer is shutting down");
      if (auto found = existing()) return *found;
    }
    v1::RunSpec resolved;
    RETURN_IF_ERROR(ValidateAndResolve(request.spec(), &resolved));

    std::vector<std::thread> joinable;
    StartResult started;
    {
      absl::MutexLock lock(&mu_);
      if (shutting_down_) return absl::UnavailableError("the trainer is shutting down");
      if (auto found = existing()) return *found;  // a concurrent call with the same id won
      std::string run_id = NewRunId();
      while (runs_.count(run_id) > 0) run_id = NewRunId();
      std::string run_dir, run_uri;
      RETURN_IF_ERROR(ResolveRunDir(request.spec(), run_id, &run_dir, &run_uri));
      for (const auto& [id, other] : runs_) {
        if (!IsTerminal(other->run.state()) && other->run_dir == run_dir) {
          return absl::FailedPreconditionError(
              strings::Cat("output_uri: run ", id, " is writing to \"", run_dir, "\""));
        }
      }
      std::error_code ec;
      fs::create_directories(run_dir, ec);
      if (ec) return absl::InternalError(strings::Cat("cannot create \"", run_dir, "\": ", ec.message()));
      resolved.set_output_uri(run_dir + "/");
      RETURN_IF_ERROR(student::WriteFileAtomically((fs::path(run_dir) / std::string(kSpecFile)).string(),
                                                   dataset::ProtoToJson(resolved) + "\n"));

      auto record = std::make_shared<RunRecord>();
      record->seq = next_seq_++;
      record->request_spec = request.spec();
      record->run_dir = run_dir;
      v1::Run& run = record->run;
      run.set_run_id(run_id);
      run.set_client_request_id(request_id);
      *run.mutable_spec() = request.spec();
      run.mutable_spec()->set_output_uri(run_uri);
      run.set_state(v1::RUN_STATE_QUEUED);
      *run.mutable_create_time() = ToTimestamp(clock_->Now());
      metrics_->state_gauges[v1::RUN_STATE_QUEUED]->Increment();
      runs_[run_id] = record;
      by_seq_[record->seq] = record;
      by_request_id_[request_id] = run_id;
      queue_.push_back(run_id);
      record->supervisor = std::thread(&RunManager::Supervise, this, record);
      started = StartResult{.run = run, .created = true};
      logging::Info("run queued", {{"run_id", run_id}, {"run_dir", run_dir}});
      EvictLocked(&joinable);
    }
    for (std::thread& t : joinable) t.join();
    return started;
  }();
  metrics_->started_by[!result.ok() ? "rejected" : result->created ? "created" : "existing"]->Increment();
  return result;
}

std::shared_ptr<RunManager::RunRecord> RunManager::FindLocked(const std::string& run_id) const {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? nullptr : it->second;
}

absl::StatusOr<v1::Run> RunManager::GetRun(const std::string& run_id) const {
  if (run_id.empty()) return absl::InvalidArgumentError("run_id: required");
  absl::MutexLock lock(&mu_);
  std::shared_ptr<RunRecord> run = FindLocked(run_id);
  if (run == nullptr) return absl::NotFoundError(strings::Cat("run_id: no run \"", run_id, "\""));
  return run->run;
}

std::vector<pid_t> RunManager::WorkerPids(const std::string& run_id) const {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<RunRecord> run = FindLocked(run_id);
  return run == nullptr ? std::vector<pid_t>{} : run->pids;
}

absl::StatusOr<v1::Run> RunManager::CancelRun(const std::string& run_id) {
  if (run_id.empty()) return absl::InvalidArgumentError("run_id: required");
  absl::MutexLock lock(&mu_);
  std::shared_ptr<RunRecord> run = FindLocked(run_id);
  if (run == nullptr) return absl::NotFoundError(strings::Cat("run_id: no run \"", run_id, "\""));
  if (IsTerminal(run->run.state())) return run->run;
  if (run->run.state() == v1::RUN_STATE_QUEUED) {
    FinishLocked(*run, v1::RUN_STATE_CANCELLED, "cancelled by client", 0);
    return run->run;
  }
  run->cancel_requested = true;
  // The supervisor stops the workers within worker_kill_grace (then SIGKILL) and finishes the run.
  auto done = [&run]() { return IsTerminal(run->run.state()); };
  mu_.Await(absl::Condition(&done));
  return run->run;
}

absl::StatusOr<v1::ListRunsResponse> RunManager::ListRuns(const v1::ListRunsRequest& request) const {
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(
        strings::Cat("page_size: must be in [0, 1000], got ", request.page_size()));
  }
  const int page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  // Tokens are "<state filter>:<sequence number of the last run returned>", web-safe base64.
  int64_t before = std::numeric_limits<int64_t>::max();
  if (!request.page_token().empty()) {
    std::string decoded;
    std::vector<std::string> parts;
    int state = 0;
    if (absl::WebSafeBase64Unescape(request.page_token(), &decoded)) parts = absl::StrSplit(decoded, ':');
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &state) || !absl::SimpleAtoi(parts[1], &before)) {
      return absl::InvalidArgumentError(
          "page_token: malformed; pass the next_page_token of the previous page");
    }
    if (state != request.state()) {
      return absl::InvalidArgumentError(strings::Cat("page_token: issued for state filter ",
                                                     v1::RunState_Name(static_cast<v1::RunState>(state)),
                                                     ", not ", v1::RunState_Name(request.state())));
    }
  }
  v1::ListRunsResponse response;
  absl::MutexLock lock(&mu_);
  auto matches = [&](const RunRecord& r) {
    return request.state() == v1::RUN_STATE_UNSPECIFIED || r.run.state() == request.state();
  };
  int64_t last_seq = -1;
  for (auto it = std::make_reverse_iterator(by_seq_.lower_bound(before)); it != by_seq_.rend(); ++it) {
    if (!matches(*it->second)) continue;
    if (response.runs_size() == page_size) {
      std::string token = strings::Cat(static_cast<int>(request.state()), ":", last_seq);
      response.set_next_page_token(absl::WebSafeBase64Escape(token));
      break;
    }
    *response.add_runs() = it->second->run;
    last_seq = it->first;
  }
  return response;
}

absl::Status RunManager::WatchRun(const std::string& run_id,
                                  const std::function<bool(const v1::WatchRunResponse&)>& send,
                                  const std::function<bool()>& stop) {
  if (run_id.empty()) return absl::InvalidArgumentError("run_id: required");
  std::shared_ptr<RunRecord> run;
  v1::WatchRunResponse first;
  int64_t next = 0;
  bool done = false;
  {
    absl::MutexLock lock(&mu_);
    run = FindLocked(run_id);
    if (run == nullptr) return absl::NotFoundError(strings::Cat("run_id: no run \"", run_id, "\""));
    *first.mutable_time() = ToTimestamp(clock_->Now());
    *first.mutable_run() = run->run;
    next = run->events_end();
    done = IsTerminal(run->run.state());
  }
  if (!send(first)) return absl::CancelledError("the watcher went away");
  if (done) return absl::OkStatus();
  while (true) {
    std::vector<v1::WatchRunResponse> batch;
    std::optional<v1::WatchRunResponse> last;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() { return run->events_end() > next || IsTerminal(run->run.state()); };
      mu_.AwaitWithTimeout(absl::Condition(&ready), kWatchPollInterval);
      next = std::max(next, run->events_base);
      for (; next < run->events_end(); ++next) batch.push_back(run->events[next - run->events_base]);
      if (IsTerminal(run->run.state())) {
        last.emplace();
        *last->mutable_time() = ToTimestamp(clock_->Now());
        *last->mutable_run() = run->run;
      }
    }
    for (const v1::WatchRunResponse& event : batch) {
      if (!send(event)) return absl::CancelledError("the watcher went away");
    }
    if (last.has_value()) {
      if (!send(*last)) return absl::CancelledError("the watcher went away");
      return absl::OkStatus();
    }
    if (stop && stop()) return absl::CancelledError("the watcher stopped watching");
  }
}

void RunManager::PublishLocked(RunRecord& run, v1::WatchRunResponse event) {
  if (!event.has_time()) *event.mutable_time() = ToTimestamp(clock_->Now());
  run.events.push_back(std::move(event));
  while (run.events.size() > kMaxEventsKept) {
    run.events.pop_front();
    ++run.events_base;
  }
}

void RunManager::SetStateLocked(RunRecord& run, v1::RunState state) {
  if (run.run.state() == state) return;
  metrics_->state_gauges[run.run.state()]->Decrement();
  metrics_->state_gauges[state]->Increment();
  run.run.set_state(state);
}

void RunManager::FinishLocked(RunRecord& run, v1::RunState state, const std::string& cause, int code) {
  SetStateLocked(run, state);
  *run.run.mutable_end_time() = ToTimestamp(clock_->Now());
  run.run.set_failure_cause(cause);
  run.run.set_failure_code(state == v1::RUN_STATE_FAILED ? code : 0);
  metrics_->finished_by[state]->Increment();
  v1::WatchRunResponse event;
  event.mutable_state_changed()->set_state(state);
  event.mutable_state_changed()->set_message(
      state == v1::RUN_STATE_SUCCEEDED ? strings::Cat("model written to ", run.run.model().uri()) : cause);
  PublishLocked(run, std::move(event));
  logging::Info("run finished",
                {{"run_id", run.run.run_id()}, {"state", StateLabel(state)}, {"cause", cause}});
}

void RunManager::EvictLocked(std::vector<std::thread>* joinable) {
  int64_t finished = 0;
  for (const auto& [seq, run] : by_seq_) finished += IsTerminal(run->run.state()) ? 1 : 0;
  for (auto it = by_seq_.begin(); it != by_seq_.end() && finished > config_.max_retained_runs;) {
    RunRecord& run = *it->second;
    if (!IsTerminal(run.run.state())) {
      ++it;
      continue;
    }
    metrics_->state_gauges[run.run.state()]->Decrement();
    if (run.supervisor.joinable()) joinable->push_back(std::move(run.supervisor));
    by_request_id_.erase(run.run.client_request_id());
    runs_.erase(run.run.run_id());
    it = by_seq_.erase(it);
    --finished;
  }
}

absl::StatusOr<int> RunManager::AcquirePort() {
  auto can_bind = [](int port, int* bound) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    socklen_t len = sizeof(addr);
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    if (ok) *bound = ntohs(addr.sin_port);
    close(fd);
    return ok;
  };
  absl::MutexLock lock(&mu_);
  if (port_first_ == 0) {
    for (int attempt = 0; attempt < 16; ++attempt) {
      int port = 0;
      if (can_bind(0, &port) && ports_in_use_.insert(port).second) return port;
    }
    return absl::ResourceExhaustedError("no free port for the c10d TCPStore");
  }
  for (int port = port_first_; port <= port_last_; ++port) {
    int bound = 0;
    if (ports_in_use_.count(port) == 0 && can_bind(port, &bound)) {
      ports_in_use_.insert(port);
      return port;
    }
  }
  return absl::ResourceExhaustedError(strings::Cat(
      "no free port for the c10d TCPStore in ", port_first_, "-", port_last_,
      " (trainer.master_port_range or MASTER_PORT); runs that train at once need one port each"));
}

void RunManager::ReleasePort(int port) {
  absl::MutexLock lock(&mu_);
  ports_in_use_.erase(port);
}

void RunManager::HandleWorkerLine(RunRecord& run, std::string_view line) {
  if (absl::StripAsciiWhitespace(strings::ToAbsl(line)).empty()) return;
  v1::WatchRunResponse event;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(std::string(line), &event, options).ok()) {
    logging::Warning("worker printed a line that is not an event",
                     {{"run_id", run.run.run_id()}, {"line", line.substr(0, 200)}});
    return;
  }
  absl::MutexLock lock(&mu_);
  v1::Run& r = run.run;
  switch (event.event_case()) {
    case v1::WatchRunResponse::kProgress:
      // Steps past the latest reported; a resumed run repeats the steps after its checkpoint unseen here.
      if (event.progress().step() > r.progress().step()) {
        metrics_->steps.Increment(static_cast<double>(event.progress().step() - r.progress().step()));
      }
      *r.mutable_progress() = event.progress();
      metrics_->ObserveProgress(event.progress());
      metrics_->MarkProgress(clock_->Now());
      break;
    case v1::WatchRunResponse::kEval:
      *r.mutable_latest_eval() = event.eval();
      if (event.eval().best() || !r.has_best_eval()) *r.mutable_best_eval() = event.eval();
      metrics_->eval_accuracy.Set(event.eval().accuracy());
      break;
    case v1::WatchRunResponse::kCheckpoint: {
      v1::ArtifactRef* ref = event.mutable_checkpoint()->mutable_checkpoint();
      absl::string_view uri = ref->uri();
      absl::ConsumePrefix(&uri, "file://");
      if (!uri.empty() && uri.front() == '/') ref->set_uri(UriForPath(std::string(uri), true));
      *r.mutable_latest_checkpoint() = event.checkpoint();
      metrics_->checkpoint_seconds.Observe(event.checkpoint().write_seconds());
      break;
    }
    case v1::WatchRunResponse::kStateChanged:
      // Workers only announce that they train (and from which step); the end is decided here.
      if (event.state_changed().state() != v1::RUN_STATE_RUNNING) return;
      break;
    default:
      return;
  }
  PublishLocked(run, std::move(event));
}

RunManager::GroupEnd RunManager::RunGroup(RunRecord& run, int attempt) {
  GroupEnd end;
  const int world_size = std::max(1, run.run.spec().training().distributed().world_size());
  absl::StatusOr<int> port = AcquirePort();
  if (!port.ok()) {
    end.cause = std::string(port.status().message());
    end.code = static_cast<int>(port.status().code());
    return end;
  }
  int threads = run.run.spec().training().distributed().threads_per_rank();
  if (threads == 0) threads = config_.threads_per_rank;
  WorkerGroupOptions options;
  options.binary = worker_binary_;
  for (int rank = 0; rank < world_size; ++rank) {
    std::vector<std::string> args = {std::string(kWorkerCommand),
                                     "--run-dir",
                                     run.run_dir,
                                     "--rank",
                                     std::to_string(rank),
                                     "--world-size",
                                     std::to_string(world_size),
                                     "--master-addr",
                                     master_addr_,
                                     "--master-port",
                                     std::to_string(*port)};
    if (threads > 0) {
      args.push_back("--threads");
      args.push_back(std::to_string(threads));
    }
    options.rank_args.push_back(std::move(args));
  }
  options.log_dir = (fs::path(run.run_dir) / "logs").string();
  options.on_stdout_line = [this, &run](std::string_view line) { HandleWorkerLine(run, line); };
  if (config_.forward_worker_logs) {
    options.on_stderr_line = [](int, std::string_view line) { WriteStderrLine(line); };
  }
  options.kill_grace = config_.worker_kill_grace;
  logging::Info("starting workers", {{"run_id", run.run.run_id()},
                                     {"world_size", world_size},
                                     {"attempt", attempt},
                                     {"master", strings::Cat(master_addr_, ":", *port)}});
  absl::StatusOr<std::unique_ptr<WorkerGroup>> group = WorkerGroup::Start(std::move(options));
  if (!group.ok()) {
    ReleasePort(*port);
    end.cause = std::string(group.status().message());
    end.code = static_cast<int>(group.status().code());
    return end;
  }
  {
    absl::MutexLock lock(&mu_);
    run.pids = (*group)->pids();
    metrics_->world_size.Increment(world_size);
  }
  WorkerGroupResult result = (*group)->Wait([this, &run]() {
    absl::MutexLock lock(&mu_);
    return shutting_down_ || run.cancel_requested;
  });
  group->reset();
  ReleasePort(*port);
  {
    absl::MutexLock lock(&mu_);
    run.pids.clear();
    metrics_->world_size.Decrement(world_size);
  }
  if (result.stop_requested) {
    end.kind = GroupEnd::kStopped;
    return end;
  }
  if (result.failed_rank.has_value()) {
    const RankExit& e = result.exits[*result.failed_rank];
    const std::string rank_prefix = world_size > 1 ? strings::Cat("rank ", e.rank, ": ") : "";
    end.crash = strings::Cat("worker rank ", e.rank, " exited with ", DescribeWaitStatus(e.wait_status));
    if (WIFSIGNALED(e.wait_status)) {
      end.cause = end.crash;
      end.code = static_cast<int>(absl::StatusCode::kInternal);
      end.restartable = true;
    } else {
      const int status = WEXITSTATUS(e.wait_status);
      end.code = status >= 1 && status <= 16 ? status : static_cast<int>(absl::StatusCode::kUnknown);
      end.cause = !e.error.empty()       ? strings::Cat(rank_prefix, e.error)
                  : !e.last_line.empty() ? strings::Cat(end.crash, ": ", e.last_line)
                                         : end.crash;
      end.restartable = IsTransient(end.code);
    }
    return end;
  }
  const fs::path model_dir = fs::path(run.run_dir) / std::string(kModelDir);
  absl::StatusOr<std::string> hash = artifacts::FileContentHash((model_dir / "manifest.json").string());
  if (!hash.ok()) {
    end.cause = strings::Cat("the workers exited 0 without writing ", (model_dir / "manifest.json").string());
    end.code = static_cast<int>(absl::StatusCode::kInternal);
    return end;
  }
  end.kind = GroupEnd::kSucceeded;
  end.model.set_uri(UriForPath(model_dir.string(), true));
  end.model.set_content_hash(*hash);
  end.model.set_size_bytes(DirectoryBytes(model_dir.string()));
  return end;
}

void RunManager::Supervise(std::shared_ptr<RunRecord> record) {
  RunRecord& run = *record;
  const std::string id = run.run.run_id();
  {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() {
      return shutting_down_ || IsTerminal(run.run.state()) ||
             (!queue_.empty() && queue_.front() == id && active_ < config_.max_concurrent_runs);
    };
    mu_.Await(absl::Condition(&ready));
    queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
    if (IsTerminal(run.run.state())) return;  // cancelled while queued
    if (shutting_down_) {
      FinishLocked(run, v1::RUN_STATE_FAILED, "the trainer shut down before the run started",
                   static_cast<int>(absl::StatusCode::kUnavailable));
      return;
    }
    ++active_;
    SetStateLocked(run, v1::RUN_STATE_RUNNING);
    *run.run.mutable_start_time() = ToTimestamp(clock_->Now());
    // A run that never reports a step shows as stalled counted from here.
    metrics_->MarkProgress(clock_->Now());
  }
  for (int attempt = 0;; ++attempt) {
    GroupEnd end = RunGroup(run, attempt);
    const std::optional<int64_t> checkpoint_step = LatestCheckpointStep(run.run_dir);
    absl::MutexLock lock(&mu_);
    if (end.kind == GroupEnd::kSucceeded) {
      // Finished before a cancel or shutdown could stop it.
      *run.run.mutable_model() = end.model;
      FinishLocked(run, v1::RUN_STATE_SUCCEEDED, "", 0);
    } else if (run.cancel_requested) {
      FinishLocked(run, v1::RUN_STATE_CANCELLED, "cancelled by client", 0);
    } else if (end.kind == GroupEnd::kStopped || shutting_down_) {
      FinishLocked(
          run, v1::RUN_STATE_FAILED,
          "the trainer shut down before the run finished; starting the same spec with the same output_uri "
          "resumes from its last checkpoint",
          static_cast<int>(absl::StatusCode::kUnavailable));
    } else if (end.restartable &&
               run.run.worker_restarts() < run.run.spec().training().max_worker_restarts()) {
      run.run.set_worker_restarts(run.run.worker_restarts() + 1);
      metrics_->restarts.Increment();
      const int64_t step = checkpoint_step.value_or(0);
      v1::WatchRunResponse event;
      event.mutable_state_changed()->set_state(v1::RUN_STATE_RUNNING);
      event.mutable_state_changed()->set_message(strings::Cat(end.crash, ", restarting from step ", step));
      event.mutable_state_changed()->set_resumed_from_step(step);
      PublishLocked(run, std::move(event));
      logging::Warning("restarting workers", {{"run_id", id}, {"cause", end.cause}, {"from_step", step}});
      continue;
    } else {
      const int restarts = run.run.worker_restarts();
      FinishLocked(run, v1::RUN_STATE_FAILED,
                   restarts == 0 ? end.cause
                                 : strings::Cat(end.cause, " (after ", restarts, " worker restart",
                                                restarts == 1 ? "" : "s", ")"),
                   end.code);
    }
    --active_;
    return;
  }
}

void RunManager::Shutdown() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (auto& [id, run] : runs_) {
      if (run->supervisor.joinable()) threads.push_back(std::move(run->supervisor));
    }
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace distill::trainer
