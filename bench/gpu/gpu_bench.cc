// Student throughput on one CUDA GPU, for scripts/gpu-check.sh: the t5-v1_1-small shape (SmallT5Config),
// training steps (AdamW, batch 8 x source 64 + target 32 random ids, float32 and bfloat16 autocast with
// float32 master weights) and greedy generation (batch 1 and 16, source 64, --gen_tokens new tokens, KV
// cache), in tokens/s, with the peak GPU memory of each. Prints a table and, with --out, JSON. Without a
// GPU it says so and exits 0.
//
//   distill-bench-gpu [--train_steps 20] [--gen_tokens 64] [--out results.json]

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "ATen/Context.h"
#include "c10/cuda/CUDACachingAllocator.h"
#include "common/cli/flags.h"
#include "common/student/runtime/autocast.h"
#include "common/student/runtime/device.h"
#include "common/student/student.h"
#include "nlohmann/json.hpp"
#include "torch/cuda.h"
#include "torch/torch.h"

namespace distill::student {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  int train_steps = 20;
  int train_warmup = 3;
  int gen_tokens = 64;
  std::string out;
};

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

void ResetPeak() { c10::cuda::CUDACachingAllocator::resetPeakStats(0); }
double PeakMiB() {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
  return static_cast<double>(stats.allocated_bytes[0].peak) / (1 << 20);
}

std::shared_ptr<StudentModel> SmallModel(const torch::Device& device) {
  T5Config config = SmallT5Config();
  config.dropout_rate = 0.1;
  auto model = T5Model::Create(config);
  if (!model.ok()) {
    std::cerr << model.status() << "\n";
    std::exit(1);
  }
  auto student = std::make_shared<T5Student>(*model);
  student->module().to(device);
  return student;
}

json Train(const Options& o, bool bf16) {
  const torch::Device device(torch::kCUDA, 0);
  std::shared_ptr<StudentModel> model = SmallModel(device);
  model->module().train();
  torch::optim::AdamW optimizer(model->module().parameters(), torch::optim::AdamWOptions(1e-4));
  torch::manual_seed(0);
  torch::Tensor ids = torch::randint(3, 32000, {8, 64}, torch::kInt64).to(device);
  torch::Tensor labels = torch::randint(3, 32000, {8, 32}, torch::kInt64).to(device);
  torch::Tensor mask = torch::ones_like(ids);
  auto step = [&] {
    optimizer.zero_grad();
    torch::Tensor loss;
    {
      std::unique_ptr<CudaAutocastScope> scope;
      if (bf16) scope = std::make_unique<CudaAutocastScope>(device);
      loss = T5Model::Loss(model->TargetLogits(ids, mask, labels), labels);
    }
    loss.backward();
    optimizer.step();
    return loss;
  };
  for (int i = 0; i < o.train_warmup; ++i) step();
  torch::cuda::synchronize();
  ResetPeak();
  const Clock::time_point start = Clock::now();
  torch::Tensor last;
  for (int i = 0; i < o.train_steps; ++i) last = step();
  const double loss = last.item<double>();  // synchronises
  const double seconds = Seconds(start);
  return {{"measure", bf16 ? "train bf16 autocast" : "train fp32"},
          {"tokens_per_second", o.train_steps * 8.0 * (64 + 32) / seconds},
          {"peak_gpu_mib", PeakMiB()},
          {"last_loss", loss}};
}

json Generate(const Options& o, int batch) {
  const torch::Device device(torch::kCUDA, 0);
  std::shared_ptr<StudentModel> model = SmallModel(device);
  model->module().eval();
  torch::manual_seed(1);
  torch::Tensor ids = torch::randint(3, 32000, {batch, 64}, torch::kInt64).to(device);
  GenerationOptions options = model->DefaultGenerationOptions();
  options.max_new_tokens = o.gen_tokens;
  options.eos_id = -1;                                         // every sequence runs the full length
  (void)model->Generate(ids, torch::ones_like(ids), options);  // warm-up
  torch::cuda::synchronize();
  ResetPeak();
  const Clock::time_point start = Clock::now();
  auto out = model->Generate(ids, torch::ones_like(ids), options);
  torch::cuda::synchronize();
  const double seconds = Seconds(start);
  if (!out.ok()) {
    std::cerr << out.status() << "\n";
    std::exit(1);
  }
  return {{"measure", "generate greedy b" + std::to_string(batch)},
          {"tokens_per_second", batch * static_cast<double>(o.gen_tokens) / seconds},
          {"peak_gpu_mib", PeakMiB()}};
}

int Run(const Options& o) {
  if (CudaDeviceCount() == 0) {
    std::printf("distill-bench-gpu: no CUDA GPU visible; nothing measured\n");
    return 0;
  }
  at::globalContext().setAllowTF32CuBLAS(true);  // what training on a GPU would use
  json rows = json::array();
  rows.push_back(Train(o, false));
  rows.push_back(Train(o, true));
  rows.push_back(Generate(o, 1));
  rows.push_back(Generate(o, 16));
  std::printf("distill-bench-gpu: %s, torch %s, t5-v1_1-small shape\n",
              torch::cuda::device_count() > 0 ? "CUDA" : "-", TORCH_VERSION);
  std::printf("%-24s %14s %14s\n", "measure", "tokens/s", "peak GPU MiB");
  for (const json& r : rows) {
    std::printf("%-24s %14.1f %14.1f\n", r["measure"].get<std::string>().c_str(),
                r["tokens_per_second"].get<double>(), r["peak_gpu_mib"].get<double>());
  }
  if (!o.out.empty()) std::ofstream(o.out) << json{{"rows", rows}}.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace distill::student

int main(int argc, char** argv) {
  distill::student::Options o;
  distill::cli::FlagSet flags("distill-bench-gpu [flags]");
  flags.Int("train_steps", &o.train_steps, "timed training steps");
  flags.Int("train_warmup", &o.train_warmup, "untimed training steps first");
  flags.Int("gen_tokens", &o.gen_tokens, "new tokens per generated sequence");
  flags.String("out", &o.out, "write the results as JSON here");
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
  return distill::student::Run(o);
}
