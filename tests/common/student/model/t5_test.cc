#include "common/student/model/t5.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "common/student/checkpoint/hf_names.h"
#include "common/student/model/t5_weights.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/student/model/t5_testing.h"
#include "torch/optim/adam.h"

namespace distill::student {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

torch::Tensor Ids(std::vector<std::vector<int64_t>> rows) {
  const int64_t width = rows[0].size();
  std::vector<int64_t> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  return torch::tensor(flat, torch::kInt64).view({static_cast<int64_t>(rows.size()), width});
}

TEST(T5ModelTest, CreateRejectsBadConfig) {
  T5Config config = TinyT5Config();
  config.d_model = 0;
  config.feed_forward_proj = "swish";
  absl::StatusOr<std::shared_ptr<T5Model>> model = T5Model::Create(config);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), AllOf(HasSubstr("d_model"), HasSubstr("feed_forward_proj")));
}

TEST(T5ModelTest, OutputShapes) {
  for (const T5Config& config : {TinyT5Config(), TiedReluConfig()}) {
    auto model = MakeModel(config);
    torch::NoGradGuard no_grad;
    torch::Tensor ids = torch::randint(3, config.vocab_size, {2, 7}, torch::kInt64);
    torch::Tensor mask = torch::ones({2, 7}, torch::kInt64);
    torch::Tensor dec = torch::randint(3, config.vocab_size, {2, 5}, torch::kInt64);
    torch::Tensor enc = model->Encode(ids, mask);
    EXPECT_EQ(enc.sizes().vec(), (std::vector<int64_t>{2, 7, config.d_model}));
    EXPECT_EQ(enc.scalar_type(), torch::kFloat32);
    torch::Tensor logits = model->Decode(dec, enc, mask);
    EXPECT_EQ(logits.sizes().vec(), (std::vector<int64_t>{2, 5, config.vocab_size}));
    EXPECT_TRUE(torch::equal(logits, model->Forward(ids, mask, dec)));
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  }
}

