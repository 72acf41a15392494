#include "common/student/model/generation.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "common/student/model/t5.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/student/model/t5_testing.h"
#include "torch/optim/adam.h"

namespace distill::student {
namespace {

using ::testing::HasSubstr;
using Sequences = std::vector<std::vector<int>>;

// Few buckets and a short max_distance, so a couple dozen positions reach the log-spaced and capped buckets.
T5Config ShortBucketsConfig() {
  T5Config config = TinyT5Config();
  config.relative_attention_num_buckets = 8;
  config.relative_attention_max_distance = 12;
  return config;
}

torch::Tensor Ids(std::vector<std::vector<int64_t>> rows) {
  const int64_t width = rows[0].size();
  std::vector<int64_t> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  return torch::tensor(flat, torch::kInt64).view({static_cast<int64_t>(rows.size()), width});
}

// Two inputs, the second right-padded.
torch::Tensor PaddedInputs() { return Ids({{5, 6, 7, 8, 9, 1}, {10, 11, 12, 1, 0, 0}}); }
torch::Tensor MaskOf(const torch::Tensor& ids) { return ids.ne(0).to(torch::kInt64); }

// Greedy decoding without a cache: the whole prefix through Decode at every step.
Sequences UncachedGreedy(T5Model& model, const torch::Tensor& ids, const torch::Tensor& mask,
                         int max_new_tokens, int eos_id) {
  torch::NoGradGuard no_grad;
  torch::Tensor encoder = model.Encode(ids, mask);
  Sequences out(ids.size(0));
  for (int64_t b = 0; b < ids.size(0); ++b) {
    std::vector<int64_t> prefix = {0};
    torch::Tensor row_encoder = encoder.slice(0, b, b + 1);
    torch::Tensor row_mask = mask.slice(0, b, b + 1);
    for (int step = 0; step < max_new_tokens; ++step) {
      torch::Tensor dec = torch::tensor(prefix, torch::kInt64).unsqueeze(0);
      const int token =
          static_cast<int>(model.Decode(dec, row_encoder, row_mask)[0][-1].argmax().item<int64_t>());
      out[b].push_back(token);
      prefix.push_back(token);
      if (token == eos_id) break;
    }
  }
  return out;
}

Sequences MustGenerate(T5Model& model, const torch::Tensor& ids, const GenerationOptions& options) {
  absl::StatusOr<Sequences> out = Generate(model, ids, MaskOf(ids), options);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : Sequences{};
}

TEST(DecodeStepTest, MatchesUncachedDecodePositionByPosition) {
  for (const T5Config& config : {TinyT5Config(), TiedReluConfig(), ShortBucketsConfig()}) {
    auto model = MakeModel(config);
    torch::NoGradGuard no_grad;
    torch::Tensor ids = PaddedInputs();
    torch::Tensor mask = MaskOf(ids);
    const int64_t length = 24;
    torch::Tensor dec = torch::randint(2, config.vocab_size, {2, length}, torch::kInt64);
    dec.select(1, 0).fill_(0);
    torch::Tensor encoder = model->Encode(ids, mask);
    torch::Tensor full = model->Decode(dec, encoder, mask);

    DecoderCache cache = model->InitCache(encoder, mask);
    for (int64_t t = 0; t < length; ++t) {
      torch::Tensor step = model->DecodeStep(dec.slice(1, t, t + 1), cache);
      ASSERT_EQ(step.sizes().vec(), (std::vector<int64_t>{2, config.vocab_size}));
      EXPECT_TRUE(torch::allclose(step, full.select(1, t), /*rtol=*/1e-5, /*atol=*/1e-5))
          << "position " << t << " buckets " << config.relative_attention_num_buckets << " max diff "
          << (step - full.select(1, t)).abs().max().item<float>();
    }
    EXPECT_EQ(cache.length, length);
    EXPECT_EQ(cache.self_key[0].sizes().vec(),
              (std::vector<int64_t>{2, config.num_heads, length, config.d_kv}));
  }
}

// Continuous batching: row 1 joins row 0's running decode after 10 steps with a longer input, row 0
// leaves after 12 (and the dead columns it leaves behind are trimmed); at every step each row's logits
// equal its own uncached Decode.
TEST(DecoderCacheTest, RowsJoinAndLeaveARunningBatch) {
  for (const T5Config& config : {TinyT5Config(), TiedReluConfig(), ShortBucketsConfig()}) {
    auto model = MakeModel(config);
    torch::NoGradGuard no_grad;
    const std::vector<torch::Tensor> inputs = {Ids({{5, 6, 7, 1}}), Ids({{10, 11, 12, 13, 14, 15, 16, 1}})};
    const int64_t length = 40;  // past the initial storage, so it grows while rows come and go
    std::vector<torch::Tensor> dec, full;
    for (const torch::Tensor& ids : inputs) {
      torch::Tensor d = torch::randint(2, config.vocab_size, {1, length}, torch::kInt64);
      d.select(1, 0).fill_(0);
      dec.push_back(d);
      full.push_back(model->Decode(d, model->Encode(ids, MaskOf(ids)), MaskOf(ids)).squeeze(0));
    }
    auto init = [&](int row) {
      return model->InitCache(model->Encode(inputs[row], MaskOf(inputs[row])), MaskOf(inputs[row]));
    };
    auto expect_close = [&](const torch::Tensor& got, int row, int64_t position) {
      // Batch shapes change summation order.
      EXPECT_TRUE(torch::allclose(got, full[row][position], 1e-4, 1e-4))
          << "row " << row << " position " << position << " max diff "
          << (got - full[row][position]).abs().max().item<float>();
    };

    DecoderCache cache = init(0);
    int64_t pos0 = 0, pos1 = 0;
    for (; pos0 < 10; ++pos0) expect_close(model->DecodeStep(dec[0].slice(1, pos0, pos0 + 1), cache)[0], 0, pos0);
    cache.AppendRows(init(1));
    ASSERT_TRUE(cache.self_mask.defined());
    EXPECT_EQ(cache.batch, 2);
    for (; pos0 < 12; ++pos0, ++pos1) {
      torch::Tensor tokens = torch::cat({dec[0].slice(1, pos0, pos0 + 1), dec[1].slice(1, pos1, pos1 + 1)}, 0);
      torch::Tensor logits = model->DecodeStep(tokens, cache);
      expect_close(logits[0], 0, pos0);
      expect_close(logits[1], 1, pos1);
    }
    cache.RemoveRow(0);
    cache.TrimPadding();
    EXPECT_EQ(cache.batch, 1);
    EXPECT_EQ(cache.length, pos1) << "the 10 dead columns before row 1's start are gone";
    EXPECT_FALSE(cache.self_mask.defined());
    for (; pos1 < length; ++pos1) expect_close(model->DecodeStep(dec[1].slice(1, pos1, pos1 + 1), cache)[0], 1, pos1);

    // The other way round: a shorter input joins a longer one, which then leaves.
    cache = ConcatDecoderCaches(init(1), init(0));
    EXPECT_EQ(cache.cross_bias.size(3), 8);
    cache.RemoveRow(0);
    for (int64_t t = 0; t < 6; ++t) expect_close(model->DecodeStep(dec[0].slice(1, t, t + 1), cache)[0], 0, t);
  }
}

TEST(GenerateTest, CachedGreedyEqualsUncachedGreedy) {
  for (const T5Config& config : {TinyT5Config(), TiedReluConfig(), ShortBucketsConfig()}) {
    auto model = MakeModel(config, 3);
    torch::Tensor ids = PaddedInputs();
    GenerationOptions options;
    options.max_new_tokens = 20;
    Sequences expected = UncachedGreedy(*model, ids, MaskOf(ids), options.max_new_tokens, options.eos_id);
    EXPECT_EQ(MustGenerate(*model, ids, options), expected);
  }
}

TEST(GenerateTest, OneBeamEqualsGreedy) {
  auto model = MakeModel(TinyT5Config(), 4);
  torch::Tensor ids = PaddedInputs();
  GenerationOptions options;
  options.max_new_tokens = 16;
  Sequences greedy = MustGenerate(*model, ids, options);
  absl::StatusOr<Sequences> beam = generation_internal::BeamSearch(*model, ids, MaskOf(ids), options);
  ASSERT_TRUE(beam.ok()) << beam.status();
  EXPECT_EQ(*beam, greedy);
  // Also when sequences end early: make the first row's third greedy token the EOS.
  options.eos_id = greedy[0][2];
  greedy = MustGenerate(*model, ids, options);
  EXPECT_EQ(greedy[0].size(), 3u);
  beam = generation_internal::BeamSearch(*model, ids, MaskOf(ids), options);
  ASSERT_TRUE(beam.ok()) << beam.status();
  EXPECT_EQ(*beam, greedy);
}

TEST(GenerateTest, StopsAtEosPerSequence) {
  auto model = MakeModel(TinyT5Config(), 5);
  torch::Tensor ids = PaddedInputs();
  GenerationOptions options;
  options.max_new_tokens = 12;
  options.eos_id = -1;  // never produced: full-length reference
  Sequences unstopped = MustGenerate(*model, ids, options);
  ASSERT_EQ(unstopped[0].size(), 12u);
  ASSERT_EQ(unstopped[1].size(), 12u);

  options.eos_id = unstopped[0][2];
  Sequences stopped = MustGenerate(*model, ids, options);
  for (size_t b = 0; b < 2; ++b) {
    auto eos = std::find(unstopped[b].begin(), unstopped[b].end(), options.eos_id);
    std::vector<int> expected(unstopped[b].begin(), eos == unstopped[b].end() ? eos : eos + 1);
    EXPECT_EQ(stopped[b], expected) << "row " << b;
  }
  EXPECT_EQ(stopped[0].back(), options.eos_id);
  EXPECT_LE(stopped[0].size(), 3u);
}

TEST(GenerateTest, BatchWithDifferentLengthsEqualsOneByOne) {
  auto model = MakeModel(TinyT5Config(), 6);
  torch::Tensor ids = Ids({{5, 6, 7, 8, 9, 1}, {10, 11, 1, 0, 0, 0}, {20, 21, 22, 23, 1, 0}});
  for (int beams : {1, 3}) {
    GenerationOptions options;
    options.max_new_tokens = 10;
    options.num_beams = beams;
    Sequences batched = MustGenerate(*model, ids, options);
    ASSERT_EQ(batched.size(), 3u);
    for (int64_t b = 0; b < 3; ++b) {
      const int64_t length = ids[b].ne(0).sum().item<int64_t>();
      Sequences alone = MustGenerate(*model, ids.slice(0, b, b + 1).slice(1, 0, length), options);
      EXPECT_EQ(batched[b], alone[0]) << "row " << b << " beams " << beams;
    }
  }
}

TEST(GenerateTest, SeededSamplingIsDeterministic) {
  auto model = MakeModel(TinyT5Config(), 8);
  torch::Tensor ids = PaddedInputs();
  GenerationOptions options;
  options.max_new_tokens = 24;
  options.eos_id = -1;
  options.temperature = 2.0;
  options.top_k = 50;
  options.top_p = 0.95f;
  options.seed = 42;
  Sequences first = MustGenerate(*model, ids, options);
  torch::manual_seed(999);  // the global generator does not matter when seeded
  EXPECT_EQ(MustGenerate(*model, ids, options), first);
  options.seed = 43;
  EXPECT_NE(MustGenerate(*model, ids, options), first);
}

TEST(GenerateTest, SamplingLimitsEqualGreedy) {
  auto model = MakeModel(TinyT5Config(), 9);
  torch::Tensor ids = PaddedInputs();
  GenerationOptions options;
  options.max_new_tokens = 16;
  Sequences greedy = MustGenerate(*model, ids, options);
  options.seed = 1;

  GenerationOptions cold = options;
  cold.temperature = 1e-6f;
  EXPECT_EQ(MustGenerate(*model, ids, cold), greedy);

  GenerationOptions top1 = options;
  top1.temperature = 1.0f;
  top1.top_k = 1;
  EXPECT_EQ(MustGenerate(*model, ids, top1), greedy);

  GenerationOptions nucleus = options;
  nucleus.temperature = 1.0f;
  nucleus.top_p = 1e-6f;
  EXPECT_EQ(MustGenerate(*model, ids, nucleus), greedy);
}

TEST(GenerateTest, InvalidOptionsNameTheField) {
  auto model = MakeModel(TinyT5Config());
  torch::Tensor ids = PaddedInputs();
  auto expect_invalid = [&](const GenerationOptions& options, const char* field) {
    absl::StatusOr<Sequences> out = Generate(*model, ids, MaskOf(ids), options);
    ASSERT_FALSE(out.ok()) << field;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(out.status().message(), HasSubstr(field));
  };
  GenerationOptions options;
  options.temperature = -0.5f;
  expect_invalid(options, "temperature");
  options = {};
  options.top_p = 0;
  expect_invalid(options, "top_p");
  options.top_p = 1.5f;
  expect_invalid(options, "top_p");
  options = {};
  options.num_beams = 0;
  expect_invalid(options, "num_beams");
  options = {};
  options.max_new_tokens = 0;
  expect_invalid(options, "max_new_tokens");
  options = {};
  options.top_k = -1;
  expect_invalid(options, "top_k");

  absl::StatusOr<Sequences> shape = Generate(*model, ids, torch::ones({2, 3}, torch::kInt64), {});
  EXPECT_EQ(shape.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(shape.status().message(), HasSubstr("attention_mask"));
}

TEST(GenerateTest, LibtorchFailureIsInternal) {
  auto model = MakeModel(TinyT5Config());
  torch::Tensor ids = Ids({{5, 1000, 1}});  // outside the 256-token vocabulary
  absl::StatusOr<Sequences> out = Generate(*model, ids, MaskOf(ids), {});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(out.status().message(), HasSubstr("libtorch"));
}

// A tiny model overfitted (as in t5_test.cc) to four input -> target pairs, shared by the tests below.
class TrainedModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    T5Config config = TinyT5Config();
    config.dropout_rate = 0.0;
    model_ = MakeModel(config, 7);
    model_->train();
    torch::Tensor ids = Inputs();
    torch::Tensor labels = Ids({{50, 51, 1, -100}, {60, 61, 62, 1}, {70, 1, -100, -100}, {80, 81, 82, 1}});
    torch::Tensor dec = Ids({{0, 50, 51, 1}, {0, 60, 61, 62}, {0, 70, 1, 0}, {0, 80, 81, 82}});
    torch::optim::Adam adam(model_->parameters(), torch::optim::AdamOptions(3e-3));
    for (int step = 0; step <= 400; ++step) {
      adam.zero_grad();
      torch::Tensor loss = T5Model::Loss(model_->Forward(ids, MaskOf(ids), dec), labels);
      final_loss_ = loss.item<float>();
      if (final_loss_ < 0.01f) break;
      loss.backward();
      adam.step();
    }
    model_->eval();
  }
  static void TearDownTestSuite() { model_.reset(); }

