#include "services/trainer/training/records.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/trainer/training/training_testing.h"
#include "tests/support/temp_dir.h"

namespace distill::trainer {
namespace {

using testing::ArithmeticExamples;
using ::testing::HasSubstr;
using testing::WriteRecords;

class RecordsTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }
  distill::testing::TempDir dir_{"records_test"};
};

TEST_F(RecordsTest, ReadsRecordsAndRemembersTheirLines) {
  const std::string path = Write(
      "r.jsonl",
      "{\"example_id\": \"a\", \"sample_index\": 0, \"input\": \"q\", \"label_target\": \"1\"}\n"
      "\n"
      "{\"exampleId\": \"b\", \"input\": \"q2\", \"label_target\": \"2\", \"rationale_target\": \"r\"}\n");
  absl::StatusOr<std::vector<RecordLine>> records = ReadTrainingRecords(path);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].line, 1);
  EXPECT_EQ((*records)[1].line, 3);
  EXPECT_EQ((*records)[1].record.example_id(), "b");
  EXPECT_EQ((*records)[1].record.rationale_target(), "r");
}

TEST_F(RecordsTest, ErrorsNameTheFileAndLine) {
  const std::string good = "{\"example_id\": \"a\", \"input\": \"q\", \"label_target\": \"1\"}\n";
  struct Case {
    std::string line;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"{not json", ":2: not a TrainingRecord"},
           {"{\"example_id\": \"a\", \"input\": \"q\", \"label_target\": \"1\", \"colour\": 1}",
            ":2: not a TrainingRecord"},
           {"{\"example_id\": \"a\", \"input\": \"q\", \"label_target\": 7}", ":2: not a TrainingRecord"},
           {"{\"example_id\": \"a\", \"label_target\": \"1\"}", ":2: input: empty"},
           {"{\"example_id\": \"a\", \"input\": \"q\"}", ":2: label_target: empty"},
           {"{\"input\": \"q\", \"label_target\": \"1\"}", ":2: example_id: empty"},
       }) {
    const std::string path = Write("bad.jsonl", good + c.line + "\n" + good);
    absl::Status status = ReadTrainingRecords(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.line;
    EXPECT_THAT(std::string(status.message()), HasSubstr(path + c.message)) << c.line;
  }
}

TEST_F(RecordsTest, MissingAndEmptyFiles) {
  EXPECT_EQ(ReadTrainingRecords(dir_.File("none.jsonl")).status().code(), absl::StatusCode::kNotFound);
  absl::Status empty = ReadTrainingRecords(Write("empty.jsonl", "\n\n")).status();
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.message()), HasSubstr("dataset: "));
  EXPECT_THAT(std::string(empty.message()), HasSubstr("no records"));
}

TEST_F(RecordsTest, RecordsPathAcceptsACuratorOutputDirectory) {
  std::filesystem::create_directories(dir_.File("curated"));
  EXPECT_EQ(RecordsPath(dir_.File("curated")).status().code(), absl::StatusCode::kNotFound);
  Write("curated/records.jsonl", "");
  EXPECT_EQ(*RecordsPath(dir_.File("curated")), dir_.File("curated") + "/records.jsonl");
  EXPECT_EQ(*RecordsPath(dir_.File("curated/records.jsonl")), dir_.File("curated/records.jsonl"));
  EXPECT_EQ(RecordsPath(dir_.File("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RecordsTest, RecordsMustFitTheObjective) {
  const auto examples = ArithmeticExamples(3);
  const std::string standard = dir_.File("standard.jsonl");
  const std::string cot = dir_.File("cot.jsonl");
  const std::string sbs = dir_.File("sbs.jsonl");
  WriteRecords(standard, examples, v1::OBJECTIVE_STANDARD);
  WriteRecords(cot, examples, v1::OBJECTIVE_COT_SEQUENCE);
  WriteRecords(sbs, examples, v1::OBJECTIVE_STEP_BY_STEP);
  auto check = [](const std::string& path, v1::Objective objective) {
    absl::StatusOr<std::vector<RecordLine>> records = ReadTrainingRecords(path);
    EXPECT_TRUE(records.ok());
    return CheckRecordsFitObjective(*records, objective, path);
  };
  EXPECT_TRUE(check(standard, v1::OBJECTIVE_STANDARD).ok());
  EXPECT_TRUE(check(sbs, v1::OBJECTIVE_STANDARD).ok());  // the rationale is ignored
  EXPECT_TRUE(check(sbs, v1::OBJECTIVE_STEP_BY_STEP).ok());
  EXPECT_TRUE(check(cot, v1::OBJECTIVE_COT_SEQUENCE).ok());

  absl::Status status = check(standard, v1::OBJECTIVE_STEP_BY_STEP);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr(standard + ":1: rationale_target: empty"));
  status = check(standard, v1::OBJECTIVE_COT_SEQUENCE);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr(standard + ":1: label_target"));
  status = check(cot, v1::OBJECTIVE_STANDARD);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr(cot + ":1: a COT_SEQUENCE record"));
}

