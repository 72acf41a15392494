// Whether the CPU speed tricks made for an earlier libtorch still pay on the one the build links (the
// torch wheel: MKL on OpenMP). Each is measured against what libtorch does without it, in this run:
//   few-rows   FewRowsLinear (the decoding step's x · wᵀ for <= 64 rows) against what T5's Linear would
//              call without it (torch::mv for one row, else torch::matmul), on the
//              shapes of t5-v1_1-small's decoder projections and lm_head;
//   denormal   a 512 x 512 float32 product of denormal inputs with flush-to-zero off and on, of normal
//              inputs (what flushing costs when nothing is denormal), and elementwise ops on denormals;
//   malloc     t5-v1_1-small training steps (AdamW, batch 8 x 64 + 32) in a child process with glibc's
//              default malloc and in one with ConfigureTrainingProcess's tuning (no mmap, no trim).
// Best of --reps repetitions everywhere; the machine is shared, so compare within one run only.
//
//   distill-bench-cpu-tricks [--threads N] [--reps 5] [--train_steps 6] [--skip_train]

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "ATen/Context.h"
#include "ATen/Parallel.h"
#include "common/cli/flags.h"
#include "common/student/model/few_rows_linear.h"
#include "common/student/model/student_model.h"
#include "common/student/optim/fused_adamw.h"
#include "common/student/runtime/training_process.h"
#include "torch/torch.h"

namespace distill::student {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

template <typename F>
double BestSeconds(int reps, int calls, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const Clock::time_point start = Clock::now();
    for (int c = 0; c < calls; ++c) f();
    best = std::min(best, Seconds(start) / calls);
  }
  return best;
}

void FewRows(int reps) {
  torch::NoGradGuard no_grad;
  std::printf(
      "few-rows: FewRowsLinear vs libtorch (torch::mv for one row, else torch::matmul(x, w.t())), %d threads "
      "(microseconds per product)\n",
      at::get_num_threads());
  std::printf("  %-22s %12s %12s %8s\n", "m x k x n", "libtorch", "FewRows", "speedup");
  struct Shape {
    int64_t m, k, n;
  };
  for (const Shape s : {Shape{1, 512, 1024}, Shape{16, 512, 1024}, Shape{64, 512, 1024}, Shape{1, 512, 384},
                        Shape{16, 1024, 512}, Shape{1, 512, 32128}, Shape{16, 512, 32128}}) {
    torch::Tensor x = torch::randn({s.m, s.k});
    torch::Tensor w = torch::randn({s.n, s.k}) * 0.05;
    const int calls = s.n > 10000 ? 20 : 200;
    if (!FewRowsLinear(x, w).has_value()) {
      std::printf("  %-22s FewRowsLinear declines here (no AVX-512F?)\n", "");
      return;
    }
    // One row: what T5's Linear falls back to without the kernel is gemv (torch::mv).
    const double matmul = s.m == 1 ? BestSeconds(reps, calls, [&] { torch::mv(w, x.reshape({-1})); })
                                   : BestSeconds(reps, calls, [&] { torch::matmul(x, w.t()); });
    const double few = BestSeconds(reps, calls, [&] { FewRowsLinear(x, w); });
    char name[64];
    std::snprintf(name, sizeof(name), "%lld x %lld x %lld", static_cast<long long>(s.m),
                  static_cast<long long>(s.k), static_cast<long long>(s.n));
    std::printf("  %-22s %12.1f %12.1f %7.2fx\n", name, matmul * 1e6, few * 1e6, matmul / few);
  }
}

