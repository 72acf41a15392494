// The Trainer gRPC service over real gRPC on loopback, with real worker processes (distill-trainer
// trainer-worker) training the tiny preset on a small arithmetic dataset.

#include "services/trainer/trainer_service.h"

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/config/yaml.h"
#include "common/hash/sha256.h"
#include "common/rpc/server.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/services/trainer/trainer_test_support.h"
#include "tests/support/paths.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace distill::services {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kWorkerBinary = ::distill::testing::BinaryDir() + "/bin/distill-trainer";
const std::string kDistillBinary = ::distill::testing::BinaryDir() + "/bin/distill";
constexpr absl::Duration kRunTimeout = absl::Seconds(60);

class TrainerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = temp_.path() + "/store";
    std::filesystem::create_directories(root_ + "/data");
    std::ofstream(root_ + "/data/records.jsonl") << testing::ArithmeticRecords(24);
    StartServer("");
  }

  void TearDown() override { StopServer(); }

  void StartServer(const std::string& extra_config, const std::string& worker_binary = kWorkerBinary) {
    rpc::ServiceDefinition definition = TrainerDefinition();
    auto doc = config::Document::Parse(
        absl::StrCat("trainer:\n  artifact_root: ", root_, "\n  worker_binary: ", worker_binary,
                     "\n  worker_kill_grace: 5s\n", extra_config),
        "test.yaml");
    ASSERT_TRUE(doc.ok()) << doc.status();
    config::Node node = doc->Root();
    definition.read_config(node);
    ASSERT_TRUE(doc->Finish().ok()) << doc->Finish();
    auto server = rpc::Server::Start("trainer", rpc::ServerOptions{}, definition.factory);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(server_->grpc_address(), grpc::InsecureChannelCredentials());
    stub_ = v1::Trainer::NewStub(channel_);
  }

  void StopServer() {
    stub_.reset();
    channel_.reset();  // an idle 1.51 client channel delays the server's shutdown by seconds
    if (server_ != nullptr) server_->Shutdown();
  }

  // A tiny step-by-step run: preset tiny, 1 rank, 1 thread, checkpoints every 10 steps.
  static v1::StartRunRequest TinyRun(const std::string& request_id, int64_t max_steps) {
    v1::StartRunRequest request;
    request.set_client_request_id(request_id);
    v1::RunSpec* spec = request.mutable_spec();
    spec->set_name("tiny-arith");
    spec->mutable_dataset()->set_uri("artifact://data/records.jsonl");
    spec->mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
    spec->mutable_student()->set_preset("tiny");
    v1::TrainingOptions* t = spec->mutable_training();
    t->set_objective(v1::OBJECTIVE_STEP_BY_STEP);
    t->set_alpha(0.5);
    v1::Hyperparameters* h = t->mutable_hyperparameters();
    h->set_learning_rate(1e-3);
    h->set_batch_size(4);
    h->set_max_steps(max_steps);
    h->set_log_interval_steps(5);
    h->set_checkpoint_interval_steps(10);
    h->set_eval_interval_steps(std::max<int64_t>(10, max_steps));
    h->set_max_source_tokens(48);
    h->set_max_target_tokens(16);
    h->set_seed(7);
    t->mutable_distributed()->set_world_size(1);
    t->mutable_distributed()->set_threads_per_rank(1);
    spec->mutable_eval()->set_holdout_fraction(0.25);
    spec->mutable_eval()->set_max_examples(3);
    spec->mutable_eval()->set_max_new_tokens(8);
    return request;
  }

  absl::StatusOr<v1::Run> Start(const v1::StartRunRequest& request, bool* created = nullptr) {
    grpc::ClientContext context;
    v1::StartRunResponse response;
    grpc::Status status = stub_->StartRun(&context, request, &response);
    if (!status.ok())
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
    if (created != nullptr) *created = response.created();
    return response.run();
  }

  grpc::Status StartStatus(const v1::StartRunRequest& request) {
    grpc::ClientContext context;
    v1::StartRunResponse response;
    return stub_->StartRun(&context, request, &response);
  }

  // Reads the whole WatchRun stream; `on_event` sees each message as it arrives (and may return false to
  // stop watching early).
  std::vector<v1::WatchRunResponse> Watch(
      const std::string& run_id, const std::function<bool(const v1::WatchRunResponse&)>& on_event = nullptr,
      grpc::Status* final_status = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kRunTimeout));
    v1::WatchRunRequest request;
    request.set_run_id(run_id);
    std::unique_ptr<grpc::ClientReader<v1::WatchRunResponse>> reader = stub_->WatchRun(&context, request);
    std::vector<v1::WatchRunResponse> events;
    v1::WatchRunResponse event;
    while (reader->Read(&event)) {
      events.push_back(event);
      if (on_event && !on_event(event)) {
        context.TryCancel();
        break;
      }
    }
    grpc::Status status = reader->Finish();
    if (final_status != nullptr) *final_status = status;
    return events;
  }

  v1::Run Get(const std::string& run_id) {
    grpc::ClientContext context;
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    v1::GetRunResponse response;
    EXPECT_TRUE(stub_->GetRun(&context, request, &response).ok());
    return response.run();
  }

  absl::StatusOr<v1::Run> Cancel(const std::string& run_id) {
    grpc::ClientContext context;
    v1::CancelRunRequest request;
    request.set_run_id(run_id);
    v1::CancelRunResponse response;
    grpc::Status status = stub_->CancelRun(&context, request, &response);
    if (!status.ok())
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
    return response.run();
  }

  std::string RunDir(const v1::Run& run) { return absl::StrCat(root_, "/runs/", run.run_id()); }

  static int Count(const std::vector<v1::WatchRunResponse>& events, v1::WatchRunResponse::EventCase which) {
    int n = 0;
    for (const auto& e : events) n += e.event_case() == which ? 1 : 0;
    return n;
  }

  distill::testing::TempDir temp_{"trainer_service"};
  std::string root_;
  std::unique_ptr<rpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Trainer::Stub> stub_;
};