TEST(T5ModelTest, EncoderIgnoresPaddedPositions) {
  auto model = MakeModel(TinyT5Config());
  torch::NoGradGuard no_grad;
  torch::Tensor mask = Ids({{1, 1, 1, 1, 0, 0}, {1, 1, 0, 0, 0, 0}});
  torch::Tensor a = Ids({{5, 6, 7, 8, 0, 0}, {9, 10, 0, 0, 0, 0}});
  torch::Tensor b = Ids({{5, 6, 7, 8, 200, 17}, {9, 10, 77, 3, 4, 250}});
  torch::Tensor ea = model->Encode(a, mask);
  torch::Tensor eb = model->Encode(b, mask);
  EXPECT_TRUE(torch::allclose(ea[0].slice(0, 0, 4), eb[0].slice(0, 0, 4), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(ea[1].slice(0, 0, 2), eb[1].slice(0, 0, 2), 1e-6, 1e-6));
  // Sanity: the padded positions' tokens do matter when unmasked.
  torch::Tensor full = torch::ones_like(mask);
  EXPECT_FALSE(torch::allclose(model->Encode(a, full)[0].slice(0, 0, 4),
                               model->Encode(b, full)[0].slice(0, 0, 4), 1e-4, 1e-4));
  // Cross-attention ignores them too.
  torch::Tensor dec = Ids({{0, 4, 5}, {0, 6, 7}});
  EXPECT_TRUE(torch::allclose(model->Decode(dec, ea, mask), model->Decode(dec, eb, mask), 1e-5, 1e-5));
}

TEST(T5ModelTest, DecoderIsCausal) {
  for (const T5Config& config : {TinyT5Config(), TiedReluConfig()}) {
    auto model = MakeModel(config);
    torch::NoGradGuard no_grad;
    torch::Tensor ids = Ids({{5, 6, 7, 8, 1}});
    torch::Tensor mask = torch::ones_like(ids);
    torch::Tensor dec = Ids({{0, 10, 11, 12, 13, 14}});
    torch::Tensor base = model->Forward(ids, mask, dec);
    for (int64_t t = 1; t < 6; ++t) {
      torch::Tensor changed = dec.clone();
      changed[0][t] = 99;
      torch::Tensor logits = model->Forward(ids, mask, changed);
      EXPECT_TRUE(torch::equal(base.slice(1, 0, t), logits.slice(1, 0, t))) << "t=" << t;
      EXPECT_FALSE(torch::allclose(base.slice(1, t, t + 1), logits.slice(1, t, t + 1))) << "t=" << t;
    }
  }
}

TEST(T5ModelTest, RelativePositionBuckets) {
  torch::Tensor positions = torch::tensor({0, 1, -1, 7, 8, 20, -200, 300, -8, -20}, torch::kInt64);
  auto values = [](const torch::Tensor& t) {
    return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
  };
  // Bidirectional: 16 buckets per direction, 8 exact; positive offsets start at 16.
  // 20 -> 8 + int(log(20/8) / log(128/8) * 8) = 8 + 2; -200 -> 8 + int(9.29) = 17 -> capped at 15.
  EXPECT_EQ(values(RelativePositionBucket(positions, /*bidirectional=*/true, 32, 128)),
            (std::vector<int64_t>{0, 17, 1, 23, 24, 26, 15, 31, 8, 10}));
  // Causal: the future (> 0) is bucket 0; 32 buckets for the past, 16 exact.
  // -20 -> 16 + int(log(20/16) / log(128/16) * 16) = 16 + 1; -200 -> 16 + int(19.4) = 35 -> capped at 31.
  EXPECT_EQ(values(RelativePositionBucket(positions, /*bidirectional=*/false, 32, 128)),
            (std::vector<int64_t>{0, 0, 1, 0, 0, 0, 31, 0, 8, 17}));
}

TEST(T5ModelTest, NamedParametersMatchHuggingFaceNames) {
  for (const T5Config& config : {TinyT5Config(), TiedReluConfig()}) {
    auto model = MakeModel(config);
    std::map<std::string, std::vector<int64_t>> actual;
    for (const auto& item : model->named_parameters()) actual[item.key()] = item.value().sizes().vec();
    const ParameterShapes expected_list = T5ParameterShapes(config);
    std::map<std::string, std::vector<int64_t>> expected(expected_list.begin(), expected_list.end());
    EXPECT_EQ(actual, expected) << config.feed_forward_proj;
    EXPECT_EQ(model->named_parameters().size(), expected_list.size());
  }
}

TEST(T5ModelTest, ExportLoadRoundTripIsBitExact) {
  for (const T5Config& config : {TinyT5Config(), TiedReluConfig()}) {
    auto source = MakeModel(config, /*seed=*/1);
    auto target = MakeModel(config, /*seed=*/2);
    SafetensorsFile file = ExportWeights(*source);
    EXPECT_EQ(file.tensors.count("lm_head.weight"), config.tie_word_embeddings ? 0u : 1u);
    EXPECT_EQ(file.tensors.size(), T5ParameterShapes(config).size());
    // Through the serialized bytes, as a save and a load would go.
    absl::StatusOr<std::string> bytes = SerializeSafetensors(file);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    absl::StatusOr<SafetensorsFile> parsed = ParseSafetensors(*bytes, "round_trip");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ASSERT_TRUE(LoadWeights(*target, *parsed).ok());

    torch::NoGradGuard no_grad;
    torch::Tensor ids = Ids({{5, 6, 7, 8, 1}, {9, 10, 1, 0, 0}});
    torch::Tensor mask = Ids({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}});
    torch::Tensor dec = Ids({{0, 3, 4}, {0, 5, 6}});
    EXPECT_TRUE(torch::equal(source->Forward(ids, mask, dec), target->Forward(ids, mask, dec)));
  }
}

TEST(T5ModelTest, LoadWeightsAcceptsEmbedTokensAliasAndHalfPrecision) {
  const T5Config config = TinyT5Config();
  auto source = MakeModel(config, 1);
  auto target = MakeModel(config, 2);
  SafetensorsFile file = ExportWeights(*source);
  Tensor shared = file.tensors.at("shared.weight");
  file.tensors.erase("shared.weight");
  file.tensors["encoder.embed_tokens.weight"] = FromFloat32(ToFloat32(shared), shared.shape, DType::kBF16);
  ASSERT_TRUE(LoadWeights(*target, file).ok());
  torch::Tensor expected =
      source->named_parameters()["shared.weight"].to(torch::kBFloat16).to(torch::kFloat32);
  EXPECT_TRUE(torch::equal(target->named_parameters()["shared.weight"], expected));
}

TEST(T5ModelTest, LoadWeightsNamesMissingAndMisshapedTensors) {
  const T5Config config = TinyT5Config();
  auto model = MakeModel(config);
  SafetensorsFile file = ExportWeights(*model);
  file.tensors.erase("decoder.block.1.layer.2.DenseReluDense.wi_1.weight");
  file.tensors["encoder.block.0.layer.0.SelfAttention.q.weight"] =
      Tensor{DType::kF32, {64, 32}, std::string(64 * 32 * 4, '\0')};
  absl::Status status = LoadWeights(*model, file);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("decoder.block.1.layer.2.DenseReluDense.wi_1.weight"),
                                      HasSubstr("encoder.block.0.layer.0.SelfAttention.q.weight"),
                                      HasSubstr("[64, 32]"), HasSubstr("[64, 64]")));
}

