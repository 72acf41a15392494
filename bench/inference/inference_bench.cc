// Inference service under load (issue 7): a closed-loop gRPC load generator against the inference server
// (services/inference) serving a randomly initialised student, with batching on and off.
//
//   distill-bench-inference [--quick] [--shape small|tiny] [--clients 1,8,32,128] [--methods Predict,Generate]
//                           [--seconds 10] [--warmup 2] [--max_new_tokens 64] [--max_batch 32] [--out results.json]
//
//   model      student::InitStudent(PresetConfig(--shape)) with the built-in tokenizer, saved with SaveStudent;
//              small keeps t5-v1_1-small's 32128-row embedding. A random model seldom emits EOS, so every
//              request asks for exactly --max_new_tokens tokens (sampling.max_new_tokens, greedy), and the
//              input is the first of a few questions whose greedy output runs that long without EOS; the
//              mean output tokens actually generated are reported beside every figure.
//   library    the same input through student::Generate directly (batch 1, greedy, same max_new_tokens,
//              one intra-op thread like the server), --library_reps runs after 2 warm-up runs: p50/p99.
//   servers    rpc::Server::Start("inference", ...) in this process with InferenceDefinition()'s module,
//              config from a YAML file like any deployment's (ports 0 on 127.0.0.1, no HTTP API, the model
//              in `models:`): once with batching (max_batch --max_batch, max_wait --max_wait) and once
//              without (max_batch 1). Ready when ListModels says READY. The clients speak real gRPC over
//              loopback TCP; in-process only spares process management and lets the driver count the
//              CPU the server and the clients use.
//   load       for each method, batching and client count: N threads, each with its own stub (on
//              --channels channels, each its own TCP connection), send requests back to back (closed
//              loop). Requests completing in the --warmup seconds are not counted; then, for --seconds
//              (or until --max_requests completions), every completion counts: requests/s, output
//              tokens/s, p50/p99 latency (Generate: until the final message; also time to the first chunk).
//              At the end, requests still in flight are cancelled and reported as cut off. Every error
//              counts by code (RESOURCE_EXHAUSTED included; the client then waits the server's
//              retry-after-ms hint, at most 100 ms). max_queue defaults to at least the largest client
//              count so that a full queue is a finding, not a setting.
//   targets    requests/s with batching / without at 32 clients >= 5x (Predict and Generate); with
//              batching at 1 client, p99 latency <= 1.2x the library's p99.
// Other load on the machine is measured during each configuration (CPU used by other processes, in
// cores) because this is a shared 2-vCPU machine. Nothing here asserts timings.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ATen/Parallel.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "bench/support/bench_support.h"
#include "c10/util/Exception.h"
#include "common/cli/flags.h"
#include "common/logging/logging.h"
#include "common/rpc/server.h"
#include "common/rpc/service_main.h"
#include "common/status/macros.h"
#include "common/student/model/generation.h"
#include "common/student/student.h"
#include "distill/v1/inference.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "services/inference/inference_service.h"
#include "tests/support/temp_dir.h"
#include "torch/types.h"

namespace distill::bench {
namespace {

using json = nlohmann::json;

constexpr char kModelName[] = "bench";
constexpr char kModelVersion[] = "v1";

struct Options {
  std::string shape = "small";
  std::vector<std::string> clients = {"1", "8", "32", "128"};
  std::vector<std::string> methods = {"Predict", "Generate"};
  double seconds = 10;      // measured window per configuration
  double warmup = 2;        // seconds of load before the window, not counted
  int64_t max_requests = 0; // completions per configuration that end the window early; 0 = no limit
  int max_new_tokens = 64;
  int max_batch = 32;       // the batching server's max_batch
  absl::Duration max_wait = absl::Milliseconds(2);
  int max_queue = 0;        // 0: max(256, the largest client count)
  int channels = 4;
  int library_reps = 40;
  int64_t seed = 1;
  double wait_idle = 0;     // seconds to wait at most for a quiet machine before each measurement
  int retries = 0;          // measurements repeated at most this often when other processes disturbed them
  std::string work_dir;     // empty: a temporary directory, removed at exit
  std::string out;
};

// ---------------------------------------------------------------------------------------------------
// The machine.

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(std::min(line.size(), colon + 2));
    }
  }
  return "unknown";
}

