#include "services/trainer/training/batching.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace distill::trainer {
namespace {

std::vector<int64_t> Lengths(int n) {
  std::vector<int64_t> lengths;
  DeterministicRng rng(5);
  for (int i = 0; i < n; ++i) lengths.push_back(static_cast<int64_t>(4 + rng.Uniform(60)));
  return lengths;
}

BatchPlan Plan(int n, int batch, int accumulation, int world, uint64_t seed = 1) {
  BatchPlanOptions o;
  o.batch_size = batch;
  o.grad_accumulation_steps = accumulation;
  o.world_size = world;
  o.seed = seed;
  absl::StatusOr<BatchPlan> plan = BatchPlan::Create(Lengths(n), o);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return *plan;
}

std::vector<std::vector<int64_t>> Epoch(const BatchPlan& plan, int64_t epoch) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t b = 0; b < plan.steps_per_epoch(); ++b) out.push_back(plan.GlobalBatch({epoch, b}));
  return out;
}

TEST(BatchPlanTest, EveryRecordOncePerEpoch) {
  const BatchPlan plan = Plan(103, 4, 2, 2);
  EXPECT_EQ(plan.global_batch_size(), 16);
  EXPECT_EQ(plan.steps_per_epoch(), 7);
  for (int64_t epoch : {0, 1, 5}) {
    std::vector<int64_t> seen;
    for (const auto& batch : Epoch(plan, epoch)) {
      EXPECT_LE(batch.size(), 16u);
      seen.insert(seen.end(), batch.begin(), batch.end());
    }
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(103);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(seen, all);
  }
}

TEST(BatchPlanTest, DeterministicPerSeedAndDifferentPerEpoch) {
  EXPECT_EQ(Epoch(Plan(100, 8, 1, 1, 3), 0), Epoch(Plan(100, 8, 1, 1, 3), 0));
  EXPECT_NE(Epoch(Plan(100, 8, 1, 1, 3), 0), Epoch(Plan(100, 8, 1, 1, 4), 0));
  const BatchPlan plan = Plan(100, 8, 1, 1, 3);
  EXPECT_NE(Epoch(plan, 0), Epoch(plan, 1));
  // Going back to an epoch lays it out again identically.
  const auto first = Epoch(plan, 0);
  Epoch(plan, 1);
  EXPECT_EQ(Epoch(plan, 0), first);
}

TEST(BatchPlanTest, BatchesAreSortedByLengthAndPadLittle) {
  const std::vector<int64_t> lengths = Lengths(512);
  const BatchPlan plan = Plan(512, 16, 1, 1);
  int64_t padded = 0, real = 0;
  for (const auto& batch : Epoch(plan, 0)) {
    int64_t longest = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (i > 0) {
        EXPECT_LE(lengths[batch[i - 1]], lengths[batch[i]]);
      }
      longest = std::max(longest, lengths[batch[i]]);
      real += lengths[batch[i]];
    }
    padded += longest * static_cast<int64_t>(batch.size());
  }
  // Random batches of 16 from lengths uniform in [4, 64) pad about 60%; bucketed ones a few percent.
  EXPECT_LT(static_cast<double>(padded - real) / static_cast<double>(real), 0.1);
}

TEST(BatchPlanTest, TheGlobalBatchDoesNotDependOnHowItIsFactored) {
  const auto reference = Epoch(Plan(90, 8, 1, 1), 2);
  EXPECT_EQ(Epoch(Plan(90, 4, 1, 2), 2), reference);
  EXPECT_EQ(Epoch(Plan(90, 2, 2, 2), 2), reference);
  EXPECT_EQ(Epoch(Plan(90, 1, 8, 1), 2), reference);
}

TEST(BatchPlanTest, RanksSplitTheGlobalBatchIntoContiguousMicroBatches) {
  const BatchPlan plan = Plan(90, 3, 2, 2);  // global 12; 90 = 7 × 12 + 6
  for (int64_t b = 0; b < plan.steps_per_epoch(); ++b) {
    const std::vector<int64_t>& global = plan.GlobalBatch({0, b});
    // Micro-batch a·world + r is rank r's a-th; together, in that order, they are the global batch.
    std::vector<std::vector<int64_t>> slots(4);
    for (int rank = 0; rank < 2; ++rank) {
      const auto micro = plan.RankMicroBatches({0, b}, rank);
      ASSERT_EQ(micro.size(), 2u);
      for (int a = 0; a < 2; ++a) slots[a * 2 + rank] = micro[a];
    }
    std::vector<int64_t> joined;
    for (const auto& s : slots) {
      EXPECT_LE(s.size(), 3u);
      joined.insert(joined.end(), s.begin(), s.end());
    }
    EXPECT_EQ(joined, global);
    if (global.size() == 6) {  // the short batch is dealt evenly
      for (const auto& s : slots) EXPECT_GE(s.size(), 1u);
    }
  }
}

TEST(BatchPlanTest, PositionsAdvanceThroughEpochs) {
  const BatchPlan plan = Plan(10, 4, 1, 1);  // 3 steps per epoch
  DataPosition p;
  p = plan.Next(p);
  EXPECT_EQ(p, (DataPosition{0, 1}));
  p = plan.Next(plan.Next(p));
  EXPECT_EQ(p, (DataPosition{1, 0}));
  EXPECT_DOUBLE_EQ(plan.EpochProgress({1, 1}), 1.0 + 1.0 / 3.0);
}

TEST(BatchPlanTest, RejectsNoRecords) {
  EXPECT_EQ(BatchPlan::Create({}, BatchPlanOptions()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TotalStepsTest, WhicheverLimitComesFirst) {
  EXPECT_EQ(TotalSteps(100, 0, 7), 100);
  EXPECT_EQ(TotalSteps(0, 2, 7), 14);
  EXPECT_EQ(TotalSteps(0, 1.5, 7), 11);  // ceil(10.5)
  EXPECT_EQ(TotalSteps(10, 2, 7), 10);
  EXPECT_EQ(TotalSteps(100, 2, 7), 14);
  EXPECT_EQ(TotalSteps(0, 0.01, 7), 1);
}

TEST(DeterministicRngTest, FixedSequenceAndUniformRange) {
  DeterministicRng a(9), b(9);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.Next(), b.Next());
  // SplitMix64's published first output for seed 0.
  EXPECT_EQ(DeterministicRng(0).Next(), 0xe220a8397b1dcdafULL);
  DeterministicRng r(1);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = r.Uniform(7);
    EXPECT_LT(x, 7u);
    seen.insert(x);
  }
  EXPECT_EQ(seen.size(), 7u);
}

}  // namespace
}  // namespace distill::trainer
