#ifndef DISTILL_TESTS_SERVICES_TRAINER_TRAINING_TRAINING_TESTING_H_
#define DISTILL_TESTS_SERVICES_TRAINER_TRAINING_TRAINING_TESTING_H_

// Helpers shared by the training tests: a small synthetic arithmetic dataset, a tiny-preset RunSpec, and
// readers for what a run leaves behind.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/dataset/example_json.h"
#include "common/student/checkpoint/safetensors.h"
#include "distill/v1/curator.pb.h"
#include "distill/v1/trainer.pb.h"
#include "gtest/gtest.h"
#include "services/trainer/training/worker_protocol.h"
#include "tests/support/paths.h"

namespace distill::trainer::testing {

struct ArithmeticExample {
  std::string id;
  std::string question;
  std::string answer;
  std::string rationale;
};

// `n` addition questions ("What is 3 plus 4?" -> "7"), deterministic.
inline std::vector<ArithmeticExample> ArithmeticExamples(int n) {
  std::vector<ArithmeticExample> out;
  for (int i = 0; i < n; ++i) {
    const int a = (i * 7) % 10 + 1, b = (i * 3) % 9 + 1;
    out.push_back({"q" + std::to_string(i),
                   "What is " + std::to_string(a) + " plus " + std::to_string(b) + "?", std::to_string(a + b),
                   std::to_string(a) + " plus " + std::to_string(b) + " is " + std::to_string(a + b) + "."});
  }
  return out;
}

// records.jsonl for `objective`, `samples` records per example.
inline void WriteRecords(const std::string& path, const std::vector<ArithmeticExample>& examples,
                         v1::Objective objective, int samples = 1) {
  std::ofstream out(path);
  for (const ArithmeticExample& e : examples) {
    for (int s = 0; s < samples; ++s) {
      v1::TrainingRecord r;
      r.set_example_id(e.id);
      r.set_sample_index(s);
      if (objective == v1::OBJECTIVE_COT_SEQUENCE) {
        r.set_input(e.question + " ###");
        r.set_label_target(e.rationale + " --> " + e.answer + " END");
      } else {
        r.set_input(e.question);
        r.set_label_target(e.answer);
        if (objective == v1::OBJECTIVE_STEP_BY_STEP) r.set_rationale_target(e.rationale);
      }
      out << dataset::ProtoToJson(r) << "\n";
    }
  }
}

// Eval examples file (JSON lines of Example with gold).
inline void WriteEvalExamples(const std::string& path, const std::vector<ArithmeticExample>& examples) {
  std::ofstream out(path);
  for (const ArithmeticExample& e : examples) {
    out << "{\"id\": \"" << e.id << "\", \"input\": \"" << e.question << "\", \"gold\": \"" << e.answer
        << "\"}\n";
  }
}

// A tiny-preset run that trains quickly: no dropout, constant learning rate, one rank, no eval set.
inline v1::RunSpec TinySpec(const std::string& records_path,
                            v1::Objective objective = v1::OBJECTIVE_STANDARD) {
  v1::RunSpec spec;
  spec.set_name("test");
  spec.mutable_dataset()->set_uri(records_path);
  spec.mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
  spec.mutable_student()->set_preset("tiny");
  v1::TrainingOptions* t = spec.mutable_training();
  t->set_objective(objective);
  v1::Hyperparameters* h = t->mutable_hyperparameters();
  h->set_learning_rate(3e-3);
  h->set_batch_size(8);
  h->set_max_steps(20);
  h->set_seed(7);
  h->set_schedule(v1::LR_SCHEDULE_CONSTANT);
  h->set_dropout_rate(0.0);
  h->set_log_interval_steps(5);
  h->set_max_grad_norm(1.0);
  h->set_weight_decay(0.01);
  t->mutable_distributed()->set_world_size(1);
  return spec;
}

inline WorkerArgs LocalArgs(const std::string& run_dir) {
  WorkerArgs args;
  args.run_dir = run_dir;
  args.threads = 1;
  return args;
}

inline void WriteSpec(const std::string& run_dir, const v1::RunSpec& spec) {
  std::filesystem::create_directories(run_dir);
  std::ofstream(run_dir + "/" + std::string(kSpecFile)) << dataset::ProtoToJson(spec) << "\n";
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The final model's weights.
inline student::SafetensorsFile ModelWeights(const std::string& run_dir) {
  absl::StatusOr<student::SafetensorsFile> file =
      student::ReadSafetensors(run_dir + "/" + std::string(kModelDir) + "/model.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *file : student::SafetensorsFile{};
}

// Largest absolute difference between two float32 weight files with the same tensors (infinity otherwise).
inline double MaxAbsDifference(const student::SafetensorsFile& a, const student::SafetensorsFile& b) {
  if (a.tensors.size() != b.tensors.size() || a.tensors.empty()) return INFINITY;
  double worst = 0;
  for (const auto& [name, ta] : a.tensors) {
    auto it = b.tensors.find(name);
    if (it == b.tensors.end() || it->second.bytes.size() != ta.bytes.size()) return INFINITY;
    const float* x = reinterpret_cast<const float*>(ta.bytes.data());
    const float* y = reinterpret_cast<const float*>(it->second.bytes.data());
    for (size_t i = 0; i < ta.bytes.size() / sizeof(float); ++i)
      worst = std::max(worst, double(std::fabs(x[i] - y[i])));
  }
  return worst;
}

// The test-only worker binary (trainer_worker_for_tests.cc).
inline std::string WorkerBinary() {
  return ::distill::testing::BinaryDir() + "/bin/trainer-worker-for-tests";
}

}  // namespace distill::trainer::testing

#endif  // DISTILL_TESTS_SERVICES_TRAINER_TRAINING_TRAINING_TESTING_H_
