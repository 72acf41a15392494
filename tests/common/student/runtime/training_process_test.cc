#include "common/student/runtime/training_process.h"

#include "ATen/Parallel.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace distill::student {
namespace {

TEST(ConfigureTrainingProcessTest, SetsAndReportsThreads) {
  EXPECT_EQ(ConfigureTrainingProcess(2), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_EQ(ConfigureTrainingProcess(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
}

TEST(ConfigureTrainingProcessTest, ZeroLeavesThreadsAndLargeBlocksStillWork) {
  ConfigureTrainingProcess(1);
  EXPECT_EQ(ConfigureTrainingProcess(0), 1);
  // With mmap off, blocks over the old 32 MiB threshold come from the heap; allocate, free, reuse.
  for (int i = 0; i < 3; ++i) {
    torch::Tensor big = torch::full({20 << 20}, 2.0f);  // 80 MiB
    EXPECT_EQ(big.max().item<float>(), 2.0f);
    EXPECT_EQ(big.min().item<float>(), 2.0f);
  }
}

TEST(ConfigureTrainingProcessTest, FlushesDenormals) {
  ConfigureTrainingProcess(0);
  // 1e-39 is below float's smallest normal (1.18e-38): with flush-to-zero, arithmetic on it gives 0.
  torch::Tensor tiny = torch::full({4}, 1e-39f);
  EXPECT_EQ((tiny * 1.0f).abs().max().item<float>(), 0.0f);
}

}  // namespace
}  // namespace distill::student
