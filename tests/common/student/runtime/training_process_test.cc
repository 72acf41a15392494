#include "common/student/runtime/training_process.h"

#include "ATen/Parallel.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace distill::student {
namespace {

TEST(ConfigureTrainingProcessTest, SetsAndReportsThreads) {
  const TrainingThreads configured = ConfigureTrainingProcess({/*torch_threads=*/1, /*blas_threads=*/2});
  EXPECT_EQ(configured.torch_threads, 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  // Debian's libtorch uses OpenBLAS; another BLAS reports -1.
  EXPECT_TRUE(configured.blas_threads == 2 || configured.blas_threads == -1) << configured.blas_threads;
}

TEST(ConfigureTrainingProcessTest, ZeroLeavesThreadsAndLargeBlocksStillWork) {
  ConfigureTrainingProcess({1, 1});
  const TrainingThreads configured = ConfigureTrainingProcess({});
  EXPECT_EQ(configured.torch_threads, 1);
  EXPECT_TRUE(configured.blas_threads == 1 || configured.blas_threads == -1) << configured.blas_threads;
  // With mmap off, blocks over the old 32 MiB threshold come from the heap; allocate, free, reuse.
  for (int i = 0; i < 3; ++i) {
    torch::Tensor big = torch::full({20 << 20}, 2.0f);  // 80 MiB
    EXPECT_EQ(big.max().item<float>(), 2.0f);
    EXPECT_EQ(big.min().item<float>(), 2.0f);
  }
}

}  // namespace
}  // namespace distill::student
