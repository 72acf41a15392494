// GPU checks (CTest label "gpu"). Each test is skipped, saying why, on a host without a CUDA GPU, which is
// every development and CI machine here; scripts/gpu-check.sh runs them on a lent GPU machine.
//   - greedy Generate on the GPU gives the CPU's tokens;
//   - training on one GPU follows the CPU run step by step (float32 within 1e-3 relative; bfloat16
//     autocast within 3e-2);
//   - continuous batching on the GPU gives each request what Generate gives it alone on the CPU;
//   - NCCL all-reduce across two ranks (two GPUs needed).

#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ATen/Context.h"
#include "absl/time/time.h"
#include "common/student/runtime/autocast.h"
#include "common/student/runtime/device.h"
#include "common/student/student.h"
#include "gtest/gtest.h"
#include "services/inference/serving/engine.h"
#include "services/trainer/training/collective.h"
#include "tests/support/ports.h"
#include "torch/torch.h"

namespace distill {
namespace {

constexpr double kFloat32StepTolerance = 1e-3;
constexpr double kBfloat16StepTolerance = 3e-2;

#define SKIP_WITHOUT_GPUS(n)                                                                   \
  do {                                                                                         \
    const int gpus = student::CudaDeviceCount();                                               \
    if (gpus < (n)) GTEST_SKIP() << "needs " << (n) << " CUDA GPU(s); this host has " << gpus; \
  } while (0)

student::Student TinyStudent(bool wide_weights) {
  auto tokenizer = student::BuiltinTokenizer(200);
  EXPECT_TRUE(tokenizer.ok());
  student::T5Config config = student::TinyT5Config();
  config.dropout_rate = 0;
  auto s = student::InitStudent(config, std::shared_ptr<const student::Tokenizer>(std::move(*tokenizer)), 7,
                                /*fit_vocab=*/true);
  EXPECT_TRUE(s.ok()) << s.status();
  if (wide_weights) {
    torch::NoGradGuard no_grad;
    torch::manual_seed(11);
    for (torch::Tensor& p : s->model->module().parameters()) p.normal_(0.0, 0.5);
  }
  s->model->module().eval();
  return *s;
}

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Exact float32 products on the GPU, so the comparison with the CPU measures our code, not TF32.
    at::globalContext().setAllowTF32CuBLAS(false);
  }
};

TEST_F(GpuTest, GreedyGenerateOnTheGpuEqualsTheCpu) {
  SKIP_WITHOUT_GPUS(1);
  student::Student s = TinyStudent(/*wide_weights=*/true);
  torch::manual_seed(3);
  torch::Tensor ids = torch::randint(3, s.model->vocab_size(), {4, 12}, torch::kInt64);
  torch::Tensor mask = torch::ones_like(ids);
  mask[2].narrow(0, 7, 5).fill_(0);
  student::GenerationOptions options = s.model->DefaultGenerationOptions();
  options.max_new_tokens = 16;
  auto on_cpu = s.model->Generate(ids, mask, options);
  ASSERT_TRUE(on_cpu.ok()) << on_cpu.status();
  s.model->module().to(torch::Device(torch::kCUDA, 0));
  auto on_gpu = s.model->Generate(ids.cuda(), mask.cuda(), options);
  ASSERT_TRUE(on_gpu.ok()) << on_gpu.status();
  EXPECT_EQ(*on_gpu, *on_cpu);
  options.num_beams = 3;
  auto beams_gpu = s.model->Generate(ids.cuda(), mask.cuda(), options);
  ASSERT_TRUE(beams_gpu.ok()) << beams_gpu.status();
  s.model->module().to(torch::kCPU);
  auto beams_cpu = s.model->Generate(ids, mask, options);
  ASSERT_TRUE(beams_cpu.ok());
  EXPECT_EQ(*beams_gpu, *beams_cpu);
}

// `steps` AdamW steps on fixed random batches; the loss before each step.
std::vector<double> TrainLosses(const torch::Device& device, bool autocast, int steps) {
  student::Student s = TinyStudent(/*wide_weights=*/false);
  s.model->module().to(device);
  s.model->module().train();
  torch::optim::AdamW optimizer(s.model->module().parameters(), torch::optim::AdamWOptions(1e-3));
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    torch::manual_seed(100 + step);
    torch::Tensor ids = torch::randint(3, s.model->vocab_size(), {8, 24}, torch::kInt64).to(device);
    torch::Tensor labels = torch::randint(3, s.model->vocab_size(), {8, 12}, torch::kInt64).to(device);
    optimizer.zero_grad();
    torch::Tensor loss;
    {
      std::unique_ptr<student::CudaAutocastScope> scope;
      if (autocast) scope = std::make_unique<student::CudaAutocastScope>(device);
      loss = student::T5Model::Loss(s.model->TargetLogits(ids, torch::ones_like(ids), labels), labels);
    }
    loss.backward();
    optimizer.step();
    losses.push_back(loss.item<double>());
  }
  return losses;
}