// Runs `measure` (which returns a JSON object) after waiting for quiet (--wait_idle), and again up to
// --retries times while other processes used 0.25 core or more meanwhile; keeps the least disturbed run and
// records "other_cores" and "attempts" in it.
template <typename Measure>
absl::StatusOr<json> MeasureQuietly(const Options& o, Measure measure) {
  json best;
  for (int attempt = 0; attempt <= std::max(0, o.retries); ++attempt) {
    if (o.wait_idle > 0) WaitForIdle(o.wait_idle);
    CpuMeter cpu;
    absl::StatusOr<json> r = measure();
    if (!r.ok()) return r.status();
    (*r)["other_cores"] = cpu.OtherCores();
    if (best.is_null() || (*r)["other_cores"].get<double>() < best["other_cores"].get<double>()) best = *r;
    best["attempts"] = attempt + 1;
    if (best["other_cores"].get<double>() < 0.25) break;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------
// The model and the library baseline.

// Questions tried in order; the first whose greedy output runs the full max_new_tokens is the input.
const std::vector<std::string>& CandidateInputs() {
  static const auto* inputs = new std::vector<std::string>{
      "Tom has 3 boxes with 12 apples each. He gives away 7 apples. How many apples are left?",
      "A train travels 60 miles per hour for 2.5 hours. How far does it go?",
      "What is the capital of France?",
      "If a shirt costs 20 dollars and is 15 percent off, what is the sale price?",
      "Sara reads 14 pages a day. How many pages does she read in 3 weeks?",
      "Which is heavier, a kilogram of feathers or a kilogram of iron?",
  };
  return *inputs;
}

struct BenchModel {
  std::string dir;
  int64_t parameters = 0;
  int64_t vocab_rows = 0;
  int tokenizer_pieces = 0;
  std::string input;
  std::vector<int> input_ids;  // as the server encodes a STANDARD student's input (EOS included)
  int library_output_tokens = 0;
  json library;
};

absl::StatusOr<std::vector<int>> GenerateOnce(student::Student& s, const torch::Tensor& ids,
                                              const student::GenerationOptions& options) {
  ASSIGN_OR_RETURN(std::vector<std::vector<int>> out,
                   s.model->Generate(ids, torch::ones_like(ids), options));
  return out.at(0);
}

// Creates and saves the student into `dir`, loads it back as the server will, picks the input and
// measures the library baseline on it.
absl::StatusOr<BenchModel> PrepareModel(const Options& o, const std::string& dir) {
  ASSIGN_OR_RETURN(student::T5Config config, student::PresetConfig(o.shape));
  // Like `distill model init`: the built-in tokenizer; the tiny preset's 256 rows are resized to fit it,
  // small keeps t5-v1_1-small's 32128-row embedding and lm_head (their cost is part of every step).
  ASSIGN_OR_RETURN(std::unique_ptr<student::Tokenizer> tokenizer,
                   student::BuiltinTokenizer(std::min(config.vocab_size, 8000)));
  const bool fit_vocab = tokenizer->vocab_size() + tokenizer->sentinel_count() > config.vocab_size;
  {
    ASSIGN_OR_RETURN(student::Student created,
                     student::InitStudent(config, std::move(tokenizer), static_cast<uint64_t>(o.seed), fit_vocab));
    RETURN_IF_ERROR(student::SaveStudent(created, dir));
  }
  ASSIGN_OR_RETURN(student::Student loaded, student::LoadStudent(dir));

  BenchModel model;
  model.dir = dir;
  model.parameters = loaded.model->NumParameters();
  model.vocab_rows = loaded.model->vocab_size();
  model.tokenizer_pieces = loaded.tokenizer->vocab_size();

  // The server runs libtorch with one intra-op thread (InferenceModule::Start); so does the baseline.
  at::set_num_threads(1);
  student::GenerationOptions options = loaded.model->DefaultGenerationOptions();
  options.max_new_tokens = o.max_new_tokens;
  torch::Tensor ids;
  for (const std::string& input : CandidateInputs()) {
    std::vector<int> encoded = loaded.tokenizer->Encode(input);
    torch::Tensor candidate =
        torch::tensor(std::vector<int64_t>(encoded.begin(), encoded.end()), torch::kInt64).unsqueeze(0);
    ASSIGN_OR_RETURN(std::vector<int> out, GenerateOnce(loaded, candidate, options));
    const bool full = static_cast<int>(out.size()) == o.max_new_tokens && out.back() != options.eos_id;
    if (model.input.empty() || full) {
      model.input = input;
      model.input_ids = std::move(encoded);
      model.library_output_tokens = static_cast<int>(out.size());
      ids = candidate;
    }
    if (full) break;
  }

  ASSIGN_OR_RETURN(model.library, MeasureQuietly(o, [&]() -> absl::StatusOr<json> {
    for (int i = 0; i < 2; ++i) RETURN_IF_ERROR(GenerateOnce(loaded, ids, options).status());
    std::vector<double> seconds;
    for (int i = 0; i < o.library_reps; ++i) {
      const auto start = SteadyClock::now();
      RETURN_IF_ERROR(GenerateOnce(loaded, ids, options).status());
      seconds.push_back(SecondsSince(start));
    }
    double total = 0;
    for (double s : seconds) total += s;
    return json{{"runs", seconds.size()},
                {"input_tokens", model.input_ids.size()},
                {"output_tokens", model.library_output_tokens},
                {"p50_seconds", Percentile(seconds, 0.5)},
                {"p99_seconds", Percentile(seconds, 0.99)},
                {"mean_seconds", total / static_cast<double>(seconds.size())},
                {"tokens_per_second", model.library_output_tokens * seconds.size() / total}};
  }));
  return model;
}

// ---------------------------------------------------------------------------------------------------
// The server.

struct ServerSettings {
  std::string label;  // "on" | "off"
  int max_batch = 1;
  absl::Duration max_wait = absl::ZeroDuration();
  int max_queue = 256;
};

// An inference server in this process, serving the bench model, and the channels the clients use.
class BenchServer {
 public:
  static absl::StatusOr<std::unique_ptr<BenchServer>> Start(const ServerSettings& settings, const Options& o,
                                                            const std::string& model_dir,
                                                            const std::string& work_dir) {
    // A config file like a deployment's, read by the service's own loader.
    const std::string path = absl::StrCat(work_dir, "/inference-batching-", settings.label, ".yaml");
    {
      std::ofstream file(path);
      file << "server:\n"
           << "  grpc_address: 127.0.0.1:0\n"
           << "  metrics_address: 127.0.0.1:0\n"
           << "  shutdown_grace: 1s\n"
           << "inference:\n"
           << "  artifact_root: " << work_dir << "\n"
           << "  max_batch: " << settings.max_batch << "\n"
           << "  max_wait: " << absl::FormatDuration(settings.max_wait) << "\n"
           << "  max_queue: " << settings.max_queue << "\n"
           << "  default_max_new_tokens: " << o.max_new_tokens << "\n"
           << "  http_address: \"\"\n"
           << "  models:\n"
           << "    - name: " << kModelName << "\n"
           << "      version: " << kModelVersion << "\n"
           << "      artifact: " << std::filesystem::absolute(model_dir).string() << "\n";
      if (!file) return absl::InternalError(absl::StrCat("cannot write ", path));
    }
    rpc::ServiceDefinition definition = services::InferenceDefinition();
    ASSIGN_OR_RETURN(rpc::ServiceConfig config, rpc::LoadServiceConfig(path, definition));
    auto server = std::unique_ptr<BenchServer>(new BenchServer());
    ASSIGN_OR_RETURN(server->server_, rpc::Server::Start(definition.name, config.server, definition.factory));
    for (int i = 0; i < std::max(1, o.channels); ++i) {
      // A local subchannel pool gives every channel its own TCP connection.
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      server->channels_.push_back(
          grpc::CreateCustomChannel(server->server_->grpc_address(), grpc::InsecureChannelCredentials(), args));
    }
    RETURN_IF_ERROR(server->WaitReady(absl::Seconds(300)));
    return server;
  }

  // Channels first: an idle client connection delays a gRPC 1.51 server's shutdown by seconds.
  ~BenchServer() {
    channels_.clear();
    if (server_ != nullptr) server_->Shutdown();
  }

  const std::shared_ptr<grpc::Channel>& channel(int client) const {
    return channels_[static_cast<size_t>(client) % channels_.size()];
  }

 private:
  BenchServer() = default;

  // Polls ListModels until the model is READY (FAILED_PRECONDITION with its message when loading failed).
  absl::Status WaitReady(absl::Duration limit) {
    const absl::Time give_up = absl::Now() + limit;
    auto stub = v1::Inference::NewStub(channels_.front());
    std::string last = "no answer";
    while (absl::Now() < give_up) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::ListModelsRequest request;
      request.set_name(kModelName);
      v1::ListModelsResponse response;
      const grpc::Status status = stub->ListModels(&context, request, &response);
      if (status.ok()) {
        for (const v1::ModelInfo& info : response.models()) {
          if (info.state() == v1::MODEL_STATE_READY && info.active()) return absl::OkStatus();
          if (info.state() == v1::MODEL_STATE_FAILED) {
            return absl::FailedPreconditionError(absl::StrCat("the bench model failed to load: ", info.message()));
          }
        }
        last = response.models().empty() ? "not listed yet" : v1::ModelState_Name(response.models(0).state());
      } else {
        last = status.error_message();
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("the bench model was not READY after ", absl::FormatDuration(limit), " (last: ", last, ")"));
  }

  std::unique_ptr<rpc::Server> server_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
};

// ---------------------------------------------------------------------------------------------------
// Closed-loop load.

std::string CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",      "UNIMPLEMENTED",    "INTERNAL",         "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : absl::StrCat("CODE_", index);
}

// What one client thread saw.
struct ClientStats {
  std::vector<double> latencies;    // seconds, requests completed in the window
  std::vector<double> first_chunk;  // Generate: seconds to the first chunk, same requests
  int64_t output_tokens = 0;        // of the requests completed in the window
  std::map<std::string, int64_t> errors;  // by code, warm-up included
  int64_t cut_off = 0;              // in flight when the run ended, cancelled
  std::string first_error;
};

// One configuration's run: the window and the stop signal shared by its client threads.
class LoadRun {
 public:
  LoadRun(const Options& o, const BenchModel& model, const std::string& method, int clients)
      : o_(o), model_(model), generate_(method == "Generate"), slots_(static_cast<size_t>(clients)) {}

  json Run(const BenchServer& server) {
    const int clients = static_cast<int>(slots_.size());
    std::vector<ClientStats> stats(slots_.size());
    CpuMeter cpu;
    start_ = SteadyClock::now();
    window_start_ = start_ + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(o_.warmup));
    const auto deadline =
        window_start_ + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(o_.seconds));
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back([this, &server, &stats, i] { Client(server.channel(i), &slots_[i], &stats[i]); });
    }
    enough_.WaitForNotificationWithTimeout(absl::FromChrono(deadline - SteadyClock::now()));
    Stop();
    for (std::thread& t : threads) t.join();
    const double cores = cpu.OwnCores();

    ClientStats all;
    for (ClientStats& s : stats) {
      all.latencies.insert(all.latencies.end(), s.latencies.begin(), s.latencies.end());
      all.first_chunk.insert(all.first_chunk.end(), s.first_chunk.begin(), s.first_chunk.end());
      all.output_tokens += s.output_tokens;
      all.cut_off += s.cut_off;
      for (const auto& [code, n] : s.errors) all.errors[code] += n;
      if (all.first_error.empty()) all.first_error = s.first_error;
    }
    const double window = std::max(1e-9, std::chrono::duration<double>(stop_time_ - window_start_).count());
    const double completed = static_cast<double>(all.latencies.size());
    double latency_sum = 0;
    for (double l : all.latencies) latency_sum += l;
    int64_t errors = 0;
    for (const auto& [code, n] : all.errors) errors += n;
    json r = {{"clients", clients},
              {"window_seconds", window},
              {"completed", all.latencies.size()},
              {"requests_per_second", completed / window},
              {"tokens_per_second", static_cast<double>(all.output_tokens) / window},
              {"mean_output_tokens", completed > 0 ? static_cast<double>(all.output_tokens) / completed : 0.0},
              {"p50_seconds", Percentile(all.latencies, 0.5)},
              {"p99_seconds", Percentile(all.latencies, 0.99)},
              {"mean_seconds", completed > 0 ? latency_sum / completed : 0.0},
              // Little's law for a closed loop: what the mean latency must be once the queue is in a steady
              // state. A measured mean far below it means the window ended before the queue reached it.
              {"steady_mean_seconds", completed > 0 ? clients * window / completed : 0.0},
              {"errors", errors},
              {"errors_by_code", all.errors},
              {"cut_off", all.cut_off},
              {"cpu_cores", cores}};
    if (generate_) {
      r["first_chunk_p50_seconds"] = Percentile(all.first_chunk, 0.5);
      r["first_chunk_p99_seconds"] = Percentile(all.first_chunk, 0.99);
    }
    if (!all.first_error.empty()) r["first_error"] = all.first_error;
    return r;
  }

 private:
  struct Slot {
    absl::Mutex mu;
    grpc::ClientContext* context ABSL_GUARDED_BY(mu) = nullptr;
  };

  // Ends the run: no new requests, and those in flight are cancelled.
  void Stop() {
    {
      absl::MutexLock lock(&stop_mu_);
      if (stopped_.load()) return;
      stop_time_ = SteadyClock::now();
      stopped_.store(true);
    }
    for (Slot& slot : slots_) {
      absl::MutexLock lock(&slot.mu);
      if (slot.context != nullptr) slot.context->TryCancel();
    }
  }

  // Registers `context` as the slot's call; false when the run has stopped (checked under the slot's lock,
  // so Stop() either sees the call and cancels it, or the call is never made).
  bool Begin(Slot* slot, grpc::ClientContext* context) {
    absl::MutexLock lock(&slot->mu);
    if (stopped_.load()) return false;
    slot->context = context;
    return true;
  }
  void End(Slot* slot) {
    absl::MutexLock lock(&slot->mu);
    slot->context = nullptr;
  }

  // Whether a completion at `t` falls in the window; counts it towards --max_requests.
  bool InWindow(SteadyClock::time_point t) {
    if (t < window_start_ || stopped_.load()) return false;
    if (o_.max_requests <= 0) return true;
    const int64_t n = counted_.fetch_add(1);
    if (n + 1 == o_.max_requests) enough_.Notify();
    return n < o_.max_requests;
  }

  void Client(const std::shared_ptr<grpc::Channel>& channel, Slot* slot, ClientStats* stats) {
    std::unique_ptr<v1::Inference::Stub> stub = v1::Inference::NewStub(channel);
    v1::SamplingParams sampling;
    sampling.set_max_new_tokens(o_.max_new_tokens);
    v1::PredictRequest predict;
    predict.set_model(kModelName);
    predict.set_input(model_.input);
    *predict.mutable_sampling() = sampling;
    v1::GenerateRequest generate;
    generate.set_model(kModelName);
    generate.set_input(model_.input);
    *generate.mutable_sampling() = sampling;

    while (!stopped_.load()) {
      grpc::ClientContext context;
      if (!Begin(slot, &context)) break;
      const auto start = SteadyClock::now();
      grpc::Status status;
      int output_tokens = 0;
      double first_chunk = -1;
      if (generate_) {
        std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub->Generate(&context, generate);
        v1::GenerateResponse response;
        bool result = false;
        while (reader->Read(&response)) {
          if (response.has_chunk() && first_chunk < 0) first_chunk = SecondsSince(start);
          if (response.has_result()) {
            result = true;
            output_tokens = response.result().output_tokens();
          }
        }
        status = reader->Finish();
        if (status.ok() && !result) status = grpc::Status(grpc::StatusCode::DATA_LOSS, "stream ended without a result");
      } else {
        v1::PredictResponse response;
        status = stub->Predict(&context, predict, &response);
        output_tokens = response.output_tokens();
      }
      const auto done = SteadyClock::now();
      End(slot);

      if (status.ok()) {
        if (InWindow(done)) {
          stats->latencies.push_back(std::chrono::duration<double>(done - start).count());
          if (first_chunk >= 0) stats->first_chunk.push_back(first_chunk);
          stats->output_tokens += output_tokens;
        }
        continue;
      }
      if (stopped_.load() && (status.error_code() == grpc::StatusCode::CANCELLED ||
                              status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
        ++stats->cut_off;
        break;
      }
      ++stats->errors[CodeName(status.error_code())];
      if (stats->first_error.empty()) {
        stats->first_error = absl::StrCat(CodeName(status.error_code()), ": ", status.error_message());
      }
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        int64_t hint_ms = 10;
        const auto& trailers = context.GetServerTrailingMetadata();
        if (auto it = trailers.find("retry-after-ms"); it != trailers.end()) {
          int64_t parsed = 0;
          if (absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &parsed)) hint_ms = parsed;
        }
        absl::SleepFor(absl::Milliseconds(std::clamp<int64_t>(hint_ms, 1, 100)));
      } else {
        absl::SleepFor(absl::Milliseconds(10));  // not a busy loop when the server fails every call
      }
    }
  }

  const Options& o_;
  const BenchModel& model_;
  const bool generate_;
  std::vector<Slot> slots_;
  SteadyClock::time_point start_;
  SteadyClock::time_point window_start_;
  std::atomic<int64_t> counted_{0};
  absl::Notification enough_;
  std::atomic<bool> stopped_{false};
  absl::Mutex stop_mu_;
  SteadyClock::time_point stop_time_;  // written once under stop_mu_ before stopped_ is set
};

