// Data-parallel training throughput (issue 6): the trainer worker (services/trainer/training) run as real
// processes, 1 and 2 ranks over Gloo on loopback, tiny and small (t5-v1_1-small) shapes.
//
//   distill-bench-trainer [--shapes tiny,small] [--ranks 1,2] [--steps 12] [--warmup 3] [--batch_size 8]
//                         [--threads 1] [--records 512] [--repeats 1] [--out results.json]
//
// Each configuration trains the preset from scratch (tokenizer trained on the data, vocabulary 8000 at most)
// on synthetic step-by-step records (arithmetic word problems with rationales, ~40 source and ~20 target
// tokens per task), --batch_size records per rank per step, so the global batch grows with the ranks (weak
// scaling: each rank does the same work). Every rank gets --threads intra-op threads (MKL shares them). The
// worker reports every step; the first --warmup steps are dropped and the rest averaged:
//   tokens/s      non-padding source + target tokens of the global batch per second of step time;
//   step          wall time of one optimizer step on rank 0, split into data, forward, backward,
//                 all-reduce (gradients and loss counters, including waiting for the slower rank) and
//                 optimizer (clipping and AdamW);
//   efficiency    tokens/s with N ranks / (N × tokens/s with 1 rank).
// Nothing here asserts timings. `distill-bench-trainer trainer-worker ...` is the worker itself.

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/cli/flags.h"
#include "common/dataset/example_json.h"
#include "distill/v1/curator.pb.h"
#include "distill/v1/trainer.pb.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "services/trainer/training/worker.h"
#include "services/trainer/training/worker_protocol.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace distill::bench {
namespace {

using nlohmann::json;

struct Options {
  std::vector<std::string> shapes = {"tiny", "small"};
  std::vector<std::string> ranks = {"1", "2"};
  int steps = 12;
  int warmup = 3;
  int batch_size = 8;
  int threads = 1;
  int records = 512;
  int repeats = 1;
  std::string out;
};

struct Result {
  std::string shape;
  int ranks = 0;
  int steps = 0;
  double tokens_per_second = 0;
  double samples_per_second = 0;
  double step_seconds = 0;
  double data = 0, forward = 0, backward = 0, all_reduce = 0, optimizer = 0;
  double loss_first = 0, loss_last = 0;
};

// A loopback TCP port that was free a moment ago, for the ranks' store.
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Synthetic step-by-step records: two-step arithmetic word problems with a rationale.
void WriteRecords(const std::string& path, int n) {
  static constexpr const char* kNames[] = {"Mary", "John", "the baker", "a farmer",
                                           "Lisa", "Tom",  "the class"};
  static constexpr const char* kThings[] = {"apples", "books", "cookies", "marbles", "tickets", "stamps"};
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    const int a = (i * 37 + 11) % 90 + 10, b = (i * 53 + 7) % 40 + 2, c = (i * 17 + 3) % 9 + 2;
    const char* who = kNames[i % 7];
    const char* what = kThings[(i / 7) % 6];
    v1::TrainingRecord r;
    r.set_example_id("e" + std::to_string(i));
    r.set_input(
        absl::StrFormat("%s has %d %s, buys %d more and then shares them equally among %d friends. How "
                        "many %s does each friend get?",
                        who, a, what, b, c, what));
    r.set_label_target(absl::StrFormat("%g", (a + b) / static_cast<double>(c)));
    r.set_rationale_target(
        absl::StrFormat("%s has %d + %d = %d %s. Shared among %d friends, each gets %d / %d %s.", who, a, b,
                        a + b, what, c, a + b, c, what));
    out << dataset::ProtoToJson(r) << "\n";
  }
}

v1::RunSpec Spec(const std::string& records, const std::string& shape, int ranks, const Options& o) {
  v1::RunSpec spec;
  spec.set_name("bench-" + shape);
  spec.mutable_dataset()->set_uri(records);
  spec.mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
  spec.mutable_student()->set_preset(shape);
  v1::TrainingOptions* t = spec.mutable_training();
  t->set_objective(v1::OBJECTIVE_STEP_BY_STEP);
  v1::Hyperparameters* h = t->mutable_hyperparameters();
  h->set_learning_rate(3e-4);
  h->set_batch_size(o.batch_size);
  h->set_max_steps(o.steps);
  h->set_warmup_steps(2);
  h->set_max_grad_norm(1.0);
  h->set_weight_decay(0.01);
  h->set_log_interval_steps(1);
  h->set_checkpoint_interval_steps(o.steps);
  t->mutable_distributed()->set_world_size(ranks);
  t->mutable_distributed()->set_threads_per_rank(o.threads);
  return spec;
}

