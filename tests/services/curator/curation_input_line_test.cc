// The curator's input reader on the CurationInput JSON form the coordinator writes
// ({"example": {...}, "samples": [...]}, proto3 JSON with the original field names): decoded by
// ParseInputLine and curated by CurateFile, including examples without samples under GOLD_ONLY.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/dataset/example_json.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/curator/dataset.h"

namespace distill::curator {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kQuestion[] = "Tom has 12 apples. He buys 5 more. How many apples does he have?";
constexpr char kGood[] = "Tom starts with 12 apples. He buys 5 more, so 12 + 5 = 17. So the answer is 17.";

// As the coordinator builds it: the example, then its samples (none for an example the teacher failed on).
v1::CurationInput Input(const std::string& id, const std::string& gold,
                        const std::vector<std::string>& completions) {
  v1::CurationInput in;
  in.mutable_example()->set_id(id);
  in.mutable_example()->set_input(kQuestion);
  in.mutable_example()->set_gold(gold);
  for (size_t i = 0; i < completions.size(); ++i) {
    v1::TeacherSample* sample = in.add_samples();
    sample->set_example_id(id);
    sample->set_sample_index(static_cast<int>(i));
    sample->set_completion(completions[i]);
    sample->set_model("synthetic-arith");
  }
  return in;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> ReadJsonLines(const std::string& path) {
  std::vector<json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(json::parse(line));
  return lines;
}

TEST(CurationInputLineTest, ParsesTheCoordinatorsLineForm) {
  const v1::CurationInput original = Input("q1", "17", {kGood, "12 + 5 = 18. The answer is 18."});
  const std::string line = dataset::ProtoToJson(original);
  ASSERT_THAT(line, HasSubstr("\"example\":"));
  ASSERT_THAT(line, HasSubstr("\"sample_index\":1"));

  absl::StatusOr<v1::CurationInput> parsed = ParseInputLine(line);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*parsed, original)) << parsed->DebugString();
}

TEST(CurationInputLineTest, AnExampleWithoutSamplesIsAccepted) {
  const std::string line = dataset::ProtoToJson(Input("q2", "( 12.0 + 5.0 )", {}));
  absl::StatusOr<v1::CurationInput> parsed = ParseInputLine(line);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->example().id(), "q2");
  EXPECT_EQ(parsed->example().gold(), "( 12.0 + 5.0 )");
  EXPECT_EQ(parsed->samples_size(), 0);
  // Unknown fields (from a newer writer) are ignored.
  parsed = ParseInputLine(R"({"example": {"id": "q3", "input": "Q?", "future_field": 1}, "extra": true})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->example().id(), "q3");
}

TEST(CurationInputLineTest, RejectsAnExampleThatIsNotAnObject) {
  absl::StatusOr<v1::CurationInput> parsed = ParseInputLine(R"({"example": 3})");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
  EXPECT_THAT(parsed.status().message(), HasSubstr("not a CurationInput object"));

  parsed = ParseInputLine(R"({"example": {"id": "q"}, "samples": 7})");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
  EXPECT_THAT(parsed.status().message(), HasSubstr("not a CurationInput object"));

  parsed = ParseInputLine(R"({"example": {"input": "Q?"}})");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
  EXPECT_EQ(parsed.status().message(), "example.id: is required");
}

class CurationInputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "curation_input_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteLines(const std::vector<std::string>& lines) {
    const std::string path = dir_ + "/curation_input.jsonl";
    std::ofstream out(path, std::ios::binary);
    for (const std::string& line : lines) out << line << "\n";
    return path;
  }
  CurateFileOptions Options(const std::string& input, v1::OutputFormat format, v1::LabelSource source) {
    CurateFileOptions options;
    options.input_path = input;
    options.output_dir = dir_ + "/out";
    options.failures_path = dir_ + "/failures.jsonl";
    options.config.mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
    options.config.mutable_options()->set_format(format);
    options.config.mutable_options()->set_label_source(source);
    return options;
  }

  std::string dir_;
};

TEST_F(CurationInputFileTest, CuratesCoordinatorLinesWithSamples) {
  const std::string input = WriteLines({
      dataset::ProtoToJson(Input("q1", "17", {kGood})),
      dataset::ProtoToJson(Input("q2", "17", {})),  // the teacher failed on it
      R"({"example": 3})",
  });
  absl::StatusOr<CurateFileResult> result =
      CurateFile(Options(input, v1::OUTPUT_FORMAT_STEP_BY_STEP, v1::LABEL_SOURCE_GOLD));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->summary.kept(), 1);
  EXPECT_EQ(result->summary.examples_received(), 2);
  const std::vector<json> records = ReadJsonLines(result->records_path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["example_id"], "q1");
  EXPECT_EQ(records[0]["label_target"], "17");
  // The bad line is reported with its file and line; the file goes on.
  EXPECT_THAT(ReadAll(dir_ + "/failures.jsonl"), HasSubstr(input + ":3: not a CurationInput object"));
}

TEST_F(CurationInputFileTest, GoldOnlyNeedsNoSamples) {
  const std::string input = WriteLines({
      dataset::ProtoToJson(Input("q1", "( 12.0 + 5.0 )", {})),
      dataset::ProtoToJson(Input("q2", "3", {})),
  });
  absl::StatusOr<CurateFileResult> result =
      CurateFile(Options(input, v1::OUTPUT_FORMAT_LABEL_ONLY, v1::LABEL_SOURCE_GOLD_ONLY));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->summary.received(), 2);
  EXPECT_EQ(result->summary.kept(), 2);
  const std::vector<json> records = ReadJsonLines(result->records_path);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["example_id"], "q1");
  EXPECT_EQ(records[0]["label_target"], "17");
  EXPECT_EQ(records[1]["example_id"], "q2");
  EXPECT_EQ(records[1]["label_target"], "3");
}

}  // namespace
}  // namespace distill::curator