// ---------------------------------------------------------------------------------------------------
// Report.

const json* FindRow(const json& rows, const std::string& method, const std::string& batching, int clients) {
  for (const json& row : rows) {
    if (row["method"] == method && row["batching"] == batching && row["clients"] == clients) return &row;
  }
  return nullptr;
}

// Evaluates the targets into results["targets"]; true when every one that could be evaluated passed.
bool Targets(const Options& o, json& results) {
  const json& rows = results["rows"];
  const double library_p99 = results["library"]["p99_seconds"];
  json targets = json::array();
  bool all = true;
  for (const std::string& method : o.methods) {
    const json* on = FindRow(rows, method, "on", 32);
    const json* off = FindRow(rows, method, "off", 32);
    if (on != nullptr && off != nullptr) {
      const double off_rps = (*off)["requests_per_second"];
      const double ratio = off_rps > 0 ? (*on)["requests_per_second"].get<double>() / off_rps : 0;
      const bool pass = ratio >= 5.0;
      all = all && pass;
      targets.push_back({{"name", absl::StrCat(method, " requests/s at 32 clients, batching / no batching")},
                         {"value", ratio},
                         {"target", ">= 5"},
                         {"pass", pass}});
    }
    for (const std::string batching : {"on", "off"}) {
      const json* one = FindRow(rows, method, batching, 1);
      if (one == nullptr || library_p99 <= 0) continue;
      const double ratio = (*one)["p99_seconds"].get<double>() / library_p99;
      const bool pass = ratio <= 1.2;
      // The target is the deployed configuration's (batching on); without batching it is shown for comparison.
      const bool counts = batching == std::string("on");
      if (counts) all = all && pass;
      targets.push_back({{"name", absl::StrCat(method, " p99 at 1 client (batching ", batching, ") / library p99")},
                         {"value", ratio},
                         {"target", counts ? "<= 1.2" : "<= 1.2 (information)"},
                         {"pass", pass}});
    }
  }
  results["targets"] = targets;
  return all;
}

