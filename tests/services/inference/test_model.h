#ifndef DISTILL_TESTS_SERVICES_INFERENCE_TEST_MODEL_H_
#define DISTILL_TESTS_SERVICES_INFERENCE_TEST_MODEL_H_

// A tiny random student written as a model directory, as the trainer writes one (config.json,
// model.safetensors, spiece.model, manifest.json with the objective and task).

#include <fstream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/student/student.h"
#include "distill/v1/common.pb.h"
#include "nlohmann/json.hpp"

namespace distill::inference::testing {

inline absl::Status WriteTinyModel(const std::string& dir, v1::Objective objective, uint64_t seed = 7,
                                   v1::TaskType task = v1::TASK_TYPE_NUMERIC) {
  absl::StatusOr<std::unique_ptr<student::Tokenizer>> tokenizer = student::BuiltinTokenizer(200);
  if (!tokenizer.ok()) return tokenizer.status();
  absl::StatusOr<student::Student> s =
      student::InitStudent(student::TinyT5Config(), std::move(*tokenizer), seed, /*fit_vocab=*/true);
  if (!s.ok()) return s.status();
  if (absl::Status saved = student::SaveStudent(*s, dir); !saved.ok()) return saved;
  nlohmann::json manifest;
  manifest["format"] = "distill.student_model.v1";
  manifest["objective"] = v1::Objective_Name(objective);
  manifest["task"] = {{"type", v1::TaskType_Name(task)}};
  std::ofstream(dir + "/manifest.json") << manifest.dump(2) << "\n";
  return absl::OkStatus();
}

}  // namespace distill::inference::testing

#endif  // DISTILL_TESTS_SERVICES_INFERENCE_TEST_MODEL_H_