TEST_F(TrainerServiceTest, RunTrainsToSucceededWithProgressEvalAndCheckpointEvents) {
  bool created = false;
  absl::StatusOr<v1::Run> run = Start(TinyRun("first", 20), &created);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_TRUE(created);
  EXPECT_THAT(run->run_id(), StartsWith("run-"));
  EXPECT_EQ(run->spec().output_uri(), absl::StrCat("artifact://runs/", run->run_id(), "/"));
  EXPECT_TRUE(run->has_create_time());

  std::vector<v1::WatchRunResponse> events = Watch(run->run_id());
  ASSERT_GE(events.size(), 2u);
  ASSERT_TRUE(events.front().has_run());
  EXPECT_EQ(events.front().run().run_id(), run->run_id());
  ASSERT_TRUE(events.back().has_run());
  const v1::Run& done = events.back().run();
  ASSERT_EQ(done.state(), v1::RUN_STATE_SUCCEEDED) << done.failure_cause();
  EXPECT_GE(Count(events, v1::WatchRunResponse::kProgress), 3);
  EXPECT_GE(Count(events, v1::WatchRunResponse::kCheckpoint), 2);
  EXPECT_GE(Count(events, v1::WatchRunResponse::kEval), 1);
  EXPECT_EQ(events[events.size() - 2].state_changed().state(), v1::RUN_STATE_SUCCEEDED);
  for (const auto& e : events) EXPECT_TRUE(e.has_time());

  EXPECT_EQ(done.progress().step(), 20);
  EXPECT_EQ(done.progress().total_steps(), 20);
  EXPECT_TRUE(done.has_latest_eval());
  EXPECT_TRUE(done.has_best_eval());
  EXPECT_EQ(done.latest_checkpoint().step(), 20);
  EXPECT_THAT(done.latest_checkpoint().checkpoint().uri(),
              StartsWith(absl::StrCat("artifact://runs/", run->run_id(), "/checkpoints/")));
  EXPECT_TRUE(done.has_start_time());
  EXPECT_TRUE(done.has_end_time());
  EXPECT_EQ(done.failure_code(), 0);
  EXPECT_EQ(done.model().uri(), absl::StrCat("artifact://runs/", run->run_id(), "/model/"));
  const std::string model_dir = RunDir(*run) + "/model";
  std::ifstream manifest(model_dir + "/manifest.json");
  std::string manifest_text((std::istreambuf_iterator<char>(manifest)), std::istreambuf_iterator<char>());
  EXPECT_EQ(done.model().content_hash(), "sha256:" + hash::Sha256Hex(manifest_text));
  EXPECT_GT(done.model().size_bytes(), 0);
  for (const char* file : {"config.json", "model.safetensors", "spiece.model"}) {
    EXPECT_TRUE(std::filesystem::exists(model_dir + "/" + file)) << file;
  }
  // The model loads with the student library (`distill model info`).
  auto info = distill::testing::Subprocess::Start({kDistillBinary, "model", "info", model_dir, "--json"});
  ASSERT_TRUE(info.ok());
  absl::StatusOr<int> info_status = (*info)->Wait(absl::Seconds(30));
  ASSERT_TRUE(info_status.ok());
  EXPECT_EQ(WEXITSTATUS(*info_status), 0) << (*info)->Stderr();
  EXPECT_EQ(nlohmann::json::parse((*info)->PendingStdout())["family"], "t5");
  // spec.json holds the resolved paths the workers read.
  std::ifstream spec(RunDir(*run) + "/spec.json");
  nlohmann::json spec_json = nlohmann::json::parse(spec);
  EXPECT_EQ(spec_json["dataset"]["uri"], root_ + "/data/records.jsonl");

  // GetRun agrees; a watcher of a finished run gets its final snapshot only.
  v1::Run got = Get(run->run_id());
  EXPECT_EQ(got.state(), v1::RUN_STATE_SUCCEEDED);
  EXPECT_EQ(got.model().uri(), done.model().uri());
  std::vector<v1::WatchRunResponse> again = Watch(run->run_id());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].run().state(), v1::RUN_STATE_SUCCEEDED);

  // The metrics export every distill_trainer_* family, and promtool accepts them.
  const std::string text = server_->registry().Serialize();
  for (const char* family :
       {"distill_trainer_loss_nats{task=\"total\"}", "distill_trainer_loss_nats{task=\"rationale\"}",
        "distill_trainer_learning_rate ", "distill_trainer_tokens_per_second ",
        "distill_trainer_samples_per_second ", "distill_trainer_step_seconds_bucket{phase=\"forward\"",
        "distill_trainer_step_seconds_count{phase=\"total\"}", "distill_trainer_eval_accuracy_ratio ",
        "distill_trainer_checkpoint_write_seconds_count ", "distill_trainer_world_size 0",
        "distill_trainer_runs{state=\"succeeded\"} 1", "distill_trainer_worker_restarts_total 0",
        "distill_trainer_runs_started_total{outcome=\"created\"} 1",
        "distill_trainer_runs_finished_total{state=\"succeeded\"} 1", "distill_trainer_steps_total 20",
        "distill_trainer_nonfinite_losses_total{task=\"total\"} 0"}) {
    EXPECT_THAT(text, HasSubstr(family));
  }
  // Set at the run's start and at each progress event: a recent Unix time.
  const size_t at = text.find("\ndistill_trainer_last_progress_timestamp_seconds ");
  ASSERT_NE(at, std::string::npos);
  const double last_progress = std::stod(text.substr(text.find(' ', at + 1) + 1));
  EXPECT_NEAR(last_progress, absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()), 300);
  const std::string path = temp_.File("trainer_metrics.txt");
  std::ofstream(path) << text;
  EXPECT_EQ(std::system((::distill::testing::Promtool() + " check metrics < " + path).c_str()), 0);
}