void PrintRows(const json& rows) {
  std::printf("%-9s %-8s %7s %9s %10s %9s %9s %9s %9s %8s %7s %7s %6s %6s\n", "method", "batching", "clients",
              "req/s", "tokens/s", "p50 ms", "p99 ms", "N/X ms", "ttft p50", "out tok", "errors", "cut off", "cpu",
              "other");
  for (const json& r : rows) {
    const std::string ttft =
        r.contains("first_chunk_p50_seconds") ? absl::StrFormat("%.1f", 1e3 * r["first_chunk_p50_seconds"].get<double>()) : "-";
    std::printf("%-9s %-8s %7d %9.2f %10.1f %9.1f %9.1f %9.1f %9s %8.1f %7lld %7lld %6.2f %6.2f\n",
                r["method"].get<std::string>().c_str(), r["batching"].get<std::string>().c_str(),
                r["clients"].get<int>(), r["requests_per_second"].get<double>(), r["tokens_per_second"].get<double>(),
                1e3 * r["p50_seconds"].get<double>(), 1e3 * r["p99_seconds"].get<double>(),
                1e3 * r["steady_mean_seconds"].get<double>(), ttft.c_str(),
                r["mean_output_tokens"].get<double>(), static_cast<long long>(r["errors"].get<int64_t>()),
                static_cast<long long>(r["cut_off"].get<int64_t>()), r["cpu_cores"].get<double>(),
                r["other_cores"].get<double>());
    if (r.contains("first_error")) std::printf("          first error: %s\n", r["first_error"].get<std::string>().c_str());
  }
}

