#include "services/trainer/training/records.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "common/dataset/example_json.h"
#include "common/dataset/student_text.h"
#include "common/strings/strings.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "services/trainer/training/batching.h"

namespace distill::trainer {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A COT_SEQUENCE target: "<rationale> --> <answer> END".
bool IsCotTarget(std::string_view target) {
  return target.find(dataset::kCotAnswerSeparator) != std::string_view::npos &&
         EndsWith(target, dataset::kCotEnd);
}

// The question inside a record's input: COT_SEQUENCE inputs carry the " ###" suffix.
std::string QuestionOf(const v1::TrainingRecord& record, v1::Objective objective) {
  std::string_view input = record.input();
  if (objective == v1::OBJECTIVE_COT_SEQUENCE && EndsWith(input, dataset::kCotInputSuffix)) {
    input.remove_suffix(dataset::kCotInputSuffix.size());
  }
  return std::string(input);
}

std::string GoldOf(const v1::TrainingRecord& record, v1::Objective objective) {
  if (objective == v1::OBJECTIVE_COT_SEQUENCE) return dataset::CotAnswer(record.label_target());
  return record.label_target();
}

}  // namespace

absl::StatusOr<std::string> RecordsPath(const std::string& dataset_path) {
  std::error_code error;
  if (std::filesystem::is_directory(dataset_path, error)) {
    const std::string records = (std::filesystem::path(dataset_path) / "records.jsonl").string();
    if (!std::filesystem::is_regular_file(records, error)) {
      return absl::NotFoundError(
          strings::Cat("dataset: ", dataset_path, " is a directory without records.jsonl"));
    }
    return records;
  }
  if (!std::filesystem::exists(dataset_path, error)) {
    return absl::NotFoundError(strings::Cat("dataset: ", dataset_path, ": no such file"));
  }
  return dataset_path;
}

absl::StatusOr<std::vector<RecordLine>> ReadTrainingRecords(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(strings::Cat("dataset: cannot read ", path));
  std::vector<RecordLine> records;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    RecordLine r;
    r.line = number;
    const auto parsed = google::protobuf::util::JsonStringToMessage(line, &r.record, options);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          strings::Cat(path, ":", number, ": not a TrainingRecord: ", std::string(parsed.message())));
    }
    const v1::TrainingRecord& rec = r.record;
    const char* missing = rec.example_id().empty()     ? "example_id"
                          : rec.input().empty()        ? "input"
                          : rec.label_target().empty() ? "label_target"
                                                       : nullptr;
    if (missing != nullptr)
      return absl::InvalidArgumentError(strings::Cat(path, ":", number, ": ", missing, ": empty"));
    records.push_back(std::move(r));
  }
  if (in.bad()) return absl::InternalError(strings::Cat("dataset: error reading ", path));
  if (records.empty()) return absl::InvalidArgumentError(strings::Cat("dataset: ", path, ": no records"));
  return records;
}

absl::Status CheckRecordsFitObjective(const std::vector<RecordLine>& records, v1::Objective objective,
                                      const std::string& path) {
  for (const RecordLine& r : records) {
    const v1::TrainingRecord& rec = r.record;
    const bool cot_record =
        EndsWith(rec.input(), dataset::kCotInputSuffix) && IsCotTarget(rec.label_target());
    std::string problem;
    switch (objective) {
      case v1::OBJECTIVE_STEP_BY_STEP:
        if (rec.rationale_target().empty()) {
          problem =
              "rationale_target: empty; OBJECTIVE_STEP_BY_STEP needs records with a rationale (curate with "
              "--format step_by_step)";
        } else if (cot_record) {
          problem = "a COT_SEQUENCE record (input ends with \" ###\"); curate with --format step_by_step";
        }
        break;
      case v1::OBJECTIVE_COT_SEQUENCE:
        if (!IsCotTarget(rec.label_target())) {
          problem =
              "label_target: not \"<rationale> --> <answer> END\"; OBJECTIVE_COT_SEQUENCE needs records "
              "curated with --format cot_sequence";
        }
        break;
      default:
        if (cot_record) {
          problem =
              "a COT_SEQUENCE record (input ends with \" ###\"); OBJECTIVE_STANDARD needs label-only or "
              "step-by-step records";
        }
    }
    if (!problem.empty())
      return absl::FailedPreconditionError(strings::Cat(path, ":", r.line, ": ", problem));
  }
  return absl::OkStatus();
}

absl::StatusOr<DataSplit> HoldoutSplit(std::vector<RecordLine> records, double fraction, uint64_t seed,
                                       v1::Objective objective) {
  // Example ids sorted, so the split does not depend on the file's order.
  std::set<std::string> id_set;
  for (const RecordLine& r : records) id_set.insert(r.record.example_id());
  std::vector<std::string> ids(id_set.begin(), id_set.end());
  if (ids.size() < 2) {
    return absl::FailedPreconditionError(strings::Cat("eval.holdout_fraction: the dataset has ", ids.size(),
                                                      " example(s); holding out needs at least 2"));
  }
  int64_t held = static_cast<int64_t>(std::llround(fraction * static_cast<double>(ids.size())));
  held = std::clamp<int64_t>(held, 1, static_cast<int64_t>(ids.size()) - 1);
  DeterministicRng rng(seed, 0x686f6c646f7574ULL);  // "holdout"
  rng.Shuffle(ids);
  const std::set<std::string> eval_ids(ids.begin(), ids.begin() + held);

  DataSplit split;
  std::set<std::string> seen;
  for (RecordLine& r : records) {
    if (eval_ids.count(r.record.example_id()) == 0) {
      split.train.push_back(std::move(r));
      continue;
    }
    if (!seen.insert(r.record.example_id()).second) continue;
    EvalExample e;
    e.question = QuestionOf(r.record, objective);
    e.label_target = r.record.label_target();
    e.example.set_id(r.record.example_id());
    e.example.set_input(e.question);
    e.example.set_gold(GoldOf(r.record, objective));
    split.eval.push_back(std::move(e));
  }
  return split;
}

absl::StatusOr<std::vector<EvalExample>> ReadEvalExamples(const std::string& path,
                                                          const curator::AnswerNormalizer& normalizer,
                                                          v1::Objective objective) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(strings::Cat("eval.examples: cannot read ", path));
  std::vector<EvalExample> out;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    const auto where = [&] { return strings::Cat(path, ":", number, ": "); };
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return absl::InvalidArgumentError(strings::Cat(where(), "malformed JSON"));
    absl::StatusOr<v1::Example> example = dataset::ExampleFromJson(j, strings::Cat("line-", number));
    if (!example.ok()) return absl::InvalidArgumentError(strings::Cat(where(), example.status().message()));
    if (!example->has_gold())
      return absl::InvalidArgumentError(strings::Cat(where(), "gold: required for evaluation"));
    EvalExample e;
    e.question = dataset::StudentInput(*example);
    absl::StatusOr<curator::NormalizedAnswer> gold = normalizer.NormalizeGold(*example);
    if (!gold.ok())
      return absl::InvalidArgumentError(strings::Cat(where(), "gold: ", gold.status().message()));
    if (objective != v1::OBJECTIVE_COT_SEQUENCE) e.label_target = gold->text;
    e.example = std::move(*example);
    out.push_back(std::move(e));
  }
  if (out.empty()) return absl::InvalidArgumentError(strings::Cat("eval.examples: ", path, ": no examples"));
  return out;
}

}  // namespace distill::trainer
