// The worker as real processes: two ranks over Gloo on loopback against one rank, a SIGKILLed worker that
// resumes, a rank whose peer died, and the exit-status protocol.

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "services/trainer/training/trainer.h"
#include "services/trainer/training/worker.h"
#include "tests/services/trainer/training/training_testing.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "torch/torch.h"

namespace distill::trainer {
namespace {

using distill::testing::Subprocess;
using testing::ArithmeticExamples;
using ::testing::HasSubstr;
using testing::LocalArgs;
using testing::ModelWeights;
using testing::ReadFile;
using ::testing::StartsWith;
using testing::TinySpec;
using testing::WorkerBinary;
using testing::WriteRecords;
using testing::WriteSpec;

constexpr absl::Duration kTimeout = absl::Seconds(120);

std::unique_ptr<Subprocess> StartWorker(const std::string& run_dir, int rank, int world_size, int port,
                                        int block_after_step = 0) {
  std::vector<std::string> argv = {"/usr/bin/env"};
  if (block_after_step > 0)
    argv.push_back("DISTILL_TEST_BLOCK_AFTER_STEP=" + std::to_string(block_after_step));
  for (std::string a : {WorkerBinary(), std::string("--run-dir"), run_dir, std::string("--rank"),
                        std::to_string(rank), std::string("--world-size"), std::to_string(world_size),
                        std::string("--master-addr"), std::string("127.0.0.1"), std::string("--master-port"),
                        std::to_string(port), std::string("--threads"), std::string("1")}) {
    argv.push_back(a);
  }
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv);
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? std::move(*process) : nullptr;
}

v1::WatchRunResponse ParseEvent(const std::string& line) {
  v1::WatchRunResponse event;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &event).ok()) << line;
  return event;
}

// Reads events until EOF.
std::vector<v1::WatchRunResponse> ReadAllEvents(Subprocess& process) {
  std::vector<v1::WatchRunResponse> events;
  for (;;) {
    absl::StatusOr<std::string> line = process.ReadLine(kTimeout);
    if (!line.ok()) break;
    events.push_back(ParseEvent(*line));
  }
  return events;
}

std::string LastStderrLine(Subprocess& process) {
  std::string err = process.Stderr();
  while (!err.empty() && err.back() == '\n') err.pop_back();
  return err.substr(err.rfind('\n') == std::string::npos ? 0 : err.rfind('\n') + 1);
}

double FinalLoss(const std::vector<v1::WatchRunResponse>& events) {
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (it->has_progress()) return it->progress().losses(0).loss();
  }
  return -1;
}

class WorkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(1); }
  distill::testing::TempDir dir_{"worker_process_test"};
};

TEST_F(WorkerProcessTest, TwoRanksReachTheSameParametersAsOneRankWithTheSameGlobalBatch) {
  const std::string records = dir_.File("records.jsonl");
  WriteRecords(records, ArithmeticExamples(15), v1::OBJECTIVE_STEP_BY_STEP, /*samples=*/2);
  v1::RunSpec one = TinySpec(records, v1::OBJECTIVE_STEP_BY_STEP);
  v1::Hyperparameters* h = one.mutable_training()->mutable_hyperparameters();
  h->set_batch_size(8);
  h->set_max_steps(12);  // 30 records, global batch 8: the last batch of each epoch is short
  h->set_warmup_steps(2);
  h->set_schedule(v1::LR_SCHEDULE_LINEAR);
  const std::string one_dir = dir_.File("one");
  std::vector<v1::WatchRunResponse> one_events;
  ASSERT_TRUE(TrainWithSpec(one, LocalArgs(one_dir), [&](const auto& e) { one_events.push_back(e); }).ok());

  // Two ranks of two micro-batches of 2: the same global batch of 8.
  v1::RunSpec two = one;
  two.mutable_training()->mutable_hyperparameters()->set_batch_size(2);
  two.mutable_training()->mutable_hyperparameters()->set_grad_accumulation_steps(2);
  two.mutable_training()->mutable_distributed()->set_world_size(2);
  const std::string two_dir = dir_.File("two");
  WriteSpec(two_dir, two);
  const int port = distill::testing::FreeLoopbackPort();
  std::unique_ptr<Subprocess> rank0 = StartWorker(two_dir, 0, 2, port);
  std::unique_ptr<Subprocess> rank1 = StartWorker(two_dir, 1, 2, port);
  ASSERT_TRUE(rank0 && rank1);
  const std::vector<v1::WatchRunResponse> two_events = ReadAllEvents(*rank0);
  absl::StatusOr<int> status0 = rank0->Wait(kTimeout);
  absl::StatusOr<int> status1 = rank1->Wait(kTimeout);
  ASSERT_TRUE(status0.ok() && status1.ok());
  ASSERT_EQ(*status0, 0) << rank0->Stderr();
  ASSERT_EQ(*status1, 0) << rank1->Stderr();
  EXPECT_EQ(rank1->PendingStdout(), "");  // only rank 0 reports

  const double difference = testing::MaxAbsDifference(ModelWeights(one_dir), ModelWeights(two_dir));
  EXPECT_LT(difference, 1e-4);  // measured 1.2e-5: float summation order only
  RecordProperty("max_abs_parameter_difference", std::to_string(difference));
  EXPECT_NEAR(FinalLoss(two_events), FinalLoss(one_events), 1e-5);
  // The all-reduce phase is measured with two ranks.
  bool all_reduce_timed = false;
  for (const auto& e : two_events)
    all_reduce_timed |= e.has_progress() && e.progress().phases().all_reduce() > 0;
  EXPECT_TRUE(all_reduce_timed);
}

