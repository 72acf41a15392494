#include "common/student/model/few_rows_linear.h"

#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <thread>
#include <vector>

#include "ATen/Parallel.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace distill::student {
namespace {

bool KernelRuns() { return FewRowsLinear(torch::ones({1, 4}), torch::ones({4, 4})).has_value(); }

#define SKIP_WITHOUT_KERNEL() \
  if (!KernelRuns()) GTEST_SKIP() << "FewRowsLinear needs AVX-512F, which this CPU lacks"

// Each element of `y` against the float64 product, within float32 rounding of its K-term sum: the bound
// scales with sum_k |x_mk| |w_nk|, so it holds whatever order the terms are added in.
void ExpectProduct(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& y) {
  const torch::Tensor x64 = x.to(torch::kFloat64).reshape({-1, x.size(-1)});
  const torch::Tensor w64 = w.to(torch::kFloat64);
  const torch::Tensor exact = torch::matmul(x64, w64.t());
  const torch::Tensor scale = torch::matmul(x64.abs(), w64.abs().t());
  const torch::Tensor error = (y.to(torch::kFloat64).reshape(exact.sizes()) - exact).abs();
  const double k = static_cast<double>(x.size(-1));
  const torch::Tensor excess = error - scale * (k * 1.2e-7) - 1e-30;
  EXPECT_LE(excess.max().item<double>(), 0.0)
      << "x " << x.sizes() << " w " << w.sizes() << ": max error " << error.max().item<double>();
}

TEST(FewRowsLinearTest, EqualsTheProductForRowsColumnsAndDepthsOffTheTile) {
  SKIP_WITHOUT_KERNEL();
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  // Rows and output columns around the 4 x 4 tile, depths around the 16-float vector.
  for (int64_t m : {1, 2, 3, 4, 5, 7, 16, 17, 63, 64}) {
    for (int64_t n : {1, 3, 4, 5, 13, 384}) {
      for (int64_t k : {1, 7, 16, 17, 33, 512}) {
        const torch::Tensor x = torch::randn({m, k});
        const torch::Tensor w = torch::randn({n, k}) * 0.1;
        std::optional<torch::Tensor> y = FewRowsLinear(x, w);
        ASSERT_TRUE(y.has_value()) << m << "x" << k << " . " << n;
        ASSERT_EQ(y->sizes(), (std::vector<int64_t>{m, n}));
        ExpectProduct(x, w, *y);
      }
    }
  }
}

TEST(FewRowsLinearTest, SplitAcrossThreadsAtModelSizes) {
  SKIP_WITHOUT_KERNEL();
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  // Large enough to be split among helper threads when there are any (t5-v1_1-small's FFN and a
  // vocabulary that is not a multiple of the tile).
  for (const auto& [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {16, 1024, 512}, {16, 512, 1024}, {1, 4099, 512}, {9, 4099, 512}}) {
    const torch::Tensor x = torch::randn({m, k});
    const torch::Tensor w = torch::randn({n, k}) * 0.05;
    std::optional<torch::Tensor> y = FewRowsLinear(x, w);
    ASSERT_TRUE(y.has_value());
    ExpectProduct(x, w, *y);
  }
}

TEST(FewRowsLinearTest, KeepsLeadingDimensionsAndTakesStridedRows) {
  SKIP_WITHOUT_KERNEL();
  torch::NoGradGuard no_grad;
  const torch::Tensor w = torch::randn({10, 24});
  const torch::Tensor x = torch::randn({2, 3, 24});
  std::optional<torch::Tensor> y = FewRowsLinear(x, w);
  ASSERT_TRUE(y.has_value());
  EXPECT_EQ(y->sizes(), (std::vector<int64_t>{2, 3, 10}));
  ExpectProduct(x, w, *y);
  // Rows that are not contiguous in memory (a transposed view).
  const torch::Tensor strided = torch::randn({24, 5}).t();
  std::optional<torch::Tensor> z = FewRowsLinear(strided, w);
  ASSERT_TRUE(z.has_value());
  ExpectProduct(strided, w, *z);
}

TEST(FewRowsLinearTest, DeclinesWhatItDoesNotCompute) {
  SKIP_WITHOUT_KERNEL();
  const torch::Tensor w = torch::randn({8, 16});
  const torch::Tensor x = torch::randn({4, 16});
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(FewRowsLinear(torch::randn({kFewRowsMaxRows + 1, 16}), w).has_value());
    EXPECT_FALSE(FewRowsLinear(x.to(torch::kFloat64), w.to(torch::kFloat64)).has_value());
    EXPECT_FALSE(FewRowsLinear(x, torch::randn({16, 8}).t()).has_value());  // w not contiguous
    EXPECT_FALSE(FewRowsLinear(torch::randn({4, 15}), w).has_value());      // depths differ
    EXPECT_FALSE(FewRowsLinear(torch::randn({0, 16}), w).has_value());
    EXPECT_TRUE(FewRowsLinear(torch::randn({kFewRowsMaxRows, 16}), w).has_value());
  }
  // Under autograd the product must be recorded, so it is left to matmul.
  const torch::Tensor trained = w.clone().requires_grad_(true);
  EXPECT_FALSE(FewRowsLinear(x, trained).has_value());
  EXPECT_TRUE(FewRowsLinear(x, w).has_value());
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(FewRowsLinear(x, trained).has_value());
  }
}

TEST(FewRowsLinearTest, ConcurrentCallersEachGetTheirOwnProduct) {
  SKIP_WITHOUT_KERNEL();
  torch::manual_seed(7);
  constexpr int kCallers = 4;
  std::vector<torch::Tensor> xs, ws, expected;
  for (int i = 0; i < kCallers; ++i) {
    xs.push_back(torch::randn({16, 512}));
    ws.push_back(torch::randn({1024 + i, 512}) * 0.05);
    expected.push_back(torch::matmul(xs[i], ws[i].t()));
  }
  std::vector<int> mismatches(kCallers, 0);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      torch::NoGradGuard no_grad;
      for (int round = 0; round < 50; ++round) {
        std::optional<torch::Tensor> y = FewRowsLinear(xs[i], ws[i]);
        if (!y.has_value() || !torch::allclose(*y, expected[i], 1e-4, 1e-4)) ++mismatches[i];
      }
    });
  }
  for (std::thread& t : callers) t.join();
  for (int i = 0; i < kCallers; ++i) EXPECT_EQ(mismatches[i], 0) << "caller " << i;
}

TEST(FewRowsLinearTest, WorksInAChildProcessAfterFork) {
  SKIP_WITHOUT_KERNEL();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({16, 512});
  const torch::Tensor w = torch::randn({2048, 512}) * 0.05;
  const torch::Tensor expected = torch::matmul(x, w.t());
  ASSERT_TRUE(FewRowsLinear(x, w).has_value());  // the parent's helpers exist now
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child has none of the parent's threads: a product must not wait for helpers that do not exist.
    std::optional<torch::Tensor> y = FewRowsLinear(x, w);
    _exit(y.has_value() && torch::allclose(*y, expected, 1e-4, 1e-4) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(FewRowsLinearTest, ThreadsFollowIntraOpThreads) {
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  EXPECT_EQ(FewRowsLinearThreads(), 1);
  at::set_num_threads(3);
  EXPECT_EQ(FewRowsLinearThreads(), 3);
  at::set_num_threads(before);
}

}  // namespace
}  // namespace distill::student