absl::StatusOr<json> Run(Options o) {
  std::vector<int> client_counts;
  for (const std::string& c : o.clients) {
    int n = 0;
    if (!absl::SimpleAtoi(c, &n) || n < 1) return absl::InvalidArgumentError(absl::StrCat("--clients: bad count \"", c, "\""));
    client_counts.push_back(n);
  }
  for (const std::string& m : o.methods) {
    if (m != "Predict" && m != "Generate") {
      return absl::InvalidArgumentError(absl::StrCat("--methods: \"", m, "\" is not Predict or Generate"));
    }
  }
  const int most_clients = client_counts.empty() ? 1 : *std::max_element(client_counts.begin(), client_counts.end());
  if (o.max_queue <= 0) o.max_queue = std::max(256, most_clients);

  std::unique_ptr<testing::TempDir> temp;
  std::string work_dir = o.work_dir;
  if (work_dir.empty()) {
    temp = std::make_unique<testing::TempDir>("distill-bench-inference");
    work_dir = temp->path();
    if (work_dir.empty()) return absl::InternalError("cannot create a temporary directory");
  }
  std::filesystem::create_directories(work_dir);

  json results;
  const auto begin = SteadyClock::now();
  std::printf("creating a random %s student and measuring the library baseline...\n", o.shape.c_str());
  std::fflush(stdout);
  ASSIGN_OR_RETURN(BenchModel model, PrepareModel(o, work_dir + "/model"));
  results["model"] = {{"shape", o.shape},
                      {"parameters", model.parameters},
                      {"vocab_rows", model.vocab_rows},
                      {"tokenizer_pieces", model.tokenizer_pieces},
                      {"input", model.input},
                      {"input_tokens", model.input_ids.size()},
                      {"max_new_tokens", o.max_new_tokens}};
  results["library"] = model.library;
  std::printf(
      "model: %s, %lld parameters; input %zu tokens; library Generate (batch 1, greedy, %d of %d tokens): p50 %.1f "
      "ms, p99 %.1f ms over %d runs (other processes: %.2f cores)\n",
      o.shape.c_str(), static_cast<long long>(model.parameters), model.input_ids.size(), model.library_output_tokens,
      o.max_new_tokens, 1e3 * model.library["p50_seconds"].get<double>(),
      1e3 * model.library["p99_seconds"].get<double>(), o.library_reps,
      model.library["other_cores"].get<double>());
  std::fflush(stdout);

  const std::vector<ServerSettings> servers = {
      {"on", o.max_batch, o.max_wait, o.max_queue},
      {"off", 1, absl::ZeroDuration(), o.max_queue},
  };
  results["rows"] = json::array();
  for (const ServerSettings& settings : servers) {
    ASSIGN_OR_RETURN(std::unique_ptr<BenchServer> server, BenchServer::Start(settings, o, model.dir, work_dir));
    results["servers"][settings.label] = {{"max_batch", settings.max_batch},
                                          {"max_wait_seconds", absl::ToDoubleSeconds(settings.max_wait)},
                                          {"max_queue", settings.max_queue}};
    for (const std::string& method : o.methods) {
      for (int clients : client_counts) {
        ASSIGN_OR_RETURN(json row, MeasureQuietly(o, [&]() -> absl::StatusOr<json> {
          LoadRun run(o, model, method, clients);
          json r = run.Run(*server);
          // Let cancelled requests leave the engine before the next run starts.
          absl::SleepFor(absl::Milliseconds(300));
          return r;
        }));
        row["method"] = method;
        row["batching"] = settings.label;
        std::printf(
            "  %-8s batching %-3s %3d clients: %8.2f req/s, p50 %8.1f ms, p99 %8.1f ms, %lld errors (other "
            "processes: %.2f cores)\n",
            method.c_str(), settings.label.c_str(), clients, row["requests_per_second"].get<double>(),
            1e3 * row["p50_seconds"].get<double>(), 1e3 * row["p99_seconds"].get<double>(),
            static_cast<long long>(row["errors"].get<int64_t>()), row["other_cores"].get<double>());
        std::fflush(stdout);
        results["rows"].push_back(row);
      }
    }
  }

  results["machine"] = {
      {"cpu", CpuModel()},
      {"cpus", std::thread::hardware_concurrency()},
      {"torch_threads", at::get_num_threads()},
      {"grpc", grpc::Version()},
      {"channels", o.channels},
      {"note", "server and clients share this process and its cores and libtorch's intra-op pool"}};
  results["settings"] = {{"seconds", o.seconds},
                         {"warmup_seconds", o.warmup},
                         {"max_requests", o.max_requests},
                         {"clients", client_counts},
                         {"methods", o.methods},
                         {"wait_idle_seconds", o.wait_idle},
                         {"retries", o.retries}};
  results["all_targets_met"] = Targets(o, results);
  results["total_seconds"] = SecondsSince(begin);
  return results;
}