  static torch::Tensor Inputs() {
    return Ids({{10, 11, 12, 1, 0}, {20, 21, 1, 0, 0}, {30, 31, 32, 33, 1}, {40, 1, 0, 0, 0}});
  }
  static Sequences Targets() { return {{50, 51, 1}, {60, 61, 62, 1}, {70, 1}, {80, 81, 82, 1}}; }

  static std::shared_ptr<T5Model> model_;
  static float final_loss_;
};
std::shared_ptr<T5Model> TrainedModelTest::model_;
float TrainedModelTest::final_loss_ = 0;

TEST_F(TrainedModelTest, GreedyAndBeamsReproduceTargets) {
  ASSERT_LT(final_loss_, 0.01f);
  GenerationOptions options;
  options.max_new_tokens = 10;
  EXPECT_EQ(MustGenerate(*model_, Inputs(), options), Targets());
  for (int beams : {2, 4}) {
    options.num_beams = beams;
    EXPECT_EQ(MustGenerate(*model_, Inputs(), options), Targets()) << beams << " beams";
  }
  absl::StatusOr<Sequences> one_beam =
      generation_internal::BeamSearch(*model_, Inputs(), MaskOf(Inputs()), {});
  ASSERT_TRUE(one_beam.ok()) << one_beam.status();
  EXPECT_EQ(*one_beam, Targets());
}

TEST_F(TrainedModelTest, ColdSamplingReproducesTargets) {
  GenerationOptions options;
  options.max_new_tokens = 10;
  options.temperature = 1e-3f;
  options.seed = 5;
  EXPECT_EQ(MustGenerate(*model_, Inputs(), options), Targets());
}

}  // namespace
}  // namespace distill::student
