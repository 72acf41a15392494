// `distill train` end to end: the real binary, its real worker processes, a tiny model.

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/services/trainer/trainer_test_support.h"
#include "tests/support/paths.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

const std::string kDistill = ::distill::testing::BinaryDir() + "/bin/distill";

class TrainCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = temp_.File("records.jsonl");
    std::ofstream(data_) << testing::ArithmeticRecords(24);
    out_ = temp_.File("student");
  }

  std::vector<std::string> Command(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {kDistill,
                                     "train",
                                     "--data",
                                     data_,
                                     "--objective",
                                     "step_by_step",
                                     "--init",
                                     "tiny",
                                     "--out",
                                     out_,
                                     "--batch-size",
                                     "2",
                                     "--threads",
                                     "1",
                                     "--seed",
                                     "3",
                                     "--max-target-tokens",
                                     "16",
                                     "--max-source-tokens",
                                     "48"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  // Runs to the end; returns the exit code.
  int RunToEnd(const std::vector<std::string>& argv, std::string* out, std::string* err) {
    auto process = testing::Subprocess::Start(argv);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return -1;
    absl::StatusOr<int> status = (*process)->Wait(absl::Seconds(90));
    EXPECT_TRUE(status.ok()) << status.status();
    *out = (*process)->PendingStdout();
    *err = (*process)->Stderr();
    return status.ok() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }

  testing::TempDir temp_{"train_command"};
  std::string data_;
  std::string out_;
};

TEST_F(TrainCommandTest, TrainsWithTwoRanksAndWritesTheModel) {
  std::string out, err;
  const int code = RunToEnd(
      Command({"--world-size", "2", "--max-steps", "10", "--log-interval", "5", "--eval-holdout", "0.25",
               "--eval-max-examples", "3", "--eval-max-new-tokens", "8", "--eval-interval", "10"}),
      &out, &err);
  ASSERT_EQ(code, 0) << err;
  // Not a terminal: plain progress lines.
  EXPECT_THAT(err, HasSubstr("step 5/10"));
  EXPECT_THAT(err, HasSubstr("step 10/10"));
  EXPECT_THAT(err, HasSubstr("eval step 10: accuracy"));
  EXPECT_THAT(err, HasSubstr("checkpoint step 10"));
  EXPECT_THAT(err, ::testing::Not(HasSubstr("\x1b[K")));
  nlohmann::json summary = nlohmann::json::parse(out);
  EXPECT_EQ(summary["state"], "SUCCEEDED");
  EXPECT_EQ(summary["steps"], 10);
  EXPECT_EQ(summary["model"], std::filesystem::absolute(out_).lexically_normal().string());
  EXPECT_TRUE(summary.contains("best_eval"));
  for (const char* file : {"config.json", "model.safetensors", "spiece.model", "manifest.json"}) {
    EXPECT_TRUE(std::filesystem::exists(out_ + "/" + file)) << file;
  }
  EXPECT_TRUE(std::filesystem::exists(out_ + "/run/checkpoints/latest"));
  EXPECT_TRUE(std::filesystem::exists(out_ + "/run/logs/rank-1.log"));

  // The written model loads.
  std::string info_out, info_err;
  ASSERT_EQ(RunToEnd({kDistill, "model", "info", out_, "--json"}, &info_out, &info_err), 0) << info_err;
  EXPECT_EQ(nlohmann::json::parse(info_out)["family"], "t5");
}

TEST_F(TrainCommandTest, BadFlagsAndBadInputExitTwo) {
  struct Case {
    std::vector<std::string> argv;
    std::string message;
  };
  const std::vector<Case> cases = {
      {Command({"--objective", "telepathy"}), "--objective: expected one of"},
      {Command({"--frobnicate"}), "--frobnicate: unknown flag"},
      {Command({"--lr", "0", "--max-steps", "5"}), "training.hyperparameters.learning_rate: must be > 0"},
      {Command({"--init", "/no/such/checkpoint"}), "--init: no checkpoint directory"},
      {{kDistill, "train", "--objective", "standard"}, "--data is required"},
      {{kDistill, "train", "--data", "/no/such.jsonl", "--objective", "standard", "--init", "tiny", "--out",
        "/tmp/x"},
       "--data: no such file"},
  };
  for (const Case& c : cases) {
    std::string out, err;
    EXPECT_EQ(RunToEnd(c.argv, &out, &err), 2) << c.message << "\n" << err;
    EXPECT_THAT(err, HasSubstr(c.message));
    EXPECT_EQ(out, "");
  }
  std::ofstream(data_) << "";
  std::string out, err;
  EXPECT_EQ(RunToEnd(Command({"--max-steps", "5"}), &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("no records"));
}

TEST_F(TrainCommandTest, InterruptCancelsAndStopsTheWorkers) {
  auto process = testing::Subprocess::Start(Command({"--max-steps", "100000", "--log-interval", "2"}));
  ASSERT_TRUE(process.ok()) << process.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while ((*process)->Stderr().find("step 2/") == std::string::npos && absl::Now() < deadline) {
    (void)(*process)->ReadLine(absl::Milliseconds(50));  // pumps stderr too
  }
  ASSERT_THAT((*process)->Stderr(), HasSubstr("step 2/"));
  std::map<int, pid_t> workers = testing::FindWorkers(out_ + "/run");
  ASSERT_EQ(workers.size(), 1u);
  (*process)->Signal(SIGINT);
  absl::StatusOr<int> status = (*process)->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_THAT((*process)->Stderr(), HasSubstr("cancelled; checkpoints stay in"));
  EXPECT_TRUE(testing::AllGone({workers[0]}, absl::Seconds(1)));
  EXPECT_EQ((*process)->PendingStdout(), "");
}

}  // namespace
}  // namespace distill
