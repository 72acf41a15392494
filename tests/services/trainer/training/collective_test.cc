#include "services/trainer/training/collective.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/trainer/training/training_testing.h"
#include "tests/support/ports.h"
#include "torch/torch.h"

namespace distill::trainer {
namespace {

// Runs `body(collective)` on `world` ranks, each a thread with its own process group on loopback.
template <typename F>
void OnRanks(int world, F body) {
  const int port = distill::testing::FreeLoopbackPort();
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      RendezvousOptions options;
      options.master_port = port;
      options.rank = rank;
      options.world_size = world;
      options.timeout = std::chrono::seconds(60);
      absl::StatusOr<std::unique_ptr<Collective>> collective = Rendezvous(options);
      ASSERT_TRUE(collective.ok()) << collective.status();
      body(**collective);
    });
  }
  for (std::thread& t : threads) t.join();
}

TEST(CollectiveTest, SingleRankIsANoOp) {
  absl::StatusOr<std::unique_ptr<Collective>> c = Rendezvous(RendezvousOptions());
  ASSERT_TRUE(c.ok());
  std::vector<torch::Tensor> t{torch::ones({3})};
  ASSERT_TRUE((*c)->AllReduceSum(t).ok());
  EXPECT_TRUE(torch::equal(t[0], torch::ones({3})));
  EXPECT_EQ(*(*c)->ShareBytes("k", "v", 0), "v");
}

TEST(CollectiveTest, AllReduceBroadcastShareAndBarrierOverGloo) {
  OnRanks(2, [](Collective& c) {
    std::vector<torch::Tensor> sum{torch::full({4}, c.rank() + 1.0)};
    ASSERT_TRUE(c.AllReduceSum(sum).ok());
    EXPECT_TRUE(torch::equal(sum[0], torch::full({4}, 3.0)));
    std::vector<torch::Tensor> cast{torch::full({2}, c.rank() * 10.0)};
    ASSERT_TRUE(c.Broadcast(cast, 1).ok());
    EXPECT_TRUE(torch::equal(cast[0], torch::full({2}, 10.0)));
    absl::StatusOr<std::string> shared =
        c.ShareBytes("blob", c.rank() == 0 ? std::string("abc\0def", 7) : "", 0);
    ASSERT_TRUE(shared.ok());
    EXPECT_EQ(*shared, std::string("abc\0def", 7));
    EXPECT_TRUE(c.Barrier().ok());
  });
}

TEST(GradientReducerTest, SumsGradientsAcrossRanksInBuckets) {
  OnRanks(2, [](Collective& c) {
    std::vector<torch::Tensor> params = {torch::zeros({3, 4}), torch::zeros({5}), torch::zeros({2, 2}),
                                         torch::zeros({7})};
    for (size_t i = 0; i < params.size(); ++i) {
      params[i].set_requires_grad(true);
      // Parameter 2 has no gradient on rank 1 (counts as zeros).
      if (i == 2 && c.rank() == 1) continue;
      params[i].mutable_grad() =
          torch::arange(params[i].numel(), torch::kFloat32).view_as(params[i]) * (c.rank() + 1) +
          static_cast<double>(i);
    }
    GradientReducer reducer(params, /*bucket_bytes=*/64);  // 48 | 20 + 16 + 28 bytes
    EXPECT_EQ(reducer.num_buckets(), 2);
    ASSERT_TRUE(reducer.AllReduce(c).ok());
    for (size_t i = 0; i < params.size(); ++i) {
      const torch::Tensor base = torch::arange(params[i].numel(), torch::kFloat32).view_as(params[i]);
      const torch::Tensor expected =
          i == 2 ? base + static_cast<double>(i) : base * 3 + 2.0 * static_cast<double>(i);
      EXPECT_TRUE(torch::equal(params[i].grad(), expected)) << i;
    }
  });
}

}  // namespace
}  // namespace distill::trainer
