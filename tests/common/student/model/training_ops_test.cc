#include "common/student/model/training_ops.h"

#include <limits>
#include <vector>

#include "c10/util/Exception.h"
#include "gtest/gtest.h"
#include "torch/autograd.h"
#include "torch/torch.h"

namespace distill::student {
namespace {

TEST(DropoutTest, EvalAndZeroProbabilityAreIdentity) {
  torch::Tensor x = torch::randn({4, 8});
  EXPECT_TRUE(Dropout(x, 0.1, /*train=*/false).is_same(x));
  EXPECT_TRUE(Dropout(x, 0.0, /*train=*/true).is_same(x));
}

TEST(DropoutTest, KeepsAboutOneMinusPAndScales) {
  torch::manual_seed(3);
  const double p = 0.1;
  torch::Tensor x = torch::ones({1000, 1001});  // not a multiple of 8: a scalar tail
  torch::Tensor y = Dropout(x, p, /*train=*/true);
  torch::Tensor kept = y.ne(0);
  const double rate = kept.to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(rate, 1 - p, 0.002);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  EXPECT_TRUE(torch::all(y.masked_select(kept) == scale).item<bool>());
  // Inverted dropout keeps the expectation.
  EXPECT_NEAR(y.to(torch::kFloat64).mean().item<double>(), 1.0, 0.003);
  // No stripes: even and odd elements are kept at the same rate.
  torch::Tensor flat = kept.reshape({-1}).narrow(0, 0, 1000 * 1000).view({-1, 2}).to(torch::kFloat64);
  EXPECT_NEAR(flat.select(1, 0).mean().item<double>(), 1 - p, 0.003);
  EXPECT_NEAR(flat.select(1, 1).mean().item<double>(), 1 - p, 0.003);
  // Neighbours are independent: P(both kept) = (1 - p)^2.
  EXPECT_NEAR((flat.select(1, 0) * flat.select(1, 1)).mean().item<double>(), (1 - p) * (1 - p), 0.003);
}

TEST(DropoutTest, SameSeedSameMaskAndDrawsAdvance) {
  torch::Tensor x = torch::randn({64, 33});
  torch::manual_seed(11);
  torch::Tensor a = Dropout(x, 0.25, true);
  torch::Tensor b = Dropout(x, 0.25, true);
  torch::manual_seed(11);
  torch::Tensor c = Dropout(x, 0.25, true);
  EXPECT_TRUE(torch::equal(a, c));
  EXPECT_FALSE(torch::equal(a, b));  // each call draws a new seed
}

TEST(DropoutTest, MaskDependsOnlyOnSeedAndIndex) {
  // 13 elements take the vector loop for 8 and the scalar tail for 5; 1000 the vector loop for all 13.
  torch::manual_seed(21);
  torch::Tensor small = Dropout(torch::ones({13}), 0.5, true);
  torch::manual_seed(21);
  torch::Tensor large = Dropout(torch::ones({1000}), 0.5, true);
  EXPECT_TRUE(torch::equal(small, large.narrow(0, 0, 13)));
}

TEST(DropoutTest, ProbabilityOneGivesZerosAndBadProbabilityThrows) {
  torch::Tensor x = torch::randn({5, 6});
  EXPECT_TRUE(torch::equal(Dropout(x, 1.0, true), torch::zeros_like(x)));
  EXPECT_THROW(Dropout(x, 1.5, true), c10::Error);
  EXPECT_THROW(Dropout(x, -0.1, true), c10::Error);
}

TEST(DropoutTest, GradientIsTheMask) {
  torch::manual_seed(5);
  torch::Tensor x = (torch::rand({7, 9}) + 0.5).requires_grad_();
  torch::Tensor upstream = torch::randn({7, 9});
  torch::Tensor y = Dropout(x, 0.3, true);
  torch::Tensor grad = torch::autograd::grad({y}, {x}, {upstream})[0];
  torch::Tensor mask = (y / x).detach();
  EXPECT_TRUE(torch::allclose(grad, upstream * mask, 1e-6, 1e-6));
}

torch::Tensor Composition(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  torch::Tensor variance = x.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (x * torch::rsqrt(variance + eps));
}

TEST(RmsNormTest, ForwardBitIdenticalToComposition) {
  torch::manual_seed(1);
  torch::Tensor x = torch::randn({3, 5, 64}) * 3;
  torch::Tensor weight = torch::randn({64});
  EXPECT_TRUE(torch::equal(RmsNorm(x, weight, 1e-6), Composition(x, weight, 1e-6)));
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(RmsNorm(x, weight, 1e-6), Composition(x, weight, 1e-6)));
  }
  torch::Tensor xg = x.clone().requires_grad_();
  torch::Tensor wg = weight.clone().requires_grad_();
  EXPECT_TRUE(torch::equal(RmsNorm(xg, wg, 1e-6).detach(), Composition(x, weight, 1e-6)));
}

