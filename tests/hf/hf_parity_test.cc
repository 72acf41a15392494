// Hugging Face parity (CTest label "hf"): distill's T5 against transformers' own, in the pinned virtualenv
// (scripts/python-requirements.txt), with tiny random models made here and no hub access.
//   - a distill export opens with T5ForConditionalGeneration.from_pretrained with no missing, unexpected or
//     mis-shaped keys; its logits, loss and greedy tokens equal distill's;
//   - a model written by transformers' save_pretrained opens in distill with equal logits and tokens;
//   - transformers' T5 tokenizers (slow and fast) give distill's ids on a mixed text set.
// Each case runs tests/hf/hf_reference.py as a child process and compares its JSON.

#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/student/student.h"
#include "common/student/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/paths.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "torch/torch.h"

namespace distill::student {
namespace {

using json = nlohmann::json;

constexpr double kLogitsRelTolerance = 1e-4;
constexpr double kLossRelTolerance = 1e-5;
constexpr int kMaxNewTokens = 8;

absl::StatusOr<json> RunReference(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {DISTILL_VENV_PYTHON,
                                   ::distill::testing::SourceDir() + "/tests/hf/hf_reference.py"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto child = testing::Subprocess::Start(argv);
  if (!child.ok()) return child.status();
  absl::StatusOr<int> status = (*child)->Wait(absl::Seconds(240));
  if (!status.ok()) return status.status();
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError("hf_reference.py failed:\n" + (*child)->Stderr());
  }
  json result = json::parse((*child)->PendingStdout(), nullptr, /*allow_exceptions=*/false);
  if (result.is_discarded()) {
    return absl::InternalError("hf_reference.py printed no JSON: " + (*child)->PendingStdout());
  }
  return result;
}

void WriteJson(const std::string& path, const json& value) { std::ofstream(path) << value.dump(); }

// A right-padded batch of 3 sources and labels (-100 where padded), ids drawn from [3, vocab).
struct Batch {
  torch::Tensor input_ids, attention_mask, labels;
  json ToJson() const {
    auto rows = [](const torch::Tensor& t) {
      json out = json::array();
      for (int64_t i = 0; i < t.size(0); ++i) {
        json row = json::array();
        for (int64_t j = 0; j < t.size(1); ++j) row.push_back(t[i][j].item<int64_t>());
        out.push_back(row);
      }
      return out;
    };
    return {{"input_ids", rows(input_ids)},
            {"attention_mask", rows(attention_mask)},
            {"labels", rows(labels)},
            {"max_new_tokens", kMaxNewTokens}};
  }
};

Batch MakeBatch(int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  Batch b;
  b.input_ids = torch::randint(3, vocab, {3, 9}, torch::kInt64);
  b.attention_mask = torch::ones({3, 9}, torch::kInt64);
  b.labels = torch::randint(3, vocab, {3, 6}, torch::kInt64);
  const int64_t source_lengths[] = {9, 6, 2};
  const int64_t label_lengths[] = {6, 4, 1};
  for (int64_t i = 0; i < 3; ++i) {
    b.input_ids[i].narrow(0, source_lengths[i], 9 - source_lengths[i]).fill_(0);
    b.attention_mask[i].narrow(0, source_lengths[i], 9 - source_lengths[i]).fill_(0);
    b.labels[i][label_lengths[i] - 1] = 1;  // EOS ends each target
    b.labels[i].narrow(0, label_lengths[i], 6 - label_lengths[i]).fill_(-100);
  }
  return b;
}

// max |a - b| over max |b|.
double RelativeDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-12, b.abs().max().item<double>());
}

torch::Tensor LogitsFromJson(const json& result) {
  std::vector<int64_t> shape = result.at("logits_shape").get<std::vector<int64_t>>();
  std::vector<double> values = result.at("logits").get<std::vector<double>>();
  return torch::tensor(values, torch::kFloat64).reshape(shape);
}

struct DistillOutputs {
  torch::Tensor logits;  // float64
  double loss = 0;
  std::vector<std::vector<int>> greedy;
};

DistillOutputs RunDistill(StudentModel& model, const Batch& b) {
  DistillOutputs out;
  torch::NoGradGuard no_grad;
  model.module().eval();
  torch::Tensor logits = model.TargetLogits(b.input_ids, b.attention_mask, b.labels);
  out.logits = logits.to(torch::kFloat64);
  out.loss = T5Model::Loss(logits, b.labels).item<double>();
  GenerationOptions options = model.DefaultGenerationOptions();
  options.max_new_tokens = kMaxNewTokens;
  auto generated = model.Generate(b.input_ids, b.attention_mask, options);
  EXPECT_TRUE(generated.ok()) << generated.status();
  if (generated.ok()) out.greedy = *generated;
  return out;
}

// distill's logits, loss and greedy tokens against what hf_reference.py printed for the same batch.
void ExpectSameOutputs(const DistillOutputs& ours, const json& hf) {
  const torch::Tensor theirs = LogitsFromJson(hf);
  ASSERT_EQ(ours.logits.sizes(), theirs.sizes());
  EXPECT_LE(RelativeDiff(ours.logits, theirs), kLogitsRelTolerance);
  const double hf_loss = hf.at("loss").get<double>();
  EXPECT_NEAR(ours.loss, hf_loss, kLossRelTolerance * std::abs(hf_loss));
  EXPECT_EQ(json(ours.greedy), hf.at("greedy"));
}

std::shared_ptr<const Tokenizer> TestTokenizer() {
  auto tokenizer = BuiltinTokenizer(200);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::shared_ptr<const Tokenizer>(std::move(*tokenizer));
}

