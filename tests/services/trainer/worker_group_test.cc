// WorkerGroup, the process supervision under the trainer's runs, on plain shell processes: what a dead
// rank does to its peers, stop requests, SIGKILL after the grace period, output capture.

#include "services/trainer/worker_group.h"

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace distill::trainer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

WorkerGroupOptions Shell(std::vector<std::string> scripts) {
  WorkerGroupOptions options;
  options.binary = "/bin/sh";
  for (std::string& script : scripts) options.rank_args.push_back({"-c", std::move(script)});
  options.kill_grace = absl::Seconds(5);
  return options;
}

TEST(WorkerGroupTest, AFailingRankStopsTheOthersAndReportsItsErrorLine) {
  WorkerGroupOptions options =
      Shell({"exec sleep 30", "echo starting >&2; echo 'error: rank 1 ran out of luck' >&2; exit 13"});
  auto group = WorkerGroup::Start(options);
  ASSERT_TRUE(group.ok()) << group.status();
  const absl::Time start = absl::Now();
  WorkerGroupResult result = (*group)->Wait([] { return false; });
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));  // SIGTERM, not the grace period
  ASSERT_EQ(result.failed_rank, 1);
  EXPECT_FALSE(result.stop_requested);
  ASSERT_EQ(result.exits.size(), 2u);
  EXPECT_TRUE(WIFEXITED(result.exits[1].wait_status));
  EXPECT_EQ(WEXITSTATUS(result.exits[1].wait_status), 13);
  EXPECT_EQ(result.exits[1].error, "rank 1 ran out of luck");
  EXPECT_FALSE(result.exits[1].stopped);
  EXPECT_TRUE(result.exits[0].stopped);
  EXPECT_TRUE(WIFSIGNALED(result.exits[0].wait_status));
  EXPECT_EQ(WTERMSIG(result.exits[0].wait_status), SIGTERM);
  EXPECT_EQ(DescribeWaitStatus(result.exits[0].wait_status), "signal 15 (SIGTERM)");
  EXPECT_EQ(DescribeWaitStatus(result.exits[1].wait_status), "status 13");
}

TEST(WorkerGroupTest, AStopRequestEndsEveryRankWithSigkillAfterTheGrace) {
  // The second rank ignores SIGTERM (and so does its sleep).
  WorkerGroupOptions options = Shell({"exec sleep 30", "trap '' TERM; sleep 30; sleep 30"});
  options.kill_grace = absl::Milliseconds(300);
  auto group = WorkerGroup::Start(options);
  ASSERT_TRUE(group.ok()) << group.status();
  const absl::Time stop_at = absl::Now() + absl::Milliseconds(200);
  WorkerGroupResult result = (*group)->Wait([&] { return absl::Now() >= stop_at; });
  EXPECT_TRUE(result.stop_requested);
  EXPECT_FALSE(result.failed_rank.has_value());
  ASSERT_EQ(result.exits.size(), 2u);
  EXPECT_EQ(WTERMSIG(result.exits[0].wait_status), SIGTERM);
  EXPECT_EQ(WTERMSIG(result.exits[1].wait_status), SIGKILL);
}

TEST(WorkerGroupTest, ARankKilledByASignalIsTheFailure) {
  WorkerGroupOptions options = Shell({"kill -9 $$", "exec sleep 30"});
  auto group = WorkerGroup::Start(options);
  ASSERT_TRUE(group.ok());
  WorkerGroupResult result = (*group)->Wait(nullptr);
  ASSERT_EQ(result.failed_rank, 0);
  EXPECT_EQ(DescribeWaitStatus(result.exits[0].wait_status), "signal 9 (SIGKILL)");
  EXPECT_TRUE(result.exits[1].stopped);
}

TEST(WorkerGroupTest, CapturesRankZeroStdoutLinesAndEveryRanksStderr) {
  testing::TempDir dir("worker_group");
  WorkerGroupOptions options = Shell({"echo one; echo two >&2; printf 'three'", "echo four; echo five >&2"});
  options.log_dir = dir.File("logs");
  std::vector<std::string> stdout_lines;
  std::vector<std::string> stderr_lines;
  options.on_stdout_line = [&](std::string_view line) { stdout_lines.emplace_back(line); };
  options.on_stderr_line = [&](int rank, std::string_view line) {
    stderr_lines.push_back(std::to_string(rank) + ":" + std::string(line));
  };
  auto group = WorkerGroup::Start(options);
  ASSERT_TRUE(group.ok());
  WorkerGroupResult result = (*group)->Wait(nullptr);
  EXPECT_FALSE(result.failed_rank.has_value());
  // Only rank 0 reports on stdout; a last line without a newline still counts.
  EXPECT_THAT(stdout_lines, ElementsAre("one", "three"));
  EXPECT_THAT(stderr_lines, ::testing::UnorderedElementsAre("0:two", "1:five"));
  std::ifstream log(dir.File("logs/rank-1.log"));
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_EQ(text.str(), "five\n");
}

TEST(WorkerGroupTest, AMissingBinaryIsAnInternalErrorNamingIt) {
  WorkerGroupOptions options;
  options.binary = "/no/such/worker";
  options.rank_args = {{"trainer-worker"}};
  auto group = WorkerGroup::Start(options);
  EXPECT_EQ(group.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(group.status().message(), HasSubstr("/no/such/worker"));
}

}  // namespace
}  // namespace distill::trainer