absl::StatusOr<Result> RunOne(const std::string& self, const std::string& records, const std::string& shape,
                              int ranks, const Options& o) {
  distill::testing::TempDir dir("trainer_bench");
  const std::string run_dir = dir.File("run");
  std::filesystem::create_directories(run_dir);
  std::ofstream(run_dir + "/spec.json") << dataset::ProtoToJson(Spec(records, shape, ranks, o));
  const int port = FreePort();
  std::vector<std::unique_ptr<distill::testing::Subprocess>> workers;
  for (int rank = 0; rank < ranks; ++rank) {
    absl::StatusOr<std::unique_ptr<distill::testing::Subprocess>> p = distill::testing::Subprocess::Start(
        {self, std::string(trainer::kWorkerCommand), "--run-dir", run_dir, "--rank", std::to_string(rank),
         "--world-size", std::to_string(ranks), "--master-port", std::to_string(port)});
    if (!p.ok()) return p.status();
    workers.push_back(std::move(*p));
  }
  Result r;
  r.shape = shape;
  r.ranks = ranks;
  std::vector<v1::StepProgress> progress;
  for (;;) {
    absl::StatusOr<std::string> line = workers[0]->ReadLine(absl::Minutes(30));
    if (!line.ok()) break;
    v1::WatchRunResponse event;
    if (!google::protobuf::util::JsonStringToMessage(*line, &event).ok()) continue;
    if (event.has_progress()) progress.push_back(event.progress());
  }
  for (auto& w : workers) {
    absl::StatusOr<int> status = w->Wait(absl::Minutes(5));
    if (!status.ok() || *status != 0) {
      return absl::InternalError(absl::StrCat("worker failed: ", w->Stderr()));
    }
  }
  if (static_cast<int>(progress.size()) <= o.warmup) return absl::InternalError("too few steps reported");
  r.loss_first = progress.front().losses(0).loss();
  r.loss_last = progress.back().losses(0).loss();
  double tokens = 0, samples = 0;
  for (size_t i = static_cast<size_t>(o.warmup); i < progress.size(); ++i) {
    const v1::StepProgress& p = progress[i];
    r.step_seconds += p.step_seconds();
    tokens += p.tokens_per_second() * p.step_seconds();
    samples += p.samples_per_second() * p.step_seconds();
    r.data += p.phases().data();
    r.forward += p.phases().forward();
    r.backward += p.phases().backward();
    r.all_reduce += p.phases().all_reduce();
    r.optimizer += p.phases().optimizer();
    ++r.steps;
  }
  r.tokens_per_second = tokens / r.step_seconds;
  r.samples_per_second = samples / r.step_seconds;
  for (double* x : {&r.step_seconds, &r.data, &r.forward, &r.backward, &r.all_reduce, &r.optimizer})
    *x /= r.steps;
  return r;
}

int Main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == trainer::kWorkerCommand) {
    return trainer::RunTrainerWorker(cli::Args(argc, argv, 2));
  }
  Options o;
  cli::FlagSet flags("distill-bench-trainer [flags]");
  flags.StringList("shapes", &o.shapes, "presets to train: tiny, small");
  flags.StringList("ranks", &o.ranks, "world sizes to run");
  flags.Int("steps", &o.steps, "optimizer steps per configuration");
  flags.Int("warmup", &o.warmup, "first steps left out of the averages");
  flags.Int("batch_size", &o.batch_size, "records per rank per step");
  flags.Int("threads", &o.threads, "intra-op threads per rank");
  flags.Int("records", &o.records, "synthetic records in the dataset");
  flags.Int("repeats", &o.repeats,
            "runs per configuration; the fastest is reported (machines shared with builds are noisy)");
  flags.String("out", &o.out, "also write the results here as JSON");
  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(cli::Args(argc, argv));
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (!positional.ok()) {
    std::cerr << positional.status().message() << "\n\n" << flags.Usage();
    return 2;
  }
  const std::string self = std::filesystem::canonical("/proc/self/exe").string();
  distill::testing::TempDir data("trainer_bench_data");
  const std::string records = data.File("records.jsonl");
  WriteRecords(records, o.records);

  std::printf("%-6s %5s %6s %12s %10s %9s %8s %8s %8s %8s %8s %8s %11s\n", "shape", "ranks", "steps",
              "tokens/s", "samples/s", "step ms", "data", "forward", "backward", "allred", "optim", "effic.",
              "loss");
  json results = json::array();
  std::map<std::string, double> single;
  for (const std::string& shape : o.shapes) {
    for (const std::string& ranks_text : o.ranks) {
      const int ranks = std::stoi(ranks_text);
      absl::StatusOr<Result> r;
      for (int repeat = 0; repeat < std::max(1, o.repeats); ++repeat) {
        absl::StatusOr<Result> run = RunOne(self, records, shape, ranks, o);
        if (!run.ok()) {
          std::cerr << shape << " x" << ranks << ": " << run.status().message() << "\n";
          return 1;
        }
        if (!r.ok() || run->tokens_per_second > r->tokens_per_second) r = std::move(run);
      }
      if (ranks == 1) single[shape] = r->tokens_per_second;
      const double efficiency = single.count(shape) ? r->tokens_per_second / (ranks * single[shape]) : 0;
      std::printf("%-6s %5d %6d %12.0f %10.1f %9.1f %8.1f %8.1f %8.1f %8.1f %8.1f %7.0f%% %5.2f→%.2f\n",
                  shape.c_str(), ranks, r->steps, r->tokens_per_second, r->samples_per_second,
                  r->step_seconds * 1e3, r->data * 1e3, r->forward * 1e3, r->backward * 1e3,
                  r->all_reduce * 1e3, r->optimizer * 1e3, efficiency * 100, r->loss_first, r->loss_last);
      std::fflush(stdout);
      results.push_back({{"shape", shape},
                         {"ranks", ranks},
                         {"threads_per_rank", o.threads},
                         {"batch_size_per_rank", o.batch_size},
                         {"steps_averaged", r->steps},
                         {"tokens_per_second", r->tokens_per_second},
                         {"samples_per_second", r->samples_per_second},
                         {"step_seconds", r->step_seconds},
                         {"phases_seconds",
                          {{"data", r->data},
                           {"forward", r->forward},
                           {"backward", r->backward},
                           {"all_reduce", r->all_reduce},
                           {"optimizer", r->optimizer}}},
                         {"scaling_efficiency", efficiency}});
    }
  }
  if (!o.out.empty()) std::ofstream(o.out) << results.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace distill::bench

int main(int argc, char** argv) { return distill::bench::Main(argc, argv); }