TEST_F(WorkerProcessTest, SigkilledWorkerResumesFromItsCheckpointAndEndsLikeAnUninterruptedRun) {
  const std::string records = dir_.File("records.jsonl");
  WriteRecords(records, ArithmeticExamples(20), v1::OBJECTIVE_STANDARD, /*samples=*/2);
  v1::RunSpec spec = TinySpec(records);
  v1::Hyperparameters* h = spec.mutable_training()->mutable_hyperparameters();
  h->set_batch_size(8);
  h->set_max_steps(20);
  h->set_checkpoint_interval_steps(5);
  h->set_dropout_rate(0.1);
  h->set_schedule(v1::LR_SCHEDULE_COSINE);
  h->set_warmup_steps(4);
  const std::string reference_dir = dir_.File("reference");
  std::vector<v1::WatchRunResponse> reference;
  ASSERT_TRUE(
      TrainWithSpec(spec, LocalArgs(reference_dir), [&](const auto& e) { reference.push_back(e); }).ok());

  const std::string run_dir = dir_.File("run");
  WriteSpec(run_dir, spec);
  // The worker cannot get past step 12, so the kill lands after the checkpoint of step 5 and before the end,
  // wherever it lands.
  std::unique_ptr<Subprocess> first = StartWorker(run_dir, 0, 1, 0, /*block_after_step=*/12);
  ASSERT_TRUE(first);
  for (;;) {
    absl::StatusOr<std::string> line = first->ReadLine(kTimeout);
    ASSERT_TRUE(line.ok()) << line.status() << first->Stderr();
    const v1::WatchRunResponse event = ParseEvent(*line);
    if (event.has_checkpoint() && event.checkpoint().step() >= 5) break;
  }
  first->Signal(SIGKILL);
  absl::StatusOr<int> killed = first->Wait(kTimeout);
  ASSERT_TRUE(killed.ok());
  ASSERT_TRUE(WIFSIGNALED(*killed));
  EXPECT_EQ(WTERMSIG(*killed), SIGKILL);
  const std::string latest = ReadFile(run_dir + "/checkpoints/latest");
  EXPECT_THAT(latest, ::testing::AnyOf("step-5\n", "step-10\n"));
  EXPECT_FALSE(std::filesystem::exists(run_dir + "/model"));

  std::unique_ptr<Subprocess> second = StartWorker(run_dir, 0, 1, 0);
  ASSERT_TRUE(second);
  const std::vector<v1::WatchRunResponse> events = ReadAllEvents(*second);
  absl::StatusOr<int> finished = second->Wait(kTimeout);
  ASSERT_TRUE(finished.ok());
  ASSERT_EQ(*finished, 0) << second->Stderr();
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.front().has_state_changed());
  EXPECT_EQ(events.front().state_changed().state(), v1::RUN_STATE_RUNNING);
  EXPECT_EQ("step-" + std::to_string(events.front().state_changed().resumed_from_step()) + "\n", latest);

  EXPECT_EQ(FinalLoss(events), FinalLoss(reference));
  EXPECT_EQ(ReadFile(run_dir + "/model/model.safetensors"),
            ReadFile(reference_dir + "/model/model.safetensors"));
}