TEST(RmsNormTest, GradientsMatchComposition) {
  torch::manual_seed(2);
  for (int64_t dim : {8, 64, 100}) {
    torch::Tensor x = (torch::randn({4, 6, dim}) * 2).requires_grad_();
    torch::Tensor weight = torch::randn({dim}).requires_grad_();
    torch::Tensor upstream = torch::randn({4, 6, dim});
    auto fused = torch::autograd::grad({RmsNorm(x, weight, 1e-6)}, {x, weight}, {upstream});
    auto plain = torch::autograd::grad({Composition(x, weight, 1e-6)}, {x, weight}, {upstream});
    EXPECT_TRUE(torch::allclose(fused[0], plain[0], 1e-5, 1e-6)) << "dim " << dim;
    EXPECT_TRUE(torch::allclose(fused[1], plain[1], 1e-5, 1e-5)) << "dim " << dim;
  }
}

TEST(RmsNormTest, GradientOfInputOnly) {
  torch::Tensor x = torch::randn({2, 16}).requires_grad_();
  torch::Tensor weight = torch::randn({16});
  torch::Tensor upstream = torch::randn({2, 16});
  auto fused = torch::autograd::grad({RmsNorm(x, weight, 1e-6)}, {x}, {upstream});
  auto plain = torch::autograd::grad({Composition(x, weight, 1e-6)}, {x}, {upstream});
  EXPECT_TRUE(torch::allclose(fused[0], plain[0], 1e-5, 1e-6));
}

TEST(RmsNormTest, OtherDtypesUseTheComposition) {
  torch::Tensor x = torch::randn({3, 8}, torch::kFloat64);
  torch::Tensor weight = torch::randn({8}, torch::kFloat64);
  torch::Tensor expected = weight * (x.to(torch::kFloat32) * torch::rsqrt(
                                         x.to(torch::kFloat32).pow(2).mean(-1, true) + 1e-6))
                                        .to(torch::kFloat64);
  EXPECT_TRUE(torch::equal(RmsNorm(x, weight, 1e-6), expected));
}

torch::Tensor AttentionReference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& bias, double p) {
  torch::Tensor weights = torch::softmax(torch::matmul(q, k.transpose(2, 3)) + bias, -1);
  return torch::matmul(Dropout(weights, p, /*train=*/p > 0), v);
}

TEST(AttentionCoreTest, ForwardAndGradientsMatchComposition) {
  for (double p : {0.0, 0.3}) {
    for (bool bias_grad : {true, false}) {
      torch::manual_seed(4);
      const int64_t b = 2, h = 3, t = 5, s = 7, d = 4;
      torch::Tensor q = torch::randn({b, h, t, d}).requires_grad_();
      torch::Tensor k = torch::randn({b, h, s, d}).requires_grad_();
      torch::Tensor v = torch::randn({b, h, s, d}).requires_grad_();
      // A position bias [1, H, T, S] (learned) plus a padding mask [B, 1, 1, S] (constant).
      torch::Tensor position = torch::randn({1, h, t, s}).requires_grad_(bias_grad);
      torch::Tensor padding = torch::zeros({b, 1, 1, s});
      padding[1][0][0][6] = std::numeric_limits<float>::lowest();
      torch::Tensor bias = position + padding;
      torch::Tensor upstream = torch::randn({b, h, t, d});
      std::vector<torch::Tensor> inputs{q, k, v};
      if (bias_grad) inputs.push_back(position);

      torch::manual_seed(9);
      torch::Tensor fused = AttentionCore(q, k, v, bias, p, /*train=*/p > 0);
      torch::manual_seed(9);
      torch::Tensor plain = AttentionReference(q, k, v, bias, p);
      // The products are summed in another order than libtorch's naive kernel for matrices this small.
      EXPECT_TRUE(torch::allclose(fused, plain, 1e-5, 1e-6))
          << "p " << p << " max |diff| " << (fused - plain).abs().max().item<double>();
      auto fused_grads = torch::autograd::grad({fused}, inputs, {upstream}, /*retain_graph=*/true);
      auto plain_grads = torch::autograd::grad({plain}, inputs, {upstream}, /*retain_graph=*/true);
      for (size_t i = 0; i < inputs.size(); ++i) {
        EXPECT_TRUE(torch::allclose(fused_grads[i], plain_grads[i], 1e-5, 1e-6))
            << "p " << p << " input " << i << " max |diff| "
            << (fused_grads[i] - plain_grads[i]).abs().max().item<double>();
      }
    }
  }
}