void Print(const json& results) {
  const json& m = results["machine"];
  std::printf("\ndistill-bench-inference: %s, %d CPUs, torch %d threads, gRPC %s\n",
              m["cpu"].get<std::string>().c_str(), m["cpus"].get<int>(), m["torch_threads"].get<int>(),
              m["grpc"].get<std::string>().c_str());
  PrintRows(results["rows"]);
  std::printf("\n");
  for (const json& t : results["targets"]) {
    std::printf("%-62s %7.2fx  %-22s %s\n", t["name"].get<std::string>().c_str(), t["value"].get<double>(),
                t["target"].get<std::string>().c_str(), t["pass"].get<bool>() ? "PASS" : "FAIL");
  }
  std::printf("all targets met: %s (%.0f s)\n", results["all_targets_met"].get<bool>() ? "yes" : "no",
              results["total_seconds"].get<double>());
}

}  // namespace
}  // namespace distill::bench

int main(int argc, char** argv) {
  using namespace distill;
  bench::Options o;
  bool quick = false;
  cli::FlagSet flags("distill-bench-inference [--quick] [--shape small|tiny] [--clients 1,8,32,128] [--out results.json]");
  flags.Bool("quick", &quick, "a smoke run in under 30 s: tiny shape, clients 1 and 8, 1 s windows, 10 library runs");
  flags.String("shape", &o.shape, "student preset: small (t5-v1_1-small) or tiny");
  flags.StringList("clients", &o.clients, "concurrent closed-loop clients per configuration");
  flags.StringList("methods", &o.methods, "Predict, Generate");
  flags.Double("seconds", &o.seconds, "measured window per configuration, seconds");
  flags.Double("warmup", &o.warmup, "load before the window, not counted, seconds");
  flags.Int("max_requests", &o.max_requests, "completions that end a window early (0: no limit)");
  flags.Int("max_new_tokens", &o.max_new_tokens, "tokens every request asks for (greedy)");
  flags.Int("max_batch", &o.max_batch, "the batching server's max_batch");
  flags.Duration("max_wait", &o.max_wait, "the batching server's max_wait");
  flags.Int("max_queue", &o.max_queue, "both servers' max_queue (0: max(256, the most clients))");
  flags.Int("channels", &o.channels, "gRPC channels (TCP connections) the clients share");
  flags.Int("library_reps", &o.library_reps, "timed library Generate runs");
  flags.Int("seed", &o.seed, "model initialisation seed");
  flags.Double("wait_idle", &o.wait_idle,
               "before each measurement, wait up to this many seconds for other processes to go quiet");
  flags.Int("retries", &o.retries,
            "repeat a measurement at most this often while other processes used >= 0.25 core during it");
  flags.String("work_dir", &o.work_dir, "where the model and configs go (default: a temporary directory)");
  flags.String("out", &o.out, "write every result as JSON here");
  auto parsed = flags.Parse(cli::Args(argc, argv));
  if (!parsed.ok() || flags.help_requested()) {
    std::cerr << (parsed.ok() ? "" : std::string(parsed.status().message()) + "\n") << flags.Usage();
    return parsed.ok() ? 0 : 2;
  }
  if (quick) {
    if (!flags.IsSet("shape")) o.shape = "tiny";
    if (!flags.IsSet("clients")) o.clients = {"1", "8"};
    if (!flags.IsSet("seconds")) o.seconds = 1;
    if (!flags.IsSet("warmup")) o.warmup = 0.3;
    if (!flags.IsSet("library_reps")) o.library_reps = 10;
  }
  logging::Options log;
  log.level = logging::Level::kWarning;
  logging::ConfigureDefault(log);
  try {
    absl::StatusOr<nlohmann::json> results = bench::Run(o);
    if (!results.ok()) {
      std::cerr << "distill-bench-inference: " << results.status() << "\n";
      return 1;
    }
    bench::Print(*results);
    if (!o.out.empty()) {
      std::ofstream file(o.out);
      file << results->dump(2) << "\n";
      if (!file) {
        std::cerr << "cannot write " << o.out << "\n";
        return 1;
      }
    }
    return 0;
  } catch (const c10::Error& e) {
    std::cerr << "libtorch: " << e.what_without_backtrace() << "\n";
    return 1;
  }
}
