#ifndef DISTILL_SERVICES_TRAINER_TRAINING_RECORDS_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_RECORDS_H_

// A run's data as files: the curator's training records, the examples evaluated on, and the split
// between them.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "distill/v1/common.pb.h"
#include "distill/v1/curator.pb.h"
#include "services/curator/answers/normalizer.h"

namespace distill::trainer {

// A record and the line of records.jsonl it came from (1-based), for error messages.
struct RecordLine {
  v1::TrainingRecord record;
  int64_t line = 0;
};

// The records file of a dataset artifact: `dataset_path` itself, or DIR/records.jsonl when it is a
// directory (a curator output). NOT_FOUND naming "dataset" when neither exists.
absl::StatusOr<std::string> RecordsPath(const std::string& dataset_path);

// Reads JSON lines of v1::TrainingRecord (proto3 JSON; original or camelCase field names; unknown fields
// are errors). Blank lines are skipped. INVALID_ARGUMENT "path:line: ..." for a malformed line or a
// record without example_id, input or label_target; INVALID_ARGUMENT "dataset: path: no records" for a
// file without any; NOT_FOUND when it cannot be read.
absl::StatusOr<std::vector<RecordLine>> ReadTrainingRecords(const std::string& path);

// FAILED_PRECONDITION "path:line: ..." for the first record that cannot serve `objective`:
// STEP_BY_STEP needs a rationale_target; COT_SEQUENCE needs a label_target "<rationale> --> <answer>
// END"; STANDARD and STEP_BY_STEP refuse records rendered for COT_SEQUENCE ("... ###" inputs with such
// targets).
absl::Status CheckRecordsFitObjective(const std::vector<RecordLine>& records, v1::Objective objective,
                                      const std::string& path);

// One example to evaluate on.
struct EvalExample {
  // For the answer normaliser: id, input (the question as the curator renders it, answer choices
  // included) and gold.
  v1::Example example;
  // The question the student is asked (AnswerInput of the objective is applied to it).
  std::string question;
  // Teacher-forced target of the eval loss (the label task's target); empty = this example does not
  // count towards the eval loss (an eval examples file under COT_SEQUENCE, which has no rationale).
  std::string label_target;
};

struct DataSplit {
  std::vector<RecordLine> train;
  std::vector<EvalExample> eval;
};

// Holds out round(fraction × examples) whole examples (all records of an example_id go to one side, at
// least one example on each side), chosen by a shuffle seeded by `seed`. The eval examples are the held
// out ones in file order, one per example_id (its first record); gold is the record's answer.
// FAILED_PRECONDITION naming eval.holdout_fraction when the dataset has fewer than 2 examples.
absl::StatusOr<DataSplit> HoldoutSplit(std::vector<RecordLine> records, double fraction, uint64_t seed,
                                       v1::Objective objective);

// Reads JSON lines of Example (common/dataset/example_json.h), each needing a gold answer that
// `normalizer` accepts. Errors name "path:line". The loss target of an example is its normalised gold
// (none under COT_SEQUENCE).
absl::StatusOr<std::vector<EvalExample>> ReadEvalExamples(const std::string& path,
                                                          const curator::AnswerNormalizer& normalizer,
                                                          v1::Objective objective);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_RECORDS_H_