// The model's layout: heads split from [B, L, H * d] projections (transposed views, not contiguous), at
// sizes where libtorch's matmul calls BLAS per matrix too, so the forward is bit-identical; the output is
// laid out [B, T, H, d] so the model's transpose back to [B, T, H * d] is a view.
TEST(AttentionCoreTest, HeadViewsOfProjectionsAtModelSizes) {
  torch::manual_seed(5);
  const int64_t b = 2, h = 4, t = 24, s = 40, d = 16;
  auto heads = [&](const torch::Tensor& x) { return x.view({b, -1, h, d}).transpose(1, 2); };
  torch::Tensor xq = torch::randn({b, t, h * d}).requires_grad_();
  torch::Tensor xkv = torch::randn({b, s, 2 * h * d}).requires_grad_();
  std::vector<torch::Tensor> kv = xkv.split(h * d, -1);
  torch::Tensor q = heads(xq), k = heads(kv[0]), v = heads(kv[1]);
  ASSERT_FALSE(q.is_contiguous());
  torch::Tensor bias = torch::randn({1, h, t, s}).requires_grad_();
  torch::Tensor upstream = torch::randn({b, t, h * d});

  torch::manual_seed(9);
  torch::Tensor fused = AttentionCore(q, k, v, bias, 0.2, /*train=*/true);
  torch::manual_seed(9);
  torch::Tensor plain = AttentionReference(q, k, v, bias, 0.2);
  EXPECT_TRUE(torch::equal(fused, plain)) << "max |diff| " << (fused - plain).abs().max().item<double>();
  EXPECT_TRUE(fused.transpose(1, 2).is_contiguous());

  const std::vector<torch::Tensor> inputs{xq, xkv, bias};
  auto fused_grads = torch::autograd::grad({fused.transpose(1, 2).reshape({b, t, h * d})}, inputs, {upstream});
  auto plain_grads = torch::autograd::grad({plain.transpose(1, 2).reshape({b, t, h * d})}, inputs, {upstream});
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_TRUE(torch::allclose(fused_grads[i], plain_grads[i], 1e-5, 1e-6))
        << "input " << i << " max |diff| " << (fused_grads[i] - plain_grads[i]).abs().max().item<double>();
  }
}

// Single rows and columns (a one-position query, one key) have degenerate strides; BLAS still gets valid
// leading dimensions.
TEST(AttentionCoreTest, OneQueryAndOneKey) {
  for (auto [t, s] : {std::pair<int64_t, int64_t>{1, 5}, {5, 1}, {1, 1}}) {
    torch::manual_seed(6);
    torch::Tensor q = torch::randn({2, 3, t, 4}).requires_grad_();
    torch::Tensor k = torch::randn({2, 3, s, 4}).requires_grad_();
    torch::Tensor v = torch::randn({2, 3, s, 4}).requires_grad_();
    torch::Tensor bias = torch::zeros({1, 3, t, s});
    torch::Tensor fused = AttentionCore(q, k, v, bias, 0.0, /*train=*/true);
    torch::Tensor plain = AttentionReference(q, k, v, bias, 0.0);
    EXPECT_TRUE(torch::allclose(fused, plain, 1e-5, 1e-6)) << "t " << t << " s " << s;
    auto fused_grads = torch::autograd::grad({fused.sum()}, {q, k, v});
    auto plain_grads = torch::autograd::grad({plain.sum()}, {q, k, v});
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_TRUE(torch::allclose(fused_grads[i], plain_grads[i], 1e-5, 1e-6)) << "t " << t << " s " << s;
    }
  }
}