void Denormals(int reps) {
  std::printf("denormal: 512 x 512 x 512 float32 product (milliseconds)\n");
  torch::Tensor normal = torch::randn({512, 512});
  torch::Tensor tiny = torch::rand({512, 512}) * 1e-39f;  // below float's smallest normal
  for (const bool flush : {false, true}) {
    at::globalContext().setFlushDenormal(flush);
    const double denormal_ms = BestSeconds(reps, 5, [&] { torch::mm(tiny, tiny.t() + tiny); }) * 1e3;
    const double normal_ms = BestSeconds(reps, 5, [&] { torch::mm(normal, normal); }) * 1e3;
    // Elementwise work on denormals (a GELU-like chain over 4M values), which no BLAS handles for us.
    torch::Tensor big_tiny = torch::rand({4 << 20}) * 1e-39f;
    const double elementwise_ms =
        BestSeconds(reps, 3, [&] { torch::tanh(big_tiny * 0.5f + big_tiny * big_tiny * big_tiny); }) * 1e3;
    std::printf(
        "  flush-to-zero %-3s  denormal inputs %8.2f   normal inputs %8.2f   elementwise on denormals "
        "%8.2f\n",
        flush ? "on" : "off", denormal_ms, normal_ms, elementwise_ms);
  }
}

// The child's side of the malloc comparison: tokens/s of small-shape training steps.
int TrainChild(bool tuned, int threads, int steps) {
  if (tuned) {
    ConfigureTrainingProcess(threads);
  } else {
    at::globalContext().setFlushDenormal(true);
    at::set_num_threads(threads);
  }
  T5Config config = SmallT5Config();
  auto t5 = T5Model::Create(config);
  if (!t5.ok()) return 1;
  T5Student model(*t5);
  model.module().train();
  FusedAdamW optimizer(model.module().parameters(), torch::optim::AdamWOptions(1e-4));
  torch::manual_seed(0);
  torch::Tensor ids = torch::randint(3, config.vocab_size, {8, 64}, torch::kInt64);
  torch::Tensor labels = torch::randint(3, config.vocab_size, {8, 32}, torch::kInt64);
  torch::Tensor mask = torch::ones_like(ids);
  auto step = [&] {
    optimizer.ZeroGrad();
    torch::Tensor loss = T5Model::Loss(model.TargetLogits(ids, mask, labels), labels);
    loss.backward();
    optimizer.step();
  };
  step();
  step();
  double best = 1e30;
  for (int i = 0; i < steps; ++i) {
    const Clock::time_point start = Clock::now();
    step();
    best = std::min(best, Seconds(start));
  }
  std::printf("  malloc %-8s %8.1f tokens/s (best step %.3f s)\n", tuned ? "tuned" : "default",
              8 * (64 + 32) / best, best);
  return 0;
}

int Malloc(const char* self, int threads, int steps) {
  std::printf("malloc: t5-v1_1-small training, batch 8 x 64 + 32, %d threads, best of %d steps\n", threads,
              steps);
  int failed = 0;
  for (const char* mode : {"default", "tuned", "default", "tuned"}) {
    std::fflush(stdout);
    const std::string command = std::string("'") + self + "' --child_malloc " + mode + " --threads " +
                                std::to_string(threads) + " --train_steps " + std::to_string(steps);
    failed += std::system(command.c_str()) != 0;
  }
  return failed;
}

}  // namespace
}  // namespace distill::student

int main(int argc, char** argv) {
  int threads = 0, reps = 5, train_steps = 6;
  bool skip_train = false;
  std::string child_malloc;
  distill::cli::FlagSet flags("distill-bench-cpu-tricks [flags]");
  flags.Int("threads", &threads, "intra-op threads (0: libtorch's default here)");
  flags.Int("reps", &reps, "repetitions; the best counts");
  flags.Int("train_steps", &train_steps, "timed training steps per child");
  flags.Bool("skip_train", &skip_train, "skip the malloc comparison (two training children)");
  flags.String("child_malloc", &child_malloc, "internal: run one training child (default | tuned)");
  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(distill::cli::Args(argc, argv));
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (!positional.ok() || !positional->empty()) {
    std::cerr << (positional.ok() ? "unexpected argument \"" + positional->front() + "\""
                                  : std::string(positional.status().message()))
              << "\n\n"
              << flags.Usage();
    return 2;
  }
  if (threads <= 0) threads = at::get_num_threads();
  if (!child_malloc.empty())
    return distill::student::TrainChild(child_malloc == "tuned", threads, train_steps);
  at::set_num_threads(threads);
  distill::student::FewRows(reps);
  distill::student::Denormals(reps);
  if (skip_train) return 0;
  return distill::student::Malloc(argv[0], threads, train_steps);
}