std::vector<RecordLine> Records(const std::vector<testing::ArithmeticExample>& examples, int samples,
                                v1::Objective objective = v1::OBJECTIVE_STANDARD) {
  std::vector<RecordLine> out;
  int line = 0;
  for (const auto& e : examples) {
    for (int s = 0; s < samples; ++s) {
      RecordLine r;
      r.line = ++line;
      r.record.set_example_id(e.id);
      r.record.set_sample_index(s);
      if (objective == v1::OBJECTIVE_COT_SEQUENCE) {
        r.record.set_input(e.question + " ###");
        r.record.set_label_target(e.rationale + " --> " + e.answer + " END");
      } else {
        r.record.set_input(e.question);
        r.record.set_label_target(e.answer);
      }
      out.push_back(r);
    }
  }
  return out;
}

TEST(HoldoutSplitTest, HoldsOutWholeExamplesDeterministically) {
  const std::vector<RecordLine> records = Records(ArithmeticExamples(20), 3);
  absl::StatusOr<DataSplit> split = HoldoutSplit(records, 0.25, 42, v1::OBJECTIVE_STANDARD);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->eval.size(), 5u);
  EXPECT_EQ(split->train.size(), 45u);
  std::set<std::string> eval_ids;
  for (const EvalExample& e : split->eval) eval_ids.insert(e.example.id());
  EXPECT_EQ(eval_ids.size(), 5u);
  for (const RecordLine& r : split->train) EXPECT_EQ(eval_ids.count(r.record.example_id()), 0u);
  // Gold and question come from the record.
  EXPECT_EQ(split->eval[0].example.gold(), split->eval[0].label_target);

  absl::StatusOr<DataSplit> again = HoldoutSplit(records, 0.25, 42, v1::OBJECTIVE_STANDARD);
  std::set<std::string> again_ids;
  for (const EvalExample& e : again->eval) again_ids.insert(e.example.id());
  EXPECT_EQ(eval_ids, again_ids);
  absl::StatusOr<DataSplit> other = HoldoutSplit(records, 0.25, 43, v1::OBJECTIVE_STANDARD);
  std::set<std::string> other_ids;
  for (const EvalExample& e : other->eval) other_ids.insert(e.example.id());
  EXPECT_NE(eval_ids, other_ids);
}

TEST(HoldoutSplitTest, CotRecordsGiveTheQuestionAndTheAnswer) {
  absl::StatusOr<DataSplit> split = HoldoutSplit(
      Records(ArithmeticExamples(4), 1, v1::OBJECTIVE_COT_SEQUENCE), 0.5, 1, v1::OBJECTIVE_COT_SEQUENCE);
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->eval.size(), 2u);
  const EvalExample& e = split->eval[0];
  EXPECT_THAT(e.question, ::testing::EndsWith("?"));
  EXPECT_THAT(e.label_target, ::testing::EndsWith(" END"));
  EXPECT_EQ(e.example.gold(), e.label_target.substr(e.label_target.find("--> ") + 4,
                                                    e.label_target.size() - e.label_target.find("--> ") - 8));
}

TEST(HoldoutSplitTest, KeepsOneExampleOnEachSideAndNeedsTwo) {
  absl::StatusOr<DataSplit> split =
      HoldoutSplit(Records(ArithmeticExamples(3), 1), 0.01, 1, v1::OBJECTIVE_STANDARD);
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->eval.size(), 1u);
  absl::Status one = HoldoutSplit(Records(ArithmeticExamples(1), 4), 0.5, 1, v1::OBJECTIVE_STANDARD).status();
  EXPECT_EQ(one.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(one.message()), HasSubstr("eval.holdout_fraction"));
}

TEST_F(RecordsTest, ReadsEvalExamples) {
  v1::TaskSpec task;
  task.set_type(v1::TASK_TYPE_MULTIPLE_CHOICE);
  absl::StatusOr<curator::AnswerNormalizer> normalizer = curator::AnswerNormalizer::Create(task);
  ASSERT_TRUE(normalizer.ok());
  const std::string path =
      Write("eval.jsonl",
            "{\"id\": \"m\", \"input\": \"Where is money kept?\", \"choices\": [\"bank\", \"river\"], "
            "\"gold\": \"(a)\"}\n");
  absl::StatusOr<std::vector<EvalExample>> examples =
      ReadEvalExamples(path, *normalizer, v1::OBJECTIVE_STANDARD);
  ASSERT_TRUE(examples.ok()) << examples.status();
  ASSERT_EQ(examples->size(), 1u);
  EXPECT_EQ((*examples)[0].question, "Where is money kept?\nAnswer Choices:\n(a) bank\n(b) river");
  EXPECT_EQ((*examples)[0].label_target, "bank");  // the normalised gold

  absl::Status no_gold =
      ReadEvalExamples(Write("nogold.jsonl", "\n{\"input\": \"q\"}\n"), *normalizer, v1::OBJECTIVE_STANDARD)
          .status();
  EXPECT_EQ(no_gold.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_gold.message()), HasSubstr("nogold.jsonl:2: gold: required"));
  absl::Status malformed =
      ReadEvalExamples(Write("bad.jsonl", "{"), *normalizer, v1::OBJECTIVE_STANDARD).status();
  EXPECT_THAT(std::string(malformed.message()), HasSubstr("bad.jsonl:1: malformed JSON"));
}

}  // namespace
}  // namespace distill::trainer
