#include "services/inference/serving/served_model.h"

#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/artifacts/artifacts.h"
#include "common/dataset/example_json.h"
#include "common/dataset/student_text.h"
#include "common/status/macros.h"
#include "common/student/checkpoint/file_io.h"
#include "common/student/model/student_model.h"
#include "common/student/runtime/device.h"
#include "common/student/student.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace distill::inference {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int kMaxBeams = 16;

// The first value of `key` anywhere in `value` (depth first), if it is a positive integer.
std::optional<int> FindPositiveInt(const json& value, const std::string& key) {
  if (value.is_object()) {
    if (auto it = value.find(key); it != value.end() && it->is_number_integer() && it->get<int64_t>() > 0) {
      return static_cast<int>(it->get<int64_t>());
    }
    for (const auto& [name, child] : value.items()) {
      if (std::optional<int> found = FindPositiveInt(child, key)) return found;
    }
  }
  return std::nullopt;
}

struct Manifest {
  v1::Objective objective = v1::OBJECTIVE_UNSPECIFIED;
  std::optional<v1::TaskSpec> task;
  std::optional<int> max_source_tokens;
};

absl::StatusOr<Manifest> ReadManifest(const std::string& dir) {
  Manifest manifest;
  const std::string path = (fs::path(dir) / "manifest.json").string();
  if (!fs::exists(path)) return manifest;
  ASSIGN_OR_RETURN(std::string text, student::ReadFileToString(path));
  json m = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!m.is_object()) return absl::FailedPreconditionError(absl::StrCat(path, ": not a JSON object"));
  if (m.contains("objective") && m["objective"].is_string()) {
    if (!v1::Objective_Parse(m["objective"].get<std::string>(), &manifest.objective)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": objective: unknown value \"", m["objective"].get<std::string>(), "\""));
    }
  }
  if (m.contains("task") && m["task"].is_object()) {
    v1::TaskSpec task;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    const auto status = google::protobuf::util::JsonStringToMessage(m["task"].dump(), &task, options);
    if (!status.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": task: ", std::string(status.message())));
    }
    manifest.task = task;
  }
  // The trainer writes its RunSpec with the proto's own (snake_case) field names.
  if (m.contains("spec")) manifest.max_source_tokens = FindPositiveInt(m["spec"], "max_source_tokens");
  return manifest;
}

v1::Example ExampleOf(const GenerationAsk& ask) {
  v1::Example example;
  example.set_input(ask.input);
  *example.mutable_choices() = ask.choices;
  return example;
}

}  // namespace

v1::FinishReason FinishReasonOf(StopReason finish) {
  switch (finish) {
    case StopReason::kEos:
      return v1::FINISH_REASON_STOP;
    case StopReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case StopReason::kNone:
      break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

absl::StatusOr<std::shared_ptr<ServedModel>> ServedModel::Load(const v1::LoadModelRequest& request,
                                                                const std::string& dir,
                                                                const ServingOptions& options) {
  auto precondition = [&](const absl::Status& status) {
    return absl::FailedPreconditionError(absl::StrCat("artifact ", request.artifact().uri(), ": ", status.message()));
  };
  absl::StatusOr<student::DeviceRequest> device_request =
      student::ParseDeviceRequest(request.device(), "device");
  if (!device_request.ok()) return device_request.status();
  absl::StatusOr<torch::Device> device =
      student::ResolveDevice(*device_request, /*gpu_for_cuda=*/0, "device");
  if (!device.ok()) return device.status();
  if (!fs::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("artifact.uri: ", request.artifact().uri(), ": no such model directory"));
  }
  if (!request.artifact().content_hash().empty()) {
    absl::Status verified = artifacts::VerifyContentHash((fs::path(dir) / "manifest.json").string(),
                                                          request.artifact().content_hash(), "artifact");
    if (!verified.ok()) return precondition(verified);
  }
  absl::StatusOr<Manifest> manifest = ReadManifest(dir);
  if (!manifest.ok()) return precondition(manifest.status());
  absl::StatusOr<student::Student> student = student::LoadStudent(dir);
  if (!student.ok()) return precondition(student.status());
  if (dynamic_cast<student::T5Student*>(student->model.get()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("artifact ", request.artifact().uri(), ": model family \"",
                                                      std::string(student->model->family()), "\" cannot be served"));
  }
  student->model->module().eval();
  if (!device->is_cpu()) {
    try {
      student->model->module().to(*device);
    } catch (const c10::Error& e) {
      return absl::FailedPreconditionError(
          absl::StrCat("device: moving the model to ", device->str(), ": ", e.what_without_backtrace()));
    }
  }

  std::shared_ptr<ServedModel> model(new ServedModel());
  model->options_ = options;
  model->tokenizer_ = student->tokenizer;
  const student::GenerationOptions defaults = student->model->DefaultGenerationOptions();
  model->eos_id_ = defaults.eos_id;
  model->decoder_start_id_ = defaults.decoder_start_id;

  v1::ModelInfo& info = model->info_;
  info.set_name(request.name());
  info.set_version(request.version());
  *info.mutable_artifact() = request.artifact();
  info.set_objective(request.objective() != v1::OBJECTIVE_UNSPECIFIED ? request.objective()
                     : manifest->objective != v1::OBJECTIVE_UNSPECIFIED ? manifest->objective
                                                                          : v1::OBJECTIVE_STANDARD);
  if (request.has_task()) {
    *info.mutable_task() = request.task();
  } else if (manifest->task.has_value()) {
    *info.mutable_task() = *manifest->task;
  }
  if (info.task().type() != v1::TASK_TYPE_UNSPECIFIED) {
    absl::StatusOr<curator::AnswerNormalizer> normalizer = curator::AnswerNormalizer::Create(info.task());
    if (!normalizer.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("task: ", normalizer.status().message()));
    }
    model->normalizer_ = std::move(*normalizer);
  }
  info.set_parameters(student->model->NumParameters());
  info.set_max_input_tokens(manifest->max_source_tokens.value_or(options.max_input_tokens));
  model->engine_ = std::make_unique<Engine>(std::move(*student), options.engine);
  return model;
}