TEST(AttentionCoreTest, WithoutGradIsTheComposition) {
  torch::Tensor q = torch::randn({1, 2, 3, 4}), k = torch::randn({1, 2, 6, 4}), v = torch::randn({1, 2, 6, 4});
  torch::Tensor bias = torch::randn({1, 2, 3, 6});
  EXPECT_TRUE(torch::equal(AttentionCore(q, k, v, bias, 0.1, /*train=*/false),
                           AttentionReference(q, k, v, bias, 0.0)));
}

torch::Tensor GatedGeluReference(const torch::Tensor& projected, double p) {
  std::vector<torch::Tensor> ab = projected.chunk(2, -1);
  return Dropout(torch::gelu(ab[0], "tanh") * ab[1], p, /*train=*/p > 0);
}

TEST(GatedGeluTest, ForwardAndGradientMatchComposition) {
  // Widths with and without a tail after the 8-wide loop; inputs from 1e-4 to 10 in magnitude, where
  // tanh saturates, and exact zeros.
  for (int64_t width : {8, 13, 64}) {
    for (double p : {0.0, 0.3}) {
      torch::manual_seed(7);
      torch::Tensor projected = (torch::randn({2, 5, 2 * width}) * torch::pow(10.0, torch::rand({2, 5, 2 * width}) * 5 - 4));
      projected.index_put_({0, 0}, 0.0);
      projected.requires_grad_();
      torch::Tensor upstream = torch::randn({2, 5, width});
      torch::manual_seed(9);
      torch::Tensor fused = GatedGelu(projected, p, /*train=*/p > 0);
      torch::manual_seed(9);
      torch::Tensor plain = GatedGeluReference(projected, p);
      ASSERT_EQ(fused.sizes(), plain.sizes());
      EXPECT_TRUE(torch::allclose(fused, plain, 1e-5, 1e-6))
          << "width " << width << " p " << p << " max |diff| " << (fused - plain).abs().max().item<double>();
      const torch::Tensor fused_grad = torch::autograd::grad({fused}, {projected}, {upstream})[0];
      const torch::Tensor plain_grad = torch::autograd::grad({plain}, {projected}, {upstream})[0];
      EXPECT_TRUE(torch::allclose(fused_grad, plain_grad, 1e-5, 1e-6))
          << "width " << width << " p " << p << " max |diff| "
          << (fused_grad - plain_grad).abs().max().item<double>();
      if (p > 0) {
        // The same units are dropped: zero outputs where the composition has zeros.
        EXPECT_TRUE(torch::equal(fused == 0, plain == 0)) << "width " << width;
      }
    }
  }
}

// The model passes a matmul's output; a slice of a wider tensor (row stride larger than 2F) works too.
TEST(GatedGeluTest, StridedRows) {
  torch::manual_seed(8);
  torch::Tensor wide = torch::randn({6, 40}).requires_grad_();
  torch::Tensor projected = wide.slice(1, 0, 32);
  ASSERT_FALSE(projected.is_contiguous());
  torch::Tensor fused = GatedGelu(projected, 0.0, /*train=*/false);
  EXPECT_TRUE(torch::allclose(fused, GatedGeluReference(projected, 0.0), 1e-5, 1e-6));
  const torch::Tensor g1 = torch::autograd::grad({fused.sum()}, {wide})[0];
  const torch::Tensor g2 = torch::autograd::grad({GatedGeluReference(projected, 0.0).sum()}, {wide})[0];
  EXPECT_TRUE(torch::allclose(g1, g2, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(g1.slice(1, 32, 40), torch::zeros({6, 8})));
}

TEST(GatedGeluTest, WithoutGradIsTheCompositionAndOddWidthThrows) {
  torch::Tensor projected = torch::randn({3, 10});
  EXPECT_TRUE(torch::equal(GatedGelu(projected, 0.1, /*train=*/false), GatedGeluReference(projected, 0.0)));
  EXPECT_THROW(GatedGelu(torch::randn({3, 7}), 0.0, false), c10::Error);
}

}  // namespace
}  // namespace distill::student
