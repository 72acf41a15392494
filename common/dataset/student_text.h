#ifndef DISTILL_COMMON_DATASET_STUDENT_TEXT_H_
#define DISTILL_COMMON_DATASET_STUDENT_TEXT_H_

// The text formats a student is trained on and queried with, in one place so that the curator (which
// writes training records), the trainer (which trains on them) and the inference service (which renders
// requests the same way) cannot drift apart.
//
//   standard      encoder "<question>"              decoder "<answer>"
//   step-by-step  encoder "predict: <question>"     decoder "<answer>"       (the label task)
//                 encoder "explain: <question>"     decoder "<rationale>"    (the rationale task)
//   cot sequence  encoder "<question> ###"          decoder "<rationale> --> <answer> END"

#include <string>
#include <string_view>

namespace distill::dataset {

inline constexpr std::string_view kPredictPrefix = "predict: ";
inline constexpr std::string_view kExplainPrefix = "explain: ";
inline constexpr std::string_view kCotInputSuffix = " ###";
inline constexpr std::string_view kCotAnswerSeparator = " --> ";
inline constexpr std::string_view kCotEnd = " END";

inline std::string PredictInput(std::string_view question) {
  return std::string(kPredictPrefix).append(question);
}
inline std::string ExplainInput(std::string_view question) {
  return std::string(kExplainPrefix).append(question);
}
inline std::string CotInput(std::string_view question) { return std::string(question).append(kCotInputSuffix); }
inline std::string CotTarget(std::string_view rationale, std::string_view answer) {
  return std::string(rationale).append(kCotAnswerSeparator).append(answer).append(kCotEnd);
}

// The answer inside a generated CoT sequence: the text after the last "-->" up to "END" (or the end when
// generation stopped before it), trimmed. Without "-->", the whole text trimmed of a trailing "END".
std::string CotAnswer(std::string_view generated);
// The rationale part of a generated CoT sequence (before the last "-->"), trimmed; empty without "-->".
std::string CotRationale(std::string_view generated);

}  // namespace distill::dataset

#endif  // DISTILL_COMMON_DATASET_STUDENT_TEXT_H_
