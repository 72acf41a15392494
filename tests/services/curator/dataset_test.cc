// CurateFile and `distill curate` on real PaLM-540B completions (SVAMP test split): the files it
// writes, teacher accuracy at least the paper's, byte-identical reruns, and a malformed line reported
// with its file and line.

#include "services/curator/dataset.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/curator/curate_command.h"
#include "tests/support/paths.h"

namespace distill::curator {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string DataDir() { return ::distill::testing::SourceDir() + "/../shared/data"; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The SVAMP test split in `distill teach`'s output format, plus one malformed line.
std::string WriteSvampSamples(const std::string& path) {
  std::ifstream questions(DataDir() + "/svamp/svamp_test.json");
  std::ifstream completions_file(DataDir() + "/svamp/palm/test_CoT_0.json");
  if (!questions || !completions_file) return "";
  json completions = json::parse(completions_file);
  std::ofstream out(path);
  std::string line;
  size_t i = 0;
  for (; std::getline(questions, line) && i < completions.size(); ++i) {
    json q = json::parse(line);
    json record = {{"id", std::to_string(i)},
                   {"input", q["input"]},
                   {"gold", q["label"]},
                   {"completions", json::array({completions[i]})}};
    out << record.dump() << "\n";
    if (i == 10) out << "{\"id\": \"broken\", \"input\": 3\n";
  }
  return i == 200 ? path : "";
}

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "curate_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
    std::filesystem::create_directories(dir_);
    input_ = WriteSvampSamples(dir_ + "samples.jsonl");
    if (input_.empty()) GTEST_SKIP() << "no SVAMP data under " << DataDir();
  }
  std::string dir_;
  std::string input_;
};

TEST_F(DatasetTest, CuratesSvampAtLeastAsWellAsThePaperParses) {
  CurateFileOptions options;
  options.input_path = input_;
  options.output_dir = dir_ + "out";
  options.failures_path = dir_ + "failures.jsonl";
  options.config.mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
  options.config.mutable_options()->set_format(v1::OUTPUT_FORMAT_STEP_BY_STEP);
  absl::StatusOr<CurateFileResult> result = CurateFile(options);
  ASSERT_TRUE(result.ok()) << result.status();
  const v1::CurationSummary& s = result->summary;
  EXPECT_EQ(s.received(), 201);  // 200 samples and the malformed line
  EXPECT_EQ(s.kept() + s.dropped(), s.received());
  EXPECT_EQ(s.examples_with_gold(), 200);
  EXPECT_GE(s.teacher_accuracy(), 0.740);  // the paper's parser: 148 / 200
  EXPECT_GE(s.kept(), 140);

  // Files: records in input order, summary, manifest with the records' hash, failures.
  const std::string records = ReadAll(dir_ + "out/records.jsonl");
  std::istringstream lines(records);
  std::string first;
  std::getline(lines, first);
  EXPECT_EQ(json::parse(first)["example_id"], "0");
  json manifest = json::parse(ReadAll(dir_ + "out/manifest.json"));
  EXPECT_EQ(manifest["records"]["content_hash"], result->records_hash);
  EXPECT_EQ(manifest["records"]["count"], s.kept());
  EXPECT_EQ(manifest["format"], "step_by_step");
  EXPECT_TRUE(std::filesystem::exists(dir_ + "out/summary.json"));
  const std::string failures = ReadAll(dir_ + "failures.jsonl");
  EXPECT_THAT(failures, HasSubstr("samples.jsonl:12: malformed JSON"));
  EXPECT_THAT(failures, HasSubstr("DROP_REASON_WRONG_ANSWER"));

  // Deterministic: a second run writes the same bytes.
  options.output_dir = dir_ + "again";
  absl::StatusOr<CurateFileResult> again = CurateFile(options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ReadAll(dir_ + "again/records.jsonl"), records);
  EXPECT_EQ(again->records_hash, result->records_hash);
  EXPECT_EQ(ReadAll(dir_ + "again/manifest.json"), ReadAll(dir_ + "out/manifest.json"));
}

TEST_F(DatasetTest, CommandLinePrintsTheSummary) {
  ::testing::internal::CaptureStdout();
  const int code = RunCurate({"--task-type", "numeric", "--input", input_, "--out", dir_ + "cli", "--format",
                              "cot_sequence", "--failures", dir_ + "cli_failures.jsonl"});
  const std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_EQ(code, 0);
  json summary = json::parse(out);
  EXPECT_EQ(summary["received"], "201");
  EXPECT_GE(summary["teacher_accuracy"].get<double>(), 0.74);
  std::ifstream records(dir_ + "cli/records.jsonl");
  std::string line;
  std::getline(records, line);
  EXPECT_THAT(json::parse(line)["input"].get<std::string>(), ::testing::EndsWith(" ###"));
  EXPECT_THAT(json::parse(line)["label_target"].get<std::string>(), ::testing::EndsWith(" END"));
}

TEST_F(DatasetTest, BadCommandLinesAreUsageErrors) {
  EXPECT_EQ(RunCurate({"--task-type", "numbers", "--input", input_, "--out", dir_ + "x"}), 2);
  EXPECT_EQ(RunCurate({"--task-type", "numeric", "--out", dir_ + "x"}), 2);
  EXPECT_EQ(RunCurate({"--task-type", "numeric", "--input", "/nonexistent", "--out", dir_ + "x"}), 2);
  EXPECT_EQ(RunCurate({"--task-type", "numeric", "--input", input_, "--out", dir_ + "x", "--format", "html"}),
            2);
}

}  // namespace
}  // namespace distill::curator
