#include "common/student/optim/fused_adamw.h"

#include <memory>
#include <sstream>
#include <vector>

#include "gtest/gtest.h"
#include "torch/optim/adamw.h"
#include "torch/serialize.h"
#include "torch/torch.h"

namespace distill::student {
namespace {

std::vector<torch::Tensor> MakeParams(torch::ScalarType dtype = torch::kFloat32) {
  torch::manual_seed(7);
  return {torch::randn({16, 8}, dtype), torch::randn({8}, dtype), torch::randn({3, 5, 7}, dtype),
          torch::randn({1}, dtype)};
}

std::vector<torch::Tensor> Clone(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& p : params) out.push_back(p.detach().clone());
  return out;
}

// Gives both parameter lists the same pseudo-random gradients for `step`; parameter `skip` gets none.
void SetGrads(std::vector<torch::Tensor>& a, std::vector<torch::Tensor>& b, int step, int skip = -1) {
  torch::manual_seed(100 + step);
  for (size_t i = 0; i < a.size(); ++i) {
    if (static_cast<int>(i) == skip) {
      a[i].mutable_grad() = torch::Tensor();
      b[i].mutable_grad() = torch::Tensor();
      continue;
    }
    torch::Tensor g = torch::randn(a[i].sizes(), a[i].options()) * (0.1 * (step + 1));
    a[i].mutable_grad() = g.clone();
    b[i].mutable_grad() = g.clone();
  }
}

torch::optim::AdamWOptions Options(double weight_decay, bool amsgrad = false) {
  return torch::optim::AdamWOptions(1e-2).betas({0.9, 0.98}).eps(1e-6).weight_decay(weight_decay).amsgrad(
      amsgrad);
}

// Two groups as the trainer builds them: weight decay on matrices, none on vectors.
template <typename Optimizer>
std::unique_ptr<Optimizer> Build(std::vector<torch::Tensor>& params, bool amsgrad = false) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{params[0], params[2]},
                      std::make_unique<torch::optim::AdamWOptions>(Options(0.01, amsgrad)));
  groups.emplace_back(std::vector<torch::Tensor>{params[1], params[3]},
                      std::make_unique<torch::optim::AdamWOptions>(Options(0.0, amsgrad)));
  return std::make_unique<Optimizer>(std::move(groups), Options(0.01, amsgrad));
}

void ExpectClose(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], /*rtol=*/1e-6, /*atol=*/1e-7))
        << "parameter " << i << " max |diff| " << (a[i] - b[i]).abs().max().item<double>();
  }
}

TEST(FusedAdamWTest, MatchesLibtorchAdamW) {
  std::vector<torch::Tensor> fused_params = MakeParams(), reference_params = Clone(fused_params);
  auto fused = Build<FusedAdamW>(fused_params);
  auto reference = Build<torch::optim::AdamW>(reference_params);
  for (int step = 0; step < 20; ++step) {
    SetGrads(fused_params, reference_params, step, /*skip=*/step == 3 ? 2 : -1);
    fused->step();
    reference->step();
  }
  ExpectClose(fused_params, reference_params);
  // The state is libtorch's: same keys, same step counts, same moments.
  ASSERT_EQ(fused->state().size(), reference->state().size());
  for (size_t i = 0; i < fused_params.size(); ++i) {
    auto& f = static_cast<torch::optim::AdamWParamState&>(
        *fused->state().at(fused_params[i].unsafeGetTensorImpl()));
    auto& r = static_cast<torch::optim::AdamWParamState&>(
        *reference->state().at(reference_params[i].unsafeGetTensorImpl()));
    EXPECT_EQ(f.step(), r.step());
    EXPECT_TRUE(torch::allclose(f.exp_avg(), r.exp_avg(), 1e-5, 1e-7));
    EXPECT_TRUE(torch::allclose(f.exp_avg_sq(), r.exp_avg_sq(), 1e-5, 1e-9));
  }
}

TEST(FusedAdamWTest, FallbacksAreLibtorchsOpChain) {
  // float64 parameters and amsgrad take libtorch's ops, so they agree exactly.
  for (bool amsgrad : {false, true}) {
    const torch::ScalarType dtype = amsgrad ? torch::kFloat32 : torch::kFloat64;
    std::vector<torch::Tensor> fused_params = MakeParams(dtype), reference_params = Clone(fused_params);
    auto fused = Build<FusedAdamW>(fused_params, amsgrad);
    auto reference = Build<torch::optim::AdamW>(reference_params, amsgrad);
    for (int step = 0; step < 5; ++step) {
      SetGrads(fused_params, reference_params, step);
      fused->step();
      reference->step();
    }
    for (size_t i = 0; i < fused_params.size(); ++i)
      EXPECT_TRUE(torch::equal(fused_params[i], reference_params[i])) << "amsgrad " << amsgrad << " " << i;
  }
}

TEST(FusedAdamWTest, StateRoundTripsThroughLibtorchsFormat) {
  std::vector<torch::Tensor> fused_params = MakeParams(), reference_params = Clone(fused_params);
  auto fused = Build<FusedAdamW>(fused_params);
  auto reference = Build<torch::optim::AdamW>(reference_params);
  for (int step = 0; step < 3; ++step) {
    SetGrads(fused_params, reference_params, step);
    fused->step();
    reference->step();
  }
  // FusedAdamW's saved state loads into libtorch's AdamW and the other way round.
  std::stringstream fused_bytes, reference_bytes;
  {
    torch::serialize::OutputArchive archive;
    fused->save(archive);
    archive.save_to(fused_bytes);
  }
  {
    torch::serialize::OutputArchive archive;
    reference->save(archive);
    archive.save_to(reference_bytes);
  }
  std::vector<torch::Tensor> from_fused = Clone(fused_params), from_reference = Clone(reference_params);
  auto into_libtorch = Build<torch::optim::AdamW>(from_fused);
  auto into_fused = Build<FusedAdamW>(from_reference);
  {
    torch::serialize::InputArchive archive;
    archive.load_from(fused_bytes);
    into_libtorch->load(archive);
  }
  {
    torch::serialize::InputArchive archive;
    archive.load_from(reference_bytes);
    into_fused->load(archive);
  }
  for (int step = 3; step < 6; ++step) {
    SetGrads(from_fused, from_reference, step);
    into_libtorch->step();
    into_fused->step();
  }
  ExpectClose(from_fused, from_reference);
}

TEST(FusedAdamWTest, ZeroGradDropsGradients) {
  std::vector<torch::Tensor> params = MakeParams(), other = Clone(params);
  auto optimizer = Build<FusedAdamW>(params);
  SetGrads(params, other, 0);
  optimizer->ZeroGrad();
  for (const torch::Tensor& p : params) EXPECT_FALSE(p.grad().defined());
  const std::vector<torch::Tensor> before = Clone(params);
  optimizer->step();  // no gradients: nothing moves
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], before[i]));
}

TEST(FusedAdamWTest, BackwardAfterZeroGradWritesFreshGradients) {
  torch::Tensor w = torch::randn({4, 3}).requires_grad_();
  FusedAdamW optimizer({w}, Options(0.0));
  (w * 2).sum().backward();
  optimizer.ZeroGrad();
  (w * 3).sum().backward();
  EXPECT_TRUE(torch::equal(w.grad(), torch::full({4, 3}, 3.0f)));
}

}  // namespace
}  // namespace distill::student
