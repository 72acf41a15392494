#include "common/student/student.h"

#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "c10/util/Exception.h"
#include "common/status/macros.h"
#include "common/student/checkpoint/file_io.h"
#include "common/student/checkpoint/safetensors.h"
#include "common/strings/strings.h"
#include "nlohmann/json.hpp"
#include "torch/utils.h"

namespace distill::student {
namespace {

std::string JoinPath(const std::string& dir, std::string_view file) {
  return (std::filesystem::path(dir) / std::string(file)).string();
}

// config.json's model_type, before parsing it as a particular family.
absl::StatusOr<std::string> ModelType(const std::string& config_text, const std::string& path) {
  nlohmann::json json = nlohmann::json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(strings::Cat(path, ": not a JSON object"));
  }
  auto it = json.find("model_type");
  if (it == json.end()) return std::string("t5");  // transformers' T5Config.to_json always writes it
  if (!it->is_string()) return absl::InvalidArgumentError(strings::Cat(path, ": model_type: must be a string"));
  return it->get<std::string>();
}

}  // namespace

std::vector<std::string> PresetNames() { return {"tiny", "mini", "small", "base"}; }

absl::StatusOr<T5Config> PresetConfig(std::string_view preset) {
  if (preset == "tiny") return TinyT5Config();
  if (preset == "mini") {
    // Between the test model and t5-small: trains at thousands of examples per minute on two cores, for
    // demos and quick experiments from scratch.
    T5Config c = SmallT5Config();
    c.d_model = 256;
    c.d_kv = 64;
    c.d_ff = 512;
    c.num_layers = 4;
    c.num_decoder_layers = 4;
    c.num_heads = 4;
    return c;
  }
  if (preset == "small") return SmallT5Config();
  if (preset == "base") {
    T5Config c = SmallT5Config();
    c.d_model = 768;
    c.d_ff = 2048;
    c.num_layers = 12;
    c.num_decoder_layers = 12;
    c.num_heads = 12;
    return c;
  }
  return absl::InvalidArgumentError(
      strings::Cat("preset: unknown preset \"", preset, "\"; known presets: tiny, mini, small, base"));
}

absl::StatusOr<Student> LoadStudent(const std::string& dir) {
  const std::string config_path = JoinPath(dir, kConfigFile);
  ASSIGN_OR_RETURN(std::string config_text, ReadFileToString(config_path));
  ASSIGN_OR_RETURN(std::string model_type, ModelType(config_text, config_path));
  if (model_type != "t5") {
    return absl::InvalidArgumentError(strings::Cat(config_path, ": model_type: \"", model_type,
                                                   "\" is not supported (supported: t5)"));
  }
  ASSIGN_OR_RETURN(T5Config config, ParseT5Config(config_text, config_path));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::Load(JoinPath(dir, kTokenizerFile)));
  ASSIGN_OR_RETURN(SafetensorsFile weights, ReadSafetensors(JoinPath(dir, kWeightsFile)));
  ASSIGN_OR_RETURN(std::shared_ptr<T5Model> model, T5Model::Create(config));
  model->eval();
  auto student = std::make_shared<T5Student>(std::move(model));
  absl::Status loaded = student->LoadWeights(weights);
  if (!loaded.ok()) {
    return absl::Status(loaded.code(), strings::Cat(JoinPath(dir, kWeightsFile), ": ", loaded.message()));
  }
  return Student{std::move(student), std::move(tokenizer)};
}

absl::Status SaveStudent(const Student& student, const std::string& dir) {
  if (student.model == nullptr || student.tokenizer == nullptr) {
    return absl::InvalidArgumentError("SaveStudent: the student has no model or no tokenizer");
  }
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::InternalError(strings::Cat(dir, ": cannot create directory: ", error.message()));
  RETURN_IF_ERROR(WriteSafetensors(JoinPath(dir, kWeightsFile), student.model->ExportWeights()));
  RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, kTokenizerFile), student.tokenizer->SerializedModel()));
  return WriteFileAtomically(JoinPath(dir, kConfigFile), student.model->ConfigJson());
}

absl::StatusOr<Student> InitStudent(T5Config config, std::shared_ptr<const Tokenizer> tokenizer, uint64_t seed,
                                    bool fit_vocab) {
  if (tokenizer == nullptr) return absl::InvalidArgumentError("InitStudent: no tokenizer");
  const int tokens = tokenizer->vocab_size() + tokenizer->sentinel_count();
  if (fit_vocab) {
    config.vocab_size = tokens;
  } else if (config.vocab_size < tokenizer->vocab_size()) {
    return absl::InvalidArgumentError(strings::Cat("vocab_size: the model's ", config.vocab_size,
                                                   " rows cannot hold the tokenizer's ", tokenizer->vocab_size(),
                                                   " pieces"));
  }
  torch::manual_seed(seed);
  ASSIGN_OR_RETURN(std::shared_ptr<T5Model> model, T5Model::Create(config));
  return Student{std::make_shared<T5Student>(std::move(model)), std::move(tokenizer)};
}

absl::StatusOr<std::unique_ptr<Tokenizer>> BuiltinTokenizer(int vocab_size) {
  // Sentences built from a few word lists, numbers and arithmetic, in a fixed order: enough text for a few
  // hundred pieces covering English letters, digits and punctuation.
  static constexpr const char* kSubjects[] = {"Mary", "John", "the teacher", "a farmer", "the store", "Tom",
                                              "each class", "the baker", "a team", "Lisa"};
  static constexpr const char* kVerbs[] = {"has", "buys", "sells", "gives away", "finds", "makes",
                                           "collects", "loses", "needs", "reads"};
  static constexpr const char* kObjects[] = {"apples", "books", "marbles", "cookies", "pencils", "tickets",
                                             "stamps", "balloons", "oranges", "cards"};
  static constexpr const char* kOps[] = {"+", "-", "*", "/"};
  std::vector<std::string> texts;
  for (int i = 0; i < 600; ++i) {
    const int a = (i * 37 + 11) % 1000;
    const int b = (i * 53 + 7) % 100 + 1;
    texts.push_back(strings::Cat(kSubjects[i % 10], " ", kVerbs[(i / 10) % 10], " ", a, " ",
                                 kObjects[(i / 3) % 10], ". How many ", kObjects[(i / 7) % 10],
                                 " are left? The answer is ", a, " ", kOps[i % 4], " ", b, " = ", a + b,
                                 ". Question: what is ", b, "? (yes, no, maybe) Explain: because of it!"));
  }
  TrainOptions options;
  options.vocab_size = vocab_size;
  options.hard_vocab_limit = false;
  return Tokenizer::Train(texts, options);
}

}  // namespace distill::student