TEST_F(TrainerServiceTest, StartRunIsIdempotentAndLateWatchersCatchUp) {
  // Long enough never to finish on its own: the test cancels it, so nothing depends on its speed.
  absl::StatusOr<v1::Run> run = Start(TinyRun("idem", 100000));
  ASSERT_TRUE(run.ok()) << run.status();
  bool created = true;
  absl::StatusOr<v1::Run> same = Start(TinyRun("idem", 100000), &created);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_FALSE(created);
  EXPECT_EQ(same->run_id(), run->run_id());
  grpc::Status different = StartStatus(TinyRun("idem", 100001));
  EXPECT_EQ(different.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(different.error_message(), HasSubstr(run->run_id()));

  // A watcher that leaves early does not disturb the run.
  std::vector<v1::WatchRunResponse> early =
      Watch(run->run_id(), [](const v1::WatchRunResponse&) { return false; });
  EXPECT_EQ(early.size(), 1u);

  // A second watcher attaches after the first checkpoint and gets the snapshot so far, then the rest; the
  // run is cancelled after the second checkpoint.
  std::vector<v1::WatchRunResponse> late;
  std::thread second, canceller;
  std::vector<v1::WatchRunResponse> first = Watch(run->run_id(), [&](const v1::WatchRunResponse& e) {
    if (e.has_checkpoint() && e.checkpoint().step() == 10) {
      second = std::thread([&] { late = Watch(run->run_id()); });
    }
    if (e.has_checkpoint() && e.checkpoint().step() == 20) {
      canceller = std::thread([&] { EXPECT_TRUE(Cancel(run->run_id()).ok()); });
    }
    return true;
  });
  ASSERT_TRUE(second.joinable());
  ASSERT_TRUE(canceller.joinable());
  second.join();
  canceller.join();
  ASSERT_GE(late.size(), 3u);
  ASSERT_TRUE(late.front().has_run());
  EXPECT_EQ(late.front().run().state(), v1::RUN_STATE_RUNNING);
  EXPECT_GE(late.front().run().latest_checkpoint().step(), 10);
  EXPECT_GE(late.front().run().progress().step(), 10);
  ASSERT_TRUE(late.back().has_run());
  EXPECT_EQ(late.back().run().state(), v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(first.back().run().state(), v1::RUN_STATE_CANCELLED);
  // Everything the late watcher saw after its snapshot, the first saw too: the same events, in the same
  // order, at the end of its stream.
  ASSERT_LE(late.size(), first.size());
  for (size_t i = 1; i + 1 < late.size(); ++i) {
    EXPECT_EQ(late[i].SerializeAsString(), first[first.size() - late.size() + i].SerializeAsString()) << i;
  }
}

TEST_F(TrainerServiceTest, CancelRunStopsTheWorkers) {
  absl::StatusOr<v1::Run> run = Start(TinyRun("cancel", 100000));
  ASSERT_TRUE(run.ok()) << run.status();
  Watch(run->run_id(), [](const v1::WatchRunResponse& e) { return !e.has_progress(); });
  std::map<int, pid_t> workers = distill::testing::FindWorkers(RunDir(*run));
  ASSERT_EQ(workers.size(), 1u);
  absl::StatusOr<v1::Run> cancelled = Cancel(run->run_id());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(cancelled->failure_cause(), "cancelled by client");
  EXPECT_EQ(cancelled->failure_code(), 0);
  EXPECT_TRUE(cancelled->has_end_time());
  EXPECT_TRUE(distill::testing::AllGone({workers[0]}, absl::Seconds(1)));
  // Cancelling again returns the run unchanged; the stream of a cancelled run ends at once.
  absl::StatusOr<v1::Run> again = Cancel(run->run_id());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state(), v1::RUN_STATE_CANCELLED);
  std::vector<v1::WatchRunResponse> events = Watch(run->run_id());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].run().state(), v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(Cancel("run-000000000000").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TrainerServiceTest, CrashedWorkerFailsTheRunWithItsCauseWithoutRestarts) {
  absl::StatusOr<v1::Run> run = Start(TinyRun("crash", 100000));
  ASSERT_TRUE(run.ok()) << run.status();
  std::vector<v1::WatchRunResponse> events = Watch(run->run_id(), [&](const v1::WatchRunResponse& e) {
    if (e.has_progress() && e.progress().step() == 5) {
      std::map<int, pid_t> workers = distill::testing::FindWorkers(RunDir(*run));
      EXPECT_EQ(workers.size(), 1u);
      if (!workers.empty()) kill(workers[0], SIGKILL);
    }
    return true;
  });
  ASSERT_TRUE(events.back().has_run());
  const v1::Run& failed = events.back().run();
  EXPECT_EQ(failed.state(), v1::RUN_STATE_FAILED);
  EXPECT_EQ(failed.failure_cause(), "worker rank 0 exited with signal 9 (SIGKILL)");
  EXPECT_EQ(failed.failure_code(), static_cast<int>(grpc::StatusCode::INTERNAL));
  EXPECT_EQ(failed.worker_restarts(), 0);
  EXPECT_THAT(server_->registry().Serialize(),
              HasSubstr("distill_trainer_runs_finished_total{state=\"failed\"} 1"));
}

// A worker that reports a NaN loss: the run is not judged by it (the worker decides whether to go on), but
// the non-finite loss counter and the step counter move, so an alert can fire.
TEST_F(TrainerServiceTest, NonFiniteLossesAreCounted) {
  StopServer();
  const std::string worker = temp_.File("nan_worker.sh");
  std::ofstream(worker) << "#!/bin/sh\n"
                           "echo '{\"progress\": {\"step\": 5, \"totalSteps\": 10, \"losses\": "
                           "[{\"task\": \"LOSS_TASK_TOTAL\", \"loss\": \"NaN\"}, "
                           "{\"task\": \"LOSS_TASK_LABEL\", \"loss\": \"Infinity\"}, "
                           "{\"task\": \"LOSS_TASK_RATIONALE\", \"loss\": 2.5}]}}'\n"
                           "echo 'error: diverged' >&2\n"
                           "exit 13\n";
  std::filesystem::permissions(worker, std::filesystem::perms::owner_all);
  StartServer("", worker);
  absl::StatusOr<v1::Run> run = Start(TinyRun("nan", 10));
  ASSERT_TRUE(run.ok()) << run.status();
  std::vector<v1::WatchRunResponse> events = Watch(run->run_id());
  ASSERT_TRUE(events.back().has_run());
  EXPECT_EQ(events.back().run().state(), v1::RUN_STATE_FAILED);
  const std::string text = server_->registry().Serialize();
  EXPECT_THAT(text, HasSubstr("distill_trainer_nonfinite_losses_total{task=\"total\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("distill_trainer_nonfinite_losses_total{task=\"label\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("distill_trainer_nonfinite_losses_total{task=\"rationale\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("distill_trainer_steps_total 5\n"));
}

TEST_F(TrainerServiceTest, ACrashedRankOfTwoRestartsTheGroupFromItsCheckpoint) {
  v1::StartRunRequest request = TinyRun("two-ranks", 100000);
  request.mutable_spec()->mutable_training()->mutable_distributed()->set_world_size(2);
  request.mutable_spec()->mutable_training()->mutable_hyperparameters()->set_batch_size(2);
  request.mutable_spec()->mutable_training()->set_max_worker_restarts(1);
  absl::StatusOr<v1::Run> run = Start(request);
  ASSERT_TRUE(run.ok()) << run.status();
  std::vector<pid_t> killed_group;
  bool restarted = false;
  std::thread canceller;
  std::vector<v1::WatchRunResponse> events = Watch(run->run_id(), [&](const v1::WatchRunResponse& e) {
    if (e.has_checkpoint() && e.checkpoint().step() == 10 && killed_group.empty()) {
      std::map<int, pid_t> workers = distill::testing::FindWorkers(RunDir(*run));
      EXPECT_EQ(workers.size(), 2u);
      for (const auto& [rank, pid] : workers) killed_group.push_back(pid);
      if (workers.count(1) > 0) kill(workers[1], SIGKILL);
    }
    if (e.has_state_changed() && e.state_changed().resumed_from_step() == 10) restarted = true;
    // Training goes on from the checkpoint in a new group of two; then the test is done with it.
    if (restarted && e.has_progress() && e.progress().step() > 10 && !canceller.joinable()) {
      EXPECT_EQ(distill::testing::FindWorkers(RunDir(*run)).size(), 2u);
      canceller = std::thread([&] { EXPECT_TRUE(Cancel(run->run_id()).ok()); });
    }
    return true;
  });
  ASSERT_TRUE(canceller.joinable());
  canceller.join();
  ASSERT_EQ(killed_group.size(), 2u);
  // Rank 0 of the crashed group was stopped too.
  EXPECT_TRUE(distill::testing::AllGone(killed_group, absl::Seconds(1)));
  ASSERT_TRUE(events.back().has_run());
  const v1::Run& done = events.back().run();
  EXPECT_EQ(done.state(), v1::RUN_STATE_CANCELLED) << done.failure_cause();
  EXPECT_EQ(done.worker_restarts(), 1);
  bool restart_announced = false;
  for (const auto& e : events) {
    if (e.has_state_changed() &&
        e.state_changed().message() ==
            "worker rank 1 exited with signal 9 (SIGKILL), restarting from step 10") {
      restart_announced = true;
      EXPECT_EQ(e.state_changed().state(), v1::RUN_STATE_RUNNING);
      EXPECT_EQ(e.state_changed().resumed_from_step(), 10);
    }
  }
  EXPECT_TRUE(restart_announced);
  EXPECT_THAT(server_->registry().Serialize(), HasSubstr("distill_trainer_worker_restarts_total 1"));
}

TEST_F(TrainerServiceTest, BadSpecsAreRejectedNamingTheField) {
  std::filesystem::create_directories(root_ + "/bad");
  std::ofstream(root_ + "/bad/empty.jsonl") << "";
  std::ofstream(root_ + "/bad/no_rationales.jsonl") << distill::testing::ArithmeticRecords(4, false);
  struct Case {
    std::string name;
    std::function<void(v1::StartRunRequest&)> edit;
    grpc::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no request id", [](v1::StartRunRequest& r) { r.clear_client_request_id(); },
       grpc::StatusCode::INVALID_ARGUMENT, "client_request_id"},
      {"no spec", [](v1::StartRunRequest& r) { r.clear_spec(); }, grpc::StatusCode::INVALID_ARGUMENT, "spec"},
      {"no dataset", [](v1::StartRunRequest& r) { r.mutable_spec()->clear_dataset(); },
       grpc::StatusCode::INVALID_ARGUMENT, "dataset.uri"},
      {"missing dataset",
       [](v1::StartRunRequest& r) {
         r.mutable_spec()->mutable_dataset()->set_uri("artifact://nope/records.jsonl");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "dataset.uri"},
      {"empty dataset",
       [](v1::StartRunRequest& r) {
         r.mutable_spec()->mutable_dataset()->set_uri("artifact://bad/empty.jsonl");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "dataset"},
      {"escaping dataset",
       [](v1::StartRunRequest& r) { r.mutable_spec()->mutable_dataset()->set_uri("artifact://../x.jsonl"); },
       grpc::StatusCode::INVALID_ARGUMENT, "dataset.uri"},
      {"dataset hash",
       [](v1::StartRunRequest& r) { r.mutable_spec()->mutable_dataset()->set_content_hash("sha256:00"); },
       grpc::StatusCode::FAILED_PRECONDITION, "dataset.content_hash"},
      {"records without rationales",
       [](v1::StartRunRequest& r) {
         r.mutable_spec()->mutable_dataset()->set_uri("artifact://bad/no_rationales.jsonl");
       },
       grpc::StatusCode::FAILED_PRECONDITION, "rationale"},
      {"learning rate 0",
       [](v1::StartRunRequest& r) {
         r.mutable_spec()->mutable_training()->mutable_hyperparameters()->set_learning_rate(0);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "training.hyperparameters.learning_rate"},
      {"negative learning rate",
       [](v1::StartRunRequest& r) {
         r.mutable_spec()->mutable_training()->mutable_hyperparameters()->set_learning_rate(-1);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "training.hyperparameters.learning_rate"},
      {"batch size 0",
       [](v1::StartRunRequest& r) {
         r.mutable_spec()->mutable_training()->mutable_hyperparameters()->set_batch_size(0);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "training.hyperparameters.batch_size"},
      {"alpha above 1", [](v1::StartRunRequest& r) { r.mutable_spec()->mutable_training()->set_alpha(1.5); },
       grpc::StatusCode::INVALID_ARGUMENT, "training.alpha"},
      {"alpha below 0", [](v1::StartRunRequest& r) { r.mutable_spec()->mutable_training()->set_alpha(-0.1); },
       grpc::StatusCode::INVALID_ARGUMENT, "training.alpha"},
      {"world size 0",
       [](v1::StartRunRequest& r) {
         r.mutable_spec()->mutable_training()->mutable_distributed()->set_world_size(0);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "training.distributed.world_size"},
      {"missing checkpoint",
       [](v1::StartRunRequest& r) {
         r.mutable_spec()->mutable_student()->mutable_checkpoint()->set_uri("artifact://nope/");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "student.checkpoint"},
  };
  for (const Case& c : cases) {
    v1::StartRunRequest request = TinyRun("bad-" + c.name, 10);
    c.edit(request);
    grpc::Status status = StartStatus(request);
    EXPECT_EQ(status.error_code(), c.code) << c.name << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message)) << c.name;
  }

  // A checkpoint whose weights do not match its config.json.
  const std::string checkpoint = root_ + "/ckpt";
  auto init = distill::testing::Subprocess::Start(
      {kDistillBinary, "model", "init", "--preset", "tiny", "--out", checkpoint, "--seed", "1"});
  ASSERT_TRUE(init.ok());
  absl::StatusOr<int> init_status = (*init)->Wait(absl::Seconds(30));
  ASSERT_TRUE(init_status.ok());
  ASSERT_EQ(WEXITSTATUS(*init_status), 0) << (*init)->Stderr();
  std::ifstream config_in(checkpoint + "/config.json");
  nlohmann::json config = nlohmann::json::parse(config_in);
  config["d_ff"] = 96;
  std::ofstream(checkpoint + "/config.json") << config.dump();
  v1::StartRunRequest request = TinyRun("bad-checkpoint", 10);
  request.mutable_spec()->mutable_student()->mutable_checkpoint()->set_uri("artifact://ckpt/");
  grpc::Status status = StartStatus(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("student.checkpoint"));
  EXPECT_THAT(status.error_message(), HasSubstr("config needs [96, 64]"));

  // Nothing was started, and the rejections are counted.
  grpc::ClientContext context;
  v1::ListRunsResponse list;
  ASSERT_TRUE(stub_->ListRuns(&context, v1::ListRunsRequest(), &list).ok());
  EXPECT_EQ(list.runs_size(), 0);
  EXPECT_THAT(
      server_->registry().Serialize(),
      HasSubstr(absl::StrCat("distill_trainer_runs_started_total{outcome=\"rejected\"} ", cases.size() + 1)));

  for (const std::string& id : {std::string(""), std::string("run-unknown")}) {
    grpc::ClientContext get_context;
    v1::GetRunRequest get;
    get.set_run_id(id);
    v1::GetRunResponse response;
    EXPECT_EQ(stub_->GetRun(&get_context, get, &response).error_code(),
              id.empty() ? grpc::StatusCode::INVALID_ARGUMENT : grpc::StatusCode::NOT_FOUND);
  }
  grpc::Status watch_status;
  Watch("run-unknown", nullptr, &watch_status);
  EXPECT_EQ(watch_status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(TrainerServiceTest, ListRunsPagesNewestFirstAndFiltersByState) {
  // One run trains at a time (the default); the others wait.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<v1::Run> run = Start(TinyRun(absl::StrCat("list-", i), 100000));
    ASSERT_TRUE(run.ok()) << run.status();
    ids.push_back(run->run_id());
  }
  EXPECT_EQ(Get(ids[1]).state(), v1::RUN_STATE_QUEUED);
  EXPECT_EQ(Get(ids[2]).state(), v1::RUN_STATE_QUEUED);

  auto list = [&](int page_size, const std::string& token, v1::RunState state,
                  v1::ListRunsResponse* response) {
    grpc::ClientContext context;
    v1::ListRunsRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    request.set_state(state);
    return stub_->ListRuns(&context, request, response);
  };
  v1::ListRunsResponse page1, page2;
  ASSERT_TRUE(list(2, "", v1::RUN_STATE_UNSPECIFIED, &page1).ok());
  ASSERT_EQ(page1.runs_size(), 2);
  EXPECT_EQ(page1.runs(0).run_id(), ids[2]);
  EXPECT_EQ(page1.runs(1).run_id(), ids[1]);
  ASSERT_FALSE(page1.next_page_token().empty());
  ASSERT_TRUE(list(2, page1.next_page_token(), v1::RUN_STATE_UNSPECIFIED, &page2).ok());
  ASSERT_EQ(page2.runs_size(), 1);
  EXPECT_EQ(page2.runs(0).run_id(), ids[0]);
  EXPECT_TRUE(page2.next_page_token().empty());

  v1::ListRunsResponse queued;
  ASSERT_TRUE(list(0, "", v1::RUN_STATE_QUEUED, &queued).ok());
  ASSERT_EQ(queued.runs_size(), 2);
  EXPECT_EQ(queued.runs(0).run_id(), ids[2]);
  v1::ListRunsResponse wrong;
  grpc::Status mismatch = list(2, page1.next_page_token(), v1::RUN_STATE_QUEUED, &wrong);
  EXPECT_EQ(mismatch.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(mismatch.error_message(), HasSubstr("page_token"));
  EXPECT_EQ(list(2, "garbage!", v1::RUN_STATE_UNSPECIFIED, &wrong).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(list(1001, "", v1::RUN_STATE_UNSPECIFIED, &wrong).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A queued run cancels at once; the next one in line starts when the running one is cancelled.
  absl::StatusOr<v1::Run> cancelled = Cancel(ids[1]);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::RUN_STATE_CANCELLED);
  EXPECT_FALSE(cancelled->has_start_time());
  ASSERT_TRUE(Cancel(ids[0]).ok());
  std::vector<v1::WatchRunResponse> third = Watch(ids[2], [](const v1::WatchRunResponse& e) {
    return !(e.has_run() && e.run().state() == v1::RUN_STATE_RUNNING) && !e.has_state_changed();
  });
  EXPECT_EQ(Get(ids[2]).state(), v1::RUN_STATE_RUNNING);
  ASSERT_TRUE(Cancel(ids[2]).ok());
  v1::ListRunsResponse cancelled_runs;
  ASSERT_TRUE(list(0, "", v1::RUN_STATE_CANCELLED, &cancelled_runs).ok());
  EXPECT_EQ(cancelled_runs.runs_size(), 3);
}

TEST_F(TrainerServiceTest, ShutdownStopsTheWorkersAndFailsTheRunAsRetryable) {
  absl::StatusOr<v1::Run> run = Start(TinyRun("shutdown", 100000));
  ASSERT_TRUE(run.ok()) << run.status();
  Watch(run->run_id(), [](const v1::WatchRunResponse& e) { return !e.has_progress(); });
  std::map<int, pid_t> workers = distill::testing::FindWorkers(RunDir(*run));
  ASSERT_EQ(workers.size(), 1u);
  // A watcher still attached when the service shuts down gets the run's end.
  std::vector<v1::WatchRunResponse> events;
  absl::Notification watching;
  std::thread watcher([&] {
    auto channel = grpc::CreateChannel(server_->grpc_address(), grpc::InsecureChannelCredentials());
    auto stub = v1::Trainer::NewStub(channel);
    grpc::ClientContext context;
    v1::WatchRunRequest request;
    request.set_run_id(run->run_id());
    auto reader = stub->WatchRun(&context, request);
    v1::WatchRunResponse event;
    while (reader->Read(&event)) {
      events.push_back(event);
      if (!watching.HasBeenNotified()) watching.Notify();
    }
    (void)reader->Finish();
  });
  watching.WaitForNotification();
  StopServer();
  watcher.join();
  EXPECT_TRUE(distill::testing::AllGone({workers[0]}, absl::Seconds(1)));
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_run());
  EXPECT_EQ(events.back().run().state(), v1::RUN_STATE_FAILED);
  EXPECT_EQ(events.back().run().failure_code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
}

TEST(TrainerConfigTest, BadValuesNameFileLineAndKey) {
  rpc::ServiceDefinition definition = TrainerDefinition();
  auto doc = config::Document::Parse(
      "trainer:\n  max_concurrent_runs: 0\n  master_port_range: 9-2\n  worker_kill_grace: 0s\n  runs_dir: "
      "../x\n"
      "  wroker_binary: x\n",
      "t.yaml");
  ASSERT_TRUE(doc.ok());
  config::Node root = doc->Root();
  definition.read_config(root);
  const std::string message(doc->Finish().message());
  EXPECT_THAT(message, HasSubstr("t.yaml:2: trainer.max_concurrent_runs: must be >= 1, got 0"));
  EXPECT_THAT(message, HasSubstr("t.yaml:3: trainer.master_port_range: expected 0"));
  EXPECT_THAT(message, HasSubstr("t.yaml:4: trainer.worker_kill_grace: must be > 0"));
  EXPECT_THAT(message, HasSubstr("t.yaml:5: trainer.runs_dir: must be a relative path"));
  EXPECT_THAT(message, HasSubstr("t.yaml:6: trainer.wroker_binary: unknown key"));
}

}  // namespace
}  // namespace distill::services
