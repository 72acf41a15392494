#include "services/trainer/training/student_init.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <utility>

#include "c10/util/Exception.h"
#include "common/dataset/student_text.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "common/student/checkpoint/safetensors.h"
#include "torch/torch.h"

namespace distill::trainer {
namespace {

std::string JoinPath(const std::string& dir, std::string_view file) {
  return (std::filesystem::path(dir) / std::string(file)).string();
}

absl::Status Prefixed(const absl::Status& status, std::string_view prefix,
                      absl::StatusCode code = absl::StatusCode::kOk) {
  return absl::Status(code == absl::StatusCode::kOk ? status.code() : code,
                      strings::Cat(prefix, ": ", std::string(status.message())));
}

}  // namespace

std::vector<std::string> TokenizerCorpus(const std::vector<RecordLine>& records, v1::Objective objective) {
  std::vector<std::string> texts;
  std::set<std::string> seen;
  auto add = [&](std::string text) {
    if (!text.empty() && seen.insert(text).second) texts.push_back(std::move(text));
  };
  for (const RecordLine& r : records) {
    const v1::TrainingRecord& rec = r.record;
    if (objective == v1::OBJECTIVE_STEP_BY_STEP) {
      add(dataset::PredictInput(rec.input()));
      add(dataset::ExplainInput(rec.input()));
      add(rec.rationale_target());
    } else {
      add(rec.input());
    }
    add(rec.label_target());
  }
  return texts;
}

absl::StatusOr<std::unique_ptr<student::Tokenizer>> TrainRunTokenizer(const std::vector<std::string>& corpus,
                                                                      int vocab_size) {
  student::TrainOptions options;
  options.vocab_size = vocab_size;
  options.hard_vocab_limit = false;
  options.character_coverage = 1.0;
  options.split_digits = true;
  options.num_threads = 1;
  absl::StatusOr<std::unique_ptr<student::Tokenizer>> tokenizer = student::Tokenizer::Train(corpus, options);
  if (!tokenizer.ok()) return Prefixed(tokenizer.status(), "training the tokenizer on the dataset");
  return tokenizer;
}

int PresetVocabSize(const student::T5Config& preset, int requested) {
  return requested > 0 ? requested : std::min(preset.vocab_size, kDefaultVocabSize);
}

absl::StatusOr<student::Student> PresetStudent(const student::T5Config& preset,
                                               std::shared_ptr<const student::Tokenizer> tokenizer,
                                               uint64_t seed, std::optional<double> dropout_rate) {
  student::T5Config config = preset;
  if (dropout_rate) config.dropout_rate = *dropout_rate;
  ASSIGN_OR_RETURN(student::Student s,
                   student::InitStudent(config, std::move(tokenizer), seed, /*fit_vocab=*/true));
  if (!config.tie_word_embeddings) {
    try {
      torch::NoGradGuard no_grad;
      for (auto& item : s.model->module().named_parameters()) {
        if (item.key() == "lm_head.weight")
          item.value().mul_(1.0 / std::sqrt(static_cast<double>(config.d_model)));
      }
    } catch (const c10::Error& e) {
      return absl::InternalError(strings::Cat("scaling lm_head: ", e.what_without_backtrace()));
    }
  }
  s.model->module().train();
  return s;
}

absl::StatusOr<student::Student> LoadStudentDir(const std::string& dir, std::optional<double> dropout_rate,
                                                std::string_view field) {
  absl::StatusOr<student::T5Config> config = student::ReadT5Config(JoinPath(dir, student::kConfigFile));
  if (!config.ok()) return Prefixed(config.status(), field);
  if (dropout_rate) config->dropout_rate = *dropout_rate;
  absl::StatusOr<std::unique_ptr<student::Tokenizer>> tokenizer =
      student::Tokenizer::Load(JoinPath(dir, student::kTokenizerFile));
  if (!tokenizer.ok()) return Prefixed(tokenizer.status(), field);
  if ((*tokenizer)->vocab_size() > config->vocab_size) {
    return absl::FailedPreconditionError(
        strings::Cat(field, ": ", dir, ": spiece.model has ", (*tokenizer)->vocab_size(),
                     " pieces but config.json vocab_size is ", config->vocab_size));
  }
  const std::string weights_path = JoinPath(dir, student::kWeightsFile);
  absl::StatusOr<student::SafetensorsFile> weights = student::ReadSafetensors(weights_path);
  if (!weights.ok()) return Prefixed(weights.status(), field);
  absl::StatusOr<std::shared_ptr<student::T5Model>> model = student::T5Model::Create(*config);
  if (!model.ok()) return Prefixed(model.status(), field);
  auto t5 = std::make_shared<student::T5Student>(std::move(*model));
  absl::Status loaded = t5->LoadWeights(*weights);
  if (!loaded.ok()) {
    // The weights do not fit config.json: a checkpoint that does not match its config.
    const absl::StatusCode code = loaded.code() == absl::StatusCode::kInvalidArgument
                                      ? absl::StatusCode::kFailedPrecondition
                                      : loaded.code();
    return Prefixed(loaded, strings::Cat(field, ": ", dir), code);
  }
  t5->module().train();
  return student::Student{std::move(t5), std::move(*tokenizer)};
}

}  // namespace distill::trainer