TEST_F(GpuTest, TrainingOnOneGpuFollowsTheCpuRun) {
  SKIP_WITHOUT_GPUS(1);
  constexpr int kSteps = 30;
  const std::vector<double> cpu = TrainLosses(torch::kCPU, false, kSteps);
  const std::vector<double> gpu = TrainLosses(torch::Device(torch::kCUDA, 0), false, kSteps);
  const std::vector<double> bf16 = TrainLosses(torch::Device(torch::kCUDA, 0), true, kSteps);
  ASSERT_EQ(gpu.size(), cpu.size());
  for (int i = 0; i < kSteps; ++i) {
    EXPECT_NEAR(gpu[i], cpu[i], kFloat32StepTolerance * cpu[i]) << "float32 step " << i;
    EXPECT_NEAR(bf16[i], cpu[i], kBfloat16StepTolerance * cpu[i]) << "bfloat16 autocast step " << i;
  }
  EXPECT_LT(gpu.back(), gpu.front()) << "the loss falls";
}

TEST_F(GpuTest, ContinuousBatchingOnTheGpuGivesWhatEachRequestGetsAlone) {
  SKIP_WITHOUT_GPUS(1);
  student::Student s = TinyStudent(/*wide_weights=*/true);
  const std::vector<std::string> texts = {"what is 2 plus 3", "the cat sat on the mat", "7 times 8",
                                          "a much longer question about apples and oranges", "hi"};
  std::vector<std::vector<int>> alone;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int> ids = s.tokenizer->Encode(texts[i]);
    torch::Tensor t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0);
    student::GenerationOptions o = s.model->DefaultGenerationOptions();
    o.max_new_tokens = 5 + 4 * static_cast<int>(i);
    auto out = s.model->Generate(t, torch::ones_like(t), o);
    ASSERT_TRUE(out.ok());
    std::vector<int> tokens = (*out)[0];
    if (!tokens.empty() && tokens.back() == o.eos_id) tokens.pop_back();
    alone.push_back(tokens);
  }
  s.model->module().to(torch::Device(torch::kCUDA, 0));
  inference::EngineOptions engine_options;
  engine_options.max_batch = 3;
  inference::Engine engine(s, engine_options);
  std::vector<std::shared_ptr<inference::Request>> requests;
  for (size_t i = 0; i < texts.size(); ++i) {
    student::GenerationOptions o = s.model->DefaultGenerationOptions();
    o.max_new_tokens = 5 + 4 * static_cast<int>(i);
    auto r = std::make_shared<inference::Request>(
        std::vector<std::vector<int>>{s.tokenizer->Encode(texts[i])}, o, absl::InfiniteFuture(), false);
    ASSERT_TRUE(engine.Submit(r).ok());
    requests.push_back(r);
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    for (;;) {
      std::optional<inference::Request::Event> e = requests[i]->NextEvent(absl::Seconds(60));
      ASSERT_TRUE(e.has_value()) << "request " << i << " made no progress in 60 s";
      if (e->kind == inference::Request::Event::Kind::kDone) break;
    }
    ASSERT_TRUE(requests[i]->status().ok()) << requests[i]->status();
    EXPECT_EQ(requests[i]->outputs()[0], alone[i]) << "request " << i;
  }
}

TEST_F(GpuTest, NcclAllReduceAcrossTwoRanks) {
  SKIP_WITHOUT_GPUS(2);
  const int port = testing::FreeLoopbackPort();
  std::vector<double> sums(2, 0);
  std::vector<absl::Status> statuses(2);
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.emplace_back([&, rank] {
      trainer::RendezvousOptions options;
      options.master_port = port;
      options.rank = rank;
      options.world_size = 2;
      options.nccl = true;
      options.timeout = std::chrono::seconds(60);
      auto collective = trainer::Rendezvous(options);
      if (!collective.ok()) {
        statuses[rank] = collective.status();
        return;
      }
      std::vector<torch::Tensor> tensors = {
          torch::full({1024}, rank + 1.0f, torch::TensorOptions().device(torch::kCUDA, rank))};
      statuses[rank] = (*collective)->AllReduceSum(tensors);
      sums[rank] = tensors[0].sum().item<double>();
    });
  }
  for (std::thread& t : ranks) t.join();
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_TRUE(statuses[rank].ok()) << "rank " << rank << ": " << statuses[rank];
    EXPECT_EQ(sums[rank], 3.0 * 1024) << "rank " << rank;
  }
}

}  // namespace
}  // namespace distill
