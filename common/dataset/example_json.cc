#include "common/dataset/example_json.h"

#include <string>

#include "absl/strings/ascii.h"
#include "common/strings/strings.h"
#include "google/protobuf/util/json_util.h"

namespace distill::dataset {

using nlohmann::json;

absl::StatusOr<v1::Example> ExampleFromJson(const json& j, std::string_view default_id) {
  if (!j.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  v1::Example ex;
  if (j.contains("id")) {
    if (j["id"].is_string()) {
      ex.set_id(j["id"].get<std::string>());
    } else if (j["id"].is_number_integer()) {
      ex.set_id(std::to_string(j["id"].get<int64_t>()));
    } else {
      return absl::InvalidArgumentError("id: expected a string");
    }
  } else if (!default_id.empty()) {
    ex.set_id(std::string(default_id));
  } else {
    return absl::InvalidArgumentError("id: is required");
  }
  if (!j.contains("input") || !j["input"].is_string())
    return absl::InvalidArgumentError("input: expected a string");
  ex.set_input(j["input"].get<std::string>());
  for (const char* key : {"gold", "answer", "label"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    const json& g = j[key];
    if (g.is_string()) {
      ex.set_gold(g.get<std::string>());
    } else if (g.is_number()) {
      ex.set_gold(g.dump());
    } else {
      return absl::InvalidArgumentError(strings::Cat(key, ": expected a string or number"));
    }
    break;
  }
  if (j.contains("choices")) {
    if (!j["choices"].is_array()) return absl::InvalidArgumentError("choices: expected a list");
    for (const json& c : j["choices"]) {
      v1::Choice* choice = ex.add_choices();
      if (c.is_string()) {
        choice->set_text(c.get<std::string>());
      } else if (c.is_object() && c.contains("text") && c["text"].is_string()) {
        choice->set_text(c["text"].get<std::string>());
        if (c.contains("label") && c["label"].is_string()) choice->set_label(c["label"].get<std::string>());
      } else {
        return absl::InvalidArgumentError("choices: each must be a string or {label, text}");
      }
    }
  }
  return ex;
}

void AppendAnswerChoices(const v1::Example& example, std::string* text) {
  if (example.choices_size() == 0) return;
  strings::Append(text, "\nAnswer Choices:");
  for (int i = 0; i < example.choices_size(); ++i) {
    const v1::Choice& c = example.choices(i);
    strings::Append(text, "\n(", c.label().empty() ? std::string(1, static_cast<char>('a' + i)) : c.label(),
                    ") ", c.text());
  }
}

std::string ProtoToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

absl::StatusOr<v1::TaskType> ParseTaskTypeName(std::string_view name) {
  if (name == "numeric") return v1::TASK_TYPE_NUMERIC;
  if (name == "multiple_choice") return v1::TASK_TYPE_MULTIPLE_CHOICE;
  if (name == "classification") return v1::TASK_TYPE_CLASSIFICATION;
  if (name == "free_text") return v1::TASK_TYPE_FREE_TEXT;
  return absl::InvalidArgumentError(strings::Cat(
      "expected one of: numeric, multiple_choice, classification, free_text, got \"", name, "\""));
}

std::string StudentInput(const v1::Example& example) {
  std::string input(absl::StripAsciiWhitespace(example.input()));
  if (input.find("Answer Choices:") == std::string::npos) AppendAnswerChoices(example, &input);
  return input;
}

}  // namespace distill::dataset
