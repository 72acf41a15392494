#include "services/distill/model_command.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/student/student.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/temp_dir.h"

namespace distill::services {
namespace {

using ::testing::HasSubstr;

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result Model(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = RunModel(args, out, err);
  return {code, out.str(), err.str()};
}

class ModelCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.path() + "/tiny";
    Result init = Model({"init", "--preset", "tiny", "--out", dir_, "--seed", "4"});
    ASSERT_EQ(init.code, 0) << init.err;
    EXPECT_THAT(init.out, HasSubstr("tiny preset"));
  }
  distill::testing::TempDir temp_;
  std::string dir_;
};

TEST_F(ModelCommandTest, InfoDescribesTheCheckpoint) {
  Result info = Model({"info", dir_, "--json"});
  ASSERT_EQ(info.code, 0) << info.err;
  nlohmann::json json = nlohmann::json::parse(info.out);
  EXPECT_EQ(json["family"], "t5");
  EXPECT_EQ(json["d_model"], 64);
  EXPECT_EQ(json["feed_forward_proj"], "gated-gelu");
  absl::StatusOr<student::Student> loaded = student::LoadStudent(dir_);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(json["parameters"], loaded->model->NumParameters());
  Result text = Model({"info", dir_});
  EXPECT_THAT(text.out, HasSubstr("num_heads: 4"));
}

TEST_F(ModelCommandTest, LogitsPrintsTheModelsFloat32Values) {
  Result logits = Model({"logits", dir_, "--input-ids", "5,6,7,1", "--decoder-input-ids", "0,9,10"});
  ASSERT_EQ(logits.code, 0) << logits.err;
  nlohmann::json json = nlohmann::json::parse(logits.out);
  absl::StatusOr<student::Student> loaded = student::LoadStudent(dir_);
  ASSERT_TRUE(loaded.ok());
  const int64_t vocab = loaded->model->vocab_size();
  EXPECT_EQ(json["shape"], nlohmann::json({1, 3, vocab}));
  ASSERT_EQ(json["values"].size(), static_cast<size_t>(3 * vocab));
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::tensor({5, 6, 7, 1}, torch::kInt64).view({1, 4});
  const torch::Tensor labels = torch::tensor({9, 10, 1}, torch::kInt64).view({1, 3});  // decoder input 0,9,10
  const torch::Tensor expected = loaded->model->TargetLogits(ids, torch::ones_like(ids), labels).contiguous();
  const float* values = expected.data_ptr<float>();
  for (int64_t i = 0; i < expected.numel(); ++i) {
    ASSERT_EQ(json["values"][i].get<float>(), values[i]) << i;  // printed with round-trip precision
  }
}

TEST_F(ModelCommandTest, GenerateOneLinePerInput) {
  const std::string file = temp_.File("inputs.txt");
  std::ofstream(file) << "Tom has 3 apples.\nMary has 5 books.\n";
  Result out = Model({"generate", dir_, "--text", "How many?", "--text-file", file, "--max-new-tokens", "4",
                      "--objective", "step_by_step"});
  ASSERT_EQ(out.code, 0) << out.err;
  EXPECT_EQ(std::count(out.out.begin(), out.out.end(), '\n'), 3);
  Result beams = Model({"generate", dir_, "--text", "How many?", "--num-beams", "2", "--max-new-tokens", "3"});
  EXPECT_EQ(beams.code, 0) << beams.err;
  Result sampled = Model({"generate", dir_, "--text", "How many?", "--temperature", "0.7", "--seed", "3"});
  Result again = Model({"generate", dir_, "--text", "How many?", "--temperature", "0.7", "--seed", "3"});
  EXPECT_EQ(sampled.out, again.out);
}

TEST_F(ModelCommandTest, BadInputGetsExitCodeTwoAndNamesTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"logits", dir_, "--input-ids", "5,x", "--decoder-input-ids", "0"}, "--input-ids: \"x\""},
      {{"logits", dir_, "--input-ids", "5", "--decoder-input-ids", "0,99999"}, "--decoder-input-ids: id 99999"},
      {{"logits", dir_, "--input-ids", "5"}, "--decoder-input-ids: at least one id"},
      {{"generate", dir_}, "--text or --text-file is required"},
      {{"generate", dir_, "--text", "a", "--explain"}, "--explain"},
      {{"generate", dir_, "--text", "a", "--objective", "magic"}, "objective"},
      {{"generate", dir_, "--text", "a", "--top-p", "0"}, "top_p"},
      {{"generate", dir_, "--text", "a", "--temperature", "-1"}, "temperature"},
      {{"info"}, "missing the checkpoint directory"},
      {{"info", temp_.path() + "/none"}, "config.json"},
      {{"init", "--preset", "giant", "--out", temp_.File("x")}, "unknown preset \"giant\""},
      {{"init", "--out", temp_.File("x")}, "--preset is required"},
      {{"init", "--preset", "tiny", "--out", temp_.File("x"), "--vocab-from", temp_.File("none")}, "--vocab-from"},
      {{"frobnicate"}, "unknown command"},
  };
  for (const Case& c : cases) {
    Result r = Model(c.args);
    EXPECT_EQ(r.code, 2) << c.args[0] << " " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args[0];
  }
  EXPECT_EQ(Model({"init", "--help"}).code, 0);
}

TEST_F(ModelCommandTest, InitTrainsTheVocabularyFromAFile) {
  const std::string corpus = temp_.File("records.jsonl");
  {
    std::ofstream out(corpus);
    for (int i = 0; i < 200; ++i) {
      out << R"({"input": "Sam has )" << i << R"( kites and buys )" << i % 7 << R"( more.", "label_target": ")"
          << i + i % 7 << "\"}\n";
    }
  }
  const std::string out_dir = temp_.path() + "/from_corpus";
  Result init = Model({"init", "--preset", "tiny", "--out", out_dir, "--vocab-from", corpus});
  ASSERT_EQ(init.code, 0) << init.err;
  absl::StatusOr<student::Student> loaded = student::LoadStudent(out_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->tokenizer->Decode(loaded->tokenizer->Encode("Sam has 3 kites")), "Sam has 3 kites");
  // Reusing that spiece.model keeps it byte for byte.
  const std::string reuse = temp_.path() + "/reuse";
  ASSERT_EQ(Model({"init", "--preset", "tiny", "--out", reuse, "--vocab-from", out_dir + "/spiece.model"}).code, 0);
  EXPECT_EQ(student::LoadStudent(reuse)->tokenizer->SerializedModel(), loaded->tokenizer->SerializedModel());
}

}  // namespace
}  // namespace distill::services