TEST_F(WorkerProcessTest, ARankWhosePeerDiedFailsInsteadOfHanging) {
  const std::string records = dir_.File("records.jsonl");
  WriteRecords(records, ArithmeticExamples(8), v1::OBJECTIVE_STANDARD);
  v1::RunSpec spec = TinySpec(records);
  spec.mutable_training()->mutable_hyperparameters()->set_batch_size(2);
  spec.mutable_training()->mutable_hyperparameters()->set_max_steps(50);
  spec.mutable_training()->mutable_distributed()->set_world_size(2);
  const std::string run_dir = dir_.File("run");
  WriteSpec(run_dir, spec);
  const int port = distill::testing::FreeLoopbackPort();
  std::unique_ptr<Subprocess> rank0 = StartWorker(run_dir, 0, 2, port);
  std::unique_ptr<Subprocess> rank1 = StartWorker(run_dir, 1, 2, port, /*block_after_step=*/3);
  ASSERT_TRUE(rank0 && rank1);
  // Rank 0 is past the rendezvous once it reports RUNNING.
  absl::StatusOr<std::string> running = rank0->ReadLine(kTimeout);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_TRUE(ParseEvent(*running).has_state_changed());
  rank1->Signal(SIGKILL);
  ASSERT_TRUE(rank1->Wait(kTimeout).ok());
  absl::StatusOr<int> status = rank0->Wait(kTimeout);
  ASSERT_TRUE(status.ok()) << "rank 0 hangs";
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), static_cast<int>(absl::StatusCode::kUnavailable)) << rank0->Stderr();
  EXPECT_THAT(LastStderrLine(*rank0), StartsWith("error: rank 0: "));
}

TEST_F(WorkerProcessTest, FailureExitsWithTheStatusCodeAndAnErrorLine) {
  const std::string records = dir_.File("records.jsonl");
  WriteRecords(records, ArithmeticExamples(4), v1::OBJECTIVE_STANDARD);
  v1::RunSpec spec = TinySpec(records);
  spec.mutable_training()->mutable_hyperparameters()->set_batch_size(0);
  const std::string run_dir = dir_.File("run");
  WriteSpec(run_dir, spec);
  std::unique_ptr<Subprocess> worker = StartWorker(run_dir, 0, 1, 0);
  ASSERT_TRUE(worker);
  absl::StatusOr<int> status = worker->Wait(kTimeout);
  ASSERT_TRUE(status.ok() && WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(LastStderrLine(*worker), "error: training.hyperparameters.batch_size: must be >= 1, got 0");
  EXPECT_EQ(worker->PendingStdout(), "");
}

TEST(ParseWorkerArgsTest, FlagsAndEnvironment) {
  absl::StatusOr<WorkerArgs> args =
      ParseWorkerArgs({"--run-dir", "/r", "--rank", "1", "--world-size", "2", "--master-addr", "10.0.0.1",
                       "--master_port", "29500", "--threads", "3"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->run_dir, "/r");
  EXPECT_EQ(args->rank, 1);
  EXPECT_EQ(args->world_size, 2);
  EXPECT_EQ(args->master_addr, "10.0.0.1");
  EXPECT_EQ(args->master_port, 29500);
  EXPECT_EQ(args->threads, 3);

  ::setenv("RANK", "1", 1);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("MASTER_ADDR", "trainer-0.trainer", 1);
  ::setenv("MASTER_PORT", "29400", 1);
  args = ParseWorkerArgs({"--run-dir", "/r"});
  ::unsetenv("RANK");
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("MASTER_ADDR");
  ::unsetenv("MASTER_PORT");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->rank, 1);
  EXPECT_EQ(args->world_size, 4);
  EXPECT_EQ(args->master_addr, "trainer-0.trainer");
  EXPECT_EQ(args->master_port, 29400);

  EXPECT_THAT(std::string(ParseWorkerArgs({"--rank", "0"}).status().message()),
              HasSubstr("--run-dir: required"));
  EXPECT_THAT(std::string(ParseWorkerArgs(
                              {"--run-dir", "/r", "--rank", "2", "--world-size", "2", "--master-port", "1"})
                              .status()
                              .message()),
              HasSubstr("--rank: must be in [0, 2), got 2"));
  EXPECT_THAT(std::string(ParseWorkerArgs({"--run-dir", "/r", "--world-size", "2"}).status().message()),
              HasSubstr("--master-port"));
  EXPECT_EQ(ParseWorkerArgs({"--run-dir", "/r", "--bogus"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace distill::trainer