TEST(T5ModelTest, LossIgnoresMinus100) {
  torch::Tensor logits = torch::randn({1, 3, 8});
  torch::Tensor labels = Ids({{2, -100, 5}});
  torch::Tensor two =
      T5Model::Loss(logits.slice(1, 0, 1), Ids({{2}})) + T5Model::Loss(logits.slice(1, 2, 3), Ids({{5}}));
  EXPECT_NEAR(T5Model::Loss(logits, labels).item<float>(), two.item<float>() / 2, 1e-5);
}

// Training mode runs fused kernels (projections concatenated into one matmul, RmsNorm's single-node
// backward); without dropout it must compute what eval mode's plain libtorch ops compute, gradients included.
TEST(T5ModelTest, TrainingPathMatchesPlainOpsWithoutDropout) {
  for (T5Config config : {TinyT5Config(), TiedReluConfig()}) {
    config.dropout_rate = 0.0;
    auto model = MakeModel(config, 3);
    torch::Tensor ids = torch::randint(3, config.vocab_size, {3, 9}, torch::kInt64);
    torch::Tensor mask = torch::ones({3, 9}, torch::kInt64);
    mask[2].narrow(0, 5, 4).fill_(0);
    torch::Tensor labels = torch::randint(3, config.vocab_size, {3, 6}, torch::kInt64);
    torch::Tensor dec = torch::randint(3, config.vocab_size, {3, 6}, torch::kInt64);
    auto loss_and_grads = [&](bool train) {
      model->train(train);
      model->zero_grad();
      torch::Tensor loss = T5Model::Loss(model->Forward(ids, mask, dec), labels);
      loss.backward();
      std::map<std::string, torch::Tensor> grads;
      for (const auto& item : model->named_parameters()) grads[item.key()] = item.value().grad().clone();
      return std::make_pair(loss.item<double>(), grads);
    };
    auto [train_loss, train_grads] = loss_and_grads(true);
    auto [eval_loss, eval_grads] = loss_and_grads(false);
    EXPECT_NEAR(train_loss, eval_loss, 1e-5);
    // Float rounding differs (one GEMM instead of three sums differently), so relative to each gradient's
    // scale.
    for (const auto& [name, grad] : eval_grads) {
      const double diff = (train_grads[name] - grad).abs().max().item<double>();
      const double scale = grad.abs().max().item<double>();
      EXPECT_LE(diff, 1e-5 * scale + 1e-8) << name << " max |diff| " << diff << ", max |grad| " << scale;
    }
  }
}

TEST(T5ModelTest, TinyModelOverfitsFourPairs) {
  T5Config config = TinyT5Config();
  config.dropout_rate = 0.0;
  auto model = MakeModel(config, 7);
  model->train();
  // (input -> target) pairs, padded with 0; labels are the targets with -100 under padding and the decoder
  // inputs the labels shifted right behind the start token 0.
  torch::Tensor ids = Ids({{10, 11, 12, 1, 0}, {20, 21, 1, 0, 0}, {30, 31, 32, 33, 1}, {40, 1, 0, 0, 0}});
  torch::Tensor mask = ids.ne(0).to(torch::kInt64);
  torch::Tensor labels = Ids({{50, 51, 1, -100}, {60, 61, 62, 1}, {70, 1, -100, -100}, {80, 81, 82, 1}});
  torch::Tensor dec = Ids({{0, 50, 51, 1}, {0, 60, 61, 62}, {0, 70, 1, 0}, {0, 80, 81, 82}});
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(3e-3));
  float loss_value = 1e9;
  int step = 0;
  // Stops as soon as the current parameters reach the target loss, so the model checked below is the one
  // whose loss was measured.
  for (; step <= 300; ++step) {
    adam.zero_grad();
    torch::Tensor loss = T5Model::Loss(model->Forward(ids, mask, dec), labels);
    loss_value = loss.item<float>();
    if (std::getenv("T5_TEST_VERBOSE") != nullptr) std::printf("step %d loss %f\n", step, loss_value);
    if (loss_value < 0.1f || step == 300) break;
    loss.backward();
    adam.step();
  }
  EXPECT_LT(loss_value, 0.1f) << "after " << step << " steps";
  RecordProperty("steps", step);

  // The learned mapping, read back greedily position by position.
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor predicted = model->Forward(ids, mask, dec).argmax(-1);
  torch::Tensor scored = labels.ne(-100);
  EXPECT_TRUE(torch::equal(predicted.masked_select(scored), labels.masked_select(scored)));
}

}  // namespace
}  // namespace distill::student
