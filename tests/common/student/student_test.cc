#include "common/student/student.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "common/student/checkpoint/file_io.h"
#include "common/student/checkpoint/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace distill::student {
namespace {

using ::distill::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::shared_ptr<const Tokenizer> SmallTokenizer() {
  auto tokenizer = BuiltinTokenizer(200);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::shared_ptr<const Tokenizer>(std::move(*tokenizer));
}

Student TinyStudent(uint64_t seed = 3) {
  auto student = InitStudent(TinyT5Config(), SmallTokenizer(), seed, /*fit_vocab=*/true);
  EXPECT_TRUE(student.ok()) << student.status();
  return *student;
}

void Overwrite(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

TEST(PresetTest, KnownPresetsAndAClearErrorForOthers) {
  EXPECT_EQ(PresetConfig("tiny")->d_model, TinyT5Config().d_model);
  EXPECT_EQ(PresetConfig("small")->d_ff, SmallT5Config().d_ff);
  absl::StatusOr<T5Config> base = PresetConfig("base");
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->d_model, 768);
  EXPECT_EQ(base->num_layers, 12);
  EXPECT_TRUE(ValidateT5Config(*base).ok());
  EXPECT_THAT(PresetConfig("xl").status().message(), AllOf(HasSubstr("\"xl\""), HasSubstr("tiny, mini, small, base")));
  absl::StatusOr<T5Config> mini = PresetConfig("mini");
  ASSERT_TRUE(mini.ok());
  EXPECT_EQ(mini->d_model, 256);
  EXPECT_TRUE(ValidateT5Config(*mini).ok());
  EXPECT_EQ(PresetNames(), (std::vector<std::string>{"tiny", "mini", "small", "base"}));
}

TEST(BuiltinTokenizerTest, DeterministicAndSized) {
  auto a = BuiltinTokenizer(200), b = BuiltinTokenizer(200);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->SerializedModel(), (*b)->SerializedModel());
  EXPECT_EQ((*a)->vocab_size(), 200);
  EXPECT_EQ((*a)->Decode((*a)->Encode("Mary has 12 apples.")), "Mary has 12 apples.");
}

TEST(InitStudentTest, FitsTheVocabularyAndIsSeeded) {
  Student a = TinyStudent(5), b = TinyStudent(5), c = TinyStudent(6);
  EXPECT_EQ(a.model->vocab_size(), 200);
  const SafetensorsFile wa = a.model->ExportWeights(), wb = b.model->ExportWeights(), wc = c.model->ExportWeights();
  EXPECT_EQ(wa.tensors.at("shared.weight").bytes, wb.tensors.at("shared.weight").bytes);
  EXPECT_NE(wa.tensors.at("shared.weight").bytes, wc.tensors.at("shared.weight").bytes);
  // Parameters counted once each, equal to the exported tensors' elements.
  int64_t exported = 0;
  for (const auto& [name, tensor] : wa.tensors) exported += NumElements(tensor.shape);
  EXPECT_EQ(a.model->NumParameters(), exported);

  // Without fitting, a model smaller than the tokenizer is refused.
  T5Config small_vocab = TinyT5Config();
  small_vocab.vocab_size = 100;
  EXPECT_THAT(InitStudent(small_vocab, SmallTokenizer(), 1, false).status().message(), HasSubstr("vocab_size"));
}

TEST(SaveLoadTest, RoundTripIsBitExactAndBehavesTheSame) {
  TempDir dir;
  Student saved = TinyStudent();
  ASSERT_TRUE(SaveStudent(saved, dir.path() + "/ckpt").ok());
  absl::StatusOr<Student> loaded = LoadStudent(dir.path() + "/ckpt");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->model->family(), "t5");
  EXPECT_EQ(loaded->model->ConfigJson(), saved.model->ConfigJson());
  EXPECT_EQ(loaded->tokenizer->SerializedModel(), saved.tokenizer->SerializedModel());
  const SafetensorsFile a = saved.model->ExportWeights(), b = loaded->model->ExportWeights();
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, tensor] : a.tensors) EXPECT_EQ(tensor.bytes, b.tensors.at(name).bytes) << name;

  saved.model->module().eval();
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::tensor({{5, 6, 7, 1}}, torch::kInt64);
  torch::Tensor labels = torch::tensor({{8, 9, 1}}, torch::kInt64);
  torch::Tensor mask = torch::ones_like(ids);
  EXPECT_TRUE(torch::equal(saved.model->TargetLogits(ids, mask, labels), loaded->model->TargetLogits(ids, mask, labels)));
}

TEST(LoadStudentTest, BadDirectoriesFailNamingTheFile) {
  TempDir dir;
  const std::string ckpt = dir.path() + "/ckpt";
  EXPECT_EQ(LoadStudent(ckpt).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(LoadStudent(ckpt).status().message(), HasSubstr("config.json"));

  Student student = TinyStudent();
  ASSERT_TRUE(SaveStudent(student, ckpt).ok());
  const std::string config = ckpt + "/config.json";
  const std::string original = *ReadFileToString(config);

  Overwrite(config, R"({"model_type": "llama"})");
  EXPECT_THAT(LoadStudent(ckpt).status().message(), AllOf(HasSubstr("config.json"), HasSubstr("llama")));
  Overwrite(config, "{not json");
  EXPECT_THAT(LoadStudent(ckpt).status().message(), HasSubstr("config.json"));

  // A config whose shape differs from the weights: every mismatch named with both shapes.
  T5Config wider = TinyT5Config();
  wider.vocab_size = 200;
  wider.d_ff = 96;
  ASSERT_TRUE(WriteT5Config(config, wider).ok());
  absl::Status mismatch = LoadStudent(ckpt).status();
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.message(), AllOf(HasSubstr("model.safetensors"), HasSubstr("wi_0.weight"),
                                        HasSubstr("[96, 64]"), HasSubstr("[128, 64]")));
  Overwrite(config, original);

  // A missing tensor.
  SafetensorsFile weights = *ReadSafetensors(ckpt + "/model.safetensors");
  weights.tensors.erase("decoder.final_layer_norm.weight");
  ASSERT_TRUE(WriteSafetensors(ckpt + "/model.safetensors", weights).ok());
  EXPECT_THAT(LoadStudent(ckpt).status().message(), HasSubstr("decoder.final_layer_norm.weight"));

  // A truncated weights file.
  const std::string bytes = *SerializeSafetensors(student.model->ExportWeights());
  Overwrite(ckpt + "/model.safetensors", bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(LoadStudent(ckpt).status().message(), HasSubstr("model.safetensors"));
  Overwrite(ckpt + "/model.safetensors", bytes);
  EXPECT_TRUE(LoadStudent(ckpt).ok());

  // No tokenizer.
  std::filesystem::remove(ckpt + "/spiece.model");
  EXPECT_THAT(LoadStudent(ckpt).status().message(), HasSubstr("spiece.model"));
}

}  // namespace
}  // namespace distill::student