absl::StatusOr<PreparedRequest> ServedModel::Prepare(const GenerationAsk& ask) const {
  std::vector<std::string> problems;
  const v1::SamplingParams& s = ask.sampling;
  student::GenerationOptions o;
  o.eos_id = eos_id_;
  o.decoder_start_id = decoder_start_id_;
  o.max_new_tokens = s.max_new_tokens() > 0 ? s.max_new_tokens() : options_.default_max_new_tokens;
  if (s.max_new_tokens() < 0 || s.max_new_tokens() > options_.max_new_tokens_limit) {
    problems.push_back(absl::StrCat("sampling.max_new_tokens: must be in [0, ", options_.max_new_tokens_limit,
                                    "], got ", s.max_new_tokens()));
  }
  if (s.has_temperature()) {
    if (!(s.temperature() >= 0)) {
      problems.push_back(absl::StrCat("sampling.temperature: must be >= 0, got ", s.temperature()));
    } else {
      o.temperature = s.temperature();
    }
  }
  if (s.top_k() < 0) problems.push_back(absl::StrCat("sampling.top_k: must be >= 0, got ", s.top_k()));
  o.top_k = std::max(0, s.top_k());
  if (s.has_top_p()) {
    if (!(s.top_p() > 0 && s.top_p() <= 1)) {
      problems.push_back(absl::StrCat("sampling.top_p: must be in (0, 1], got ", s.top_p()));
    } else {
      o.top_p = s.top_p();
    }
  }
  if (s.has_seed()) o.seed = s.seed();
  if (s.stop_size() > 0) {
    problems.push_back("sampling.stop: not supported by students (they stop at their end-of-sequence token)");
  }
  if (ask.num_beams < 0 || ask.num_beams > kMaxBeams) {
    problems.push_back(absl::StrCat("num_beams: must be in [0, ", kMaxBeams, "], got ", ask.num_beams));
  } else {
    o.num_beams = std::max(1, ask.num_beams);
    if (o.num_beams > 1 && o.temperature > 0) {
      problems.push_back(absl::StrCat("num_beams: beam search cannot be combined with sampling (temperature ",
                                      o.temperature, ")"));
    }
  }
  const v1::Objective objective = info_.objective();
  if (ask.include_rationale && objective == v1::OBJECTIVE_STANDARD) {
    problems.push_back("include_rationale: the model was trained with the STANDARD objective and has no rationale");
  }

  PreparedRequest prepared;
  std::vector<std::string> texts;
  if (absl::StripAsciiWhitespace(ask.input).empty()) {
    problems.push_back("input: required, got an empty input");
  } else {
    const std::string question = dataset::StudentInput(ExampleOf(ask));
    switch (objective) {
      case v1::OBJECTIVE_STEP_BY_STEP:
        if (ask.include_rationale) {
          texts.push_back(dataset::ExplainInput(question));
          prepared.layout = OutputLayout::kExplainAnswer;
        }
        texts.push_back(dataset::PredictInput(question));
        break;
      case v1::OBJECTIVE_COT_SEQUENCE:
        texts.push_back(dataset::CotInput(question));
        prepared.layout = OutputLayout::kCot;
        break;
      default:
        texts.push_back(question);
        break;
    }
  }
  std::vector<std::vector<int>> inputs;
  for (const std::string& text : texts) {
    std::vector<int> ids = tokenizer_->Encode(text);
    if (static_cast<int>(ids.size()) > info_.max_input_tokens()) {
      problems.push_back(absl::StrCat("input: ", ids.size(), " tokens (task prefix and end-of-sequence included), over the model's limit of ",
                                      info_.max_input_tokens()));
      break;
    }
    inputs.push_back(std::move(ids));
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
  prepared.request = std::make_shared<Request>(std::move(inputs), o, ask.deadline, ask.stream);
  return prepared;
}

std::string ServedModel::NormalizeAnswer(std::string_view answer, const GenerationAsk& ask) const {
  if (!normalizer_.has_value()) return "";
  absl::StatusOr<curator::NormalizedAnswer> normalized = normalizer_->Normalize(ExampleOf(ask), answer);
  return normalized.ok() ? normalized->text : "";
}

}  // namespace distill::inference