T5Config Layout(bool v1_1) {
  T5Config config = TinyT5Config();
  if (!v1_1) {  // the original T5: ReLU feed-forward (wi, wo), lm_head tied to the embedding
    config.feed_forward_proj = "relu";
    config.tie_word_embeddings = true;
  }
  return config;
}

class ExportTest : public ::testing::TestWithParam<bool> {};

TEST_P(ExportTest, OpensInTransformersWithEqualLogitsLossAndTokens) {
  testing::TempDir dir("hf_export");
  ASSERT_FALSE(dir.path().empty());
  auto student = InitStudent(Layout(GetParam()), TestTokenizer(), /*seed=*/7, /*fit_vocab=*/true);
  ASSERT_TRUE(student.ok()) << student.status();
  {
    // A wider spread than the initialiser's, so that logits differ clearly between tokens and greedy
    // decoding has no near-ties.
    torch::NoGradGuard no_grad;
    torch::manual_seed(11);
    for (torch::Tensor& p : student->model->module().parameters()) p.normal_(0.0, 0.5);
  }
  ASSERT_TRUE(SaveStudent(*student, dir.path()).ok());
  const Batch batch = MakeBatch(student->model->vocab_size(), 3);
  WriteJson(dir.File("request.json"), batch.ToJson());
  absl::StatusOr<json> hf =
      RunReference({"export", "--dir", dir.path(), "--request", dir.File("request.json")});
  ASSERT_TRUE(hf.ok()) << hf.status();

  EXPECT_EQ(hf->at("missing_keys"), json::array()) << hf->at("missing_keys").dump();
  EXPECT_EQ(hf->at("unexpected_keys"), json::array()) << hf->at("unexpected_keys").dump();
  EXPECT_EQ(hf->at("mismatched_keys"), json::array()) << hf->at("mismatched_keys").dump();

  ExpectSameOutputs(RunDistill(*student->model, batch), *hf);
}

INSTANTIATE_TEST_SUITE_P(Layouts, ExportTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "V1_1Gated" : "OriginalReluTied"; });

class ImportTest : public ::testing::TestWithParam<bool> {};

TEST_P(ImportTest, SavePretrainedOpensInDistillWithEqualLogits) {
  testing::TempDir dir("hf_import");
  ASSERT_FALSE(dir.path().empty());
  const T5Config layout = Layout(GetParam());
  const Batch batch = MakeBatch(layout.vocab_size, 5);
  json request = batch.ToJson();
  request["seed"] = 13;
  request["config"] = {{"vocab_size", layout.vocab_size},
                       {"d_model", layout.d_model},
                       {"d_kv", layout.d_kv},
                       {"d_ff", layout.d_ff},
                       {"num_layers", layout.num_layers},
                       {"num_decoder_layers", layout.num_decoder_layers},
                       {"num_heads", layout.num_heads},
                       {"feed_forward_proj", layout.feed_forward_proj},
                       {"tie_word_embeddings", layout.tie_word_embeddings},
                       {"decoder_start_token_id", 0},
                       {"pad_token_id", 0},
                       {"eos_token_id", 1}};
  WriteJson(dir.File("request.json"), request);
  absl::StatusOr<json> hf =
      RunReference({"make", "--dir", dir.path(), "--request", dir.File("request.json")});
  ASSERT_TRUE(hf.ok()) << hf.status();
  // transformers writes no tokenizer for a bare model; a student directory needs one.
  ASSERT_TRUE(TestTokenizer()->Save(dir.File(kTokenizerFile)).ok());

  auto student = LoadStudent(dir.path());
  ASSERT_TRUE(student.ok()) << student.status();
  ExpectSameOutputs(RunDistill(*student->model, batch), *hf);
}

INSTANTIATE_TEST_SUITE_P(Layouts, ImportTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "V1_1Gated" : "OriginalReluTied"; });

TEST(TokenizerParityTest, TransformersT5TokenizersGiveDistillIds) {
  testing::TempDir dir("hf_tokenizer");
  ASSERT_FALSE(dir.path().empty());
  std::shared_ptr<const Tokenizer> tokenizer = TestTokenizer();
  ASSERT_TRUE(tokenizer->Save(dir.File(kTokenizerFile)).ok());
  const std::vector<std::string> texts = {
      "How many apples does Tom have?",
      "Tom had 12 apples and gave 3.5 of them away; 8.5 remain.",
      "  leading, trailing   and    repeated     spaces  ",
      "tabs\tand\nnewlines\r\nin text",
      "Accents: café, naïve, façade, Ångström, São Paulo",
      "Unknown characters: 漢字, emoji \xF0\x9F\x99\x82, symbols \xE2\x82\xAC \xC2\xA7 \xE2\x88\x91",
      "Full-width digits \xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93 and ligature \xEF\xAC\x81",
      "12345678901234567890 + 0.000001 = ?",
      "",
      "UPPER lower MiXeD",
  };
  WriteJson(dir.File("request.json"), {{"texts", texts}, {"extra_ids", 0}});
  absl::StatusOr<json> hf =
      RunReference({"tokenize", "--spiece", dir.File(kTokenizerFile), "--request", dir.File("request.json")});
  ASSERT_TRUE(hf.ok()) << hf.status();
  for (size_t i = 0; i < texts.size(); ++i) {
    const json ours = tokenizer->Encode(texts[i]);
    EXPECT_EQ(ours, hf->at("slow")[i]) << "slow tokenizer, text " << i << ": \"" << texts[i] << "\"";
    EXPECT_EQ(ours, hf->at("fast")[i]) << "fast tokenizer, text " << i << ": \"" << texts[i] << "\"";
  }
}

}  // namespace
}  // namespace distill::student
