#ifndef DISTILL_COMMON_DATASET_EXAMPLE_JSON_H_
#define DISTILL_COMMON_DATASET_EXAMPLE_JSON_H_

// The JSON form of an Example shared by every JSON-lines file distill reads (questions for
// `distill teach`, samples for `distill curate`, datasets for jobs):
//
//   {"id": "q1" | 17, "input": "…", "gold" | "answer" | "label": "…" | 42,
//    "choices": ["…", …] | [{"label": "a", "text": "…"}, …]}
//
// Only "input" is required; a missing id takes the caller's default (e.g. "line-12").

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "distill/v1/common.pb.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace distill::dataset {

// Decodes `object` into an Example. INVALID_ARGUMENT naming the field ("input: expected a string").
// `default_id` is used when there is no "id"; empty = "id" is required.
absl::StatusOr<v1::Example> ExampleFromJson(const nlohmann::json& object, std::string_view default_id);

// Appends the example's answer choices as the teacher and the student both see them:
// "\nAnswer Choices:\n(a) …\n(b) …" (a choice without a label is lettered by position). Appends nothing
// for an example without choices.
void AppendAnswerChoices(const v1::Example& example, std::string* text);

// The question as a student sees it (the curator's record input, the trainer's eval question): the input
// trimmed of surrounding whitespace, with AppendAnswerChoices unless it already lists "Answer Choices:".
std::string StudentInput(const v1::Example& example);

// `message` in the proto3 JSON mapping with the original (snake_case) field names, on one line: the
// form of every JSON-lines record distill writes.
std::string ProtoToJson(const google::protobuf::Message& message);

// "numeric" | "multiple_choice" | "classification" | "free_text" → TaskType; INVALID_ARGUMENT listing the
// accepted names otherwise.
absl::StatusOr<v1::TaskType> ParseTaskTypeName(std::string_view name);

}  // namespace distill::dataset

#endif  // DISTILL_COMMON_DATASET_EXAMPLE_JSON_H_
