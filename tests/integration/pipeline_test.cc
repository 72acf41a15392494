// A distillation job end to end through all five services as separate processes on loopback, and the
// coordinator's crash safety: SIGKILL it in the middle of the teacher stage, and again (with the trainer)
// in the middle of training; the job resumes and finishes with no example lost, no teacher prompt sent
// twice, and training resumed from its checkpoint.

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "distill/v1/inference.grpc.pb.h"
#include "distill/v1/jobs.grpc.pb.h"
#include "distill/v1/trainer.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "services/coordinator/jobspec/job_yaml.h"
#include "tests/support/loopback_http.h"
#include "tests/support/paths.h"
#include "tests/support/subprocess.h"

namespace distill {
namespace {

using testing::Subprocess;

std::string BinaryPath(const std::string& binary) {
  return absl::StrCat(::distill::testing::BinaryDir(), "/bin/", binary);
}

// One service process and the addresses from its listening line.
struct Service {
  std::unique_ptr<Subprocess> process;
  std::string grpc;
  std::string metrics;
};

// The five services of one test, each its own process, sharing one artifact store under `dir`.
class ProcessCluster {
 public:
  ProcessCluster(std::string dir, int teacher_latency_ms)
      : dir_(std::move(dir)), teacher_latency_ms_(teacher_latency_ms) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  // Starts (or restarts) one service; the coordinator learns the others' current addresses.
  void Start(const std::string& name) {
    std::string config = "server:\n  grpc_address: 127.0.0.1:0\n  metrics_address: 127.0.0.1:0\n";
    const std::string artifacts = dir_ + "/artifacts";
    std::string binary;
    if (name == "teacher_gateway") {
      binary = "distill-teacher-gateway";
      absl::StrAppend(&config, "teacher_gateway:\n  cache_path: ", dir_, "/teacher-cache.sqlite\n",
                      "  backends:\n    - {name: synthetic, kind: synthetic, max_concurrency: 1, latency: ",
                      teacher_latency_ms_, "ms}\n");
    } else if (name == "curator") {
      binary = "distill-curator";
      absl::StrAppend(&config, "curator:\n  artifact_root: ", artifacts, "\n");
    } else if (name == "trainer") {
      binary = "distill-trainer";
      absl::StrAppend(&config, "trainer:\n  artifact_root: ", artifacts, "\n  threads_per_rank: 1\n");
    } else if (name == "inference") {
      binary = "distill-inference";
      absl::StrAppend(&config, "inference:\n  artifact_root: ", artifacts, "\n  http_address: 127.0.0.1:0\n");
    } else {
      binary = "distill-coordinator";
      absl::StrAppend(&config, "coordinator:\n  database: ", dir_, "/coordinator.db\n  artifact_root: ", artifacts,
                      "\n  teacher_gateway_address: ", services_["teacher_gateway"].grpc,
                      "\n  curator_address: ", services_["curator"].grpc, "\n  trainer_address: ",
                      services_["trainer"].grpc, "\n  inference_address: ", services_["inference"].grpc,
                      "\n  rpc_timeout: 20s\n");
    }
    const std::string path = absl::StrCat(dir_, "/", name, ".yaml");
    std::ofstream(path) << config;
    absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start({BinaryPath(binary), "--config", path});
    ASSERT_TRUE(process.ok()) << process.status();
    absl::StatusOr<std::string> line = (*process)->ReadLine(absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << name << ": " << line.status() << "\n" << (*process)->Stderr();
    static const std::regex kLine("^listening service=[a-z_]+ grpc=(\\S+) metrics=(\\S+)( http=\\S+)?$");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(*line, m, kLine)) << *line;
    services_[name] = Service{std::move(*process), m[1], m[2]};
  }

  void StartAll() {
    for (const char* name : {"teacher_gateway", "curator", "trainer", "inference", "coordinator"}) {
      Start(name);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  void Kill(const std::string& name) {
    Service& service = services_[name];
    service.process->Signal(SIGKILL);
    ASSERT_TRUE(service.process->Wait(absl::Seconds(10)).ok());
  }

  Service& service(const std::string& name) { return services_[name]; }
  const std::string& dir() const { return dir_; }

  std::unique_ptr<v1::DistillationJobs::Stub> Jobs() {
    return v1::DistillationJobs::NewStub(
        grpc::CreateChannel(services_["coordinator"].grpc, grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<v1::Inference::Stub> Inference() {
    return v1::Inference::NewStub(grpc::CreateChannel(services_["inference"].grpc, grpc::InsecureChannelCredentials()));
  }

  // Sum of a counter over all its series in the teacher gateway's /metrics.
  double GatewayCounter(const std::string& metric) {
    httplib::Result result = testing::HttpGet(services_["teacher_gateway"].metrics, "/metrics");
    EXPECT_TRUE(result && result->status == 200);
    double sum = 0;
    if (!result) return sum;
    for (absl::string_view line : absl::StrSplit(result->body, '\n')) {
      if (!absl::StartsWith(line, metric) || (line.size() > metric.size() && line[metric.size()] != '{' &&
                                              line[metric.size()] != ' ')) {
        continue;
      }
      double value = 0;
      if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) sum += value;
    }
    return sum;
  }

 private:
  const std::string dir_;
  const int teacher_latency_ms_;
  std::map<std::string, Service> services_;
};

std::string JobYaml(int count, int max_steps, double min_accuracy) {
  return absl::StrCat(R"(
name: tiny-e2e
task: {name: arith, type: numeric}
dataset:
  uri: synthetic:arith?count=)", count, R"(&seed=1&min_ops=1&max_ops=1
  split: {random: {seed: 7, test_fraction: 0.2}, validation_fraction: 0.1}
teacher: {backend: synthetic, samples_per_example: 1}
curation: {label_source: gold}
student: {preset: tiny}
training:
  objective: step_by_step
  hyperparameters: {learning_rate: 0.003, batch_size: 4, max_steps: )", max_steps, R"(, checkpoint_interval_steps: 10, seed: 1}
  distributed: {world_size: 1, threads_per_rank: 1}
baselines:
  - {name: standard, objective: standard, label_source: gold_only}
evaluation: {max_examples: 6}
deploy: {model_name: arith, min_accuracy: )", min_accuracy, "}\n");
}

grpc::Status Submit(v1::DistillationJobs::Stub& jobs, const std::string& request_id, const v1::JobSpec& spec,
                    v1::SubmitJobResponse* response) {
  v1::SubmitJobRequest request;
  request.set_client_request_id(request_id);
  *request.mutable_spec() = spec;
  grpc::ClientContext call;
  call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return jobs.SubmitJob(&call, request, response);
}

absl::StatusOr<v1::Job> GetJob(v1::DistillationJobs::Stub& jobs, const std::string& id) {
  v1::GetJobRequest request;
  request.set_job_id(id);
  v1::GetJobResponse response;
  grpc::ClientContext call;
  call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  const grpc::Status status = jobs.GetJob(&call, request, &response);
  if (!status.ok()) return absl::UnavailableError(status.error_message());
  return response.job();
}

// Polls GetJob until `done` holds (or the job ends, or `timeout`); returns the last job seen.
v1::Job PollUntil(v1::DistillationJobs::Stub& jobs, const std::string& id, absl::Duration timeout,
                  const std::function<bool(const v1::Job&)>& done) {
  v1::Job job;
  const absl::Time until = absl::Now() + timeout;
  while (absl::Now() < until) {
    if (absl::StatusOr<v1::Job> got = GetJob(jobs, id); got.ok()) {
      job = *got;
      if (done(job)) return job;
      if (job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED ||
          job.state() == v1::JOB_STATE_CANCELLED) {
        return job;
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return job;
}

class PipelineTest : public ::testing::Test {
 protected:
  std::string Dir(const std::string& name) { return absl::StrCat(::testing::TempDir(), "pipeline-", getpid(), "-", name); }
};

// Parses with the real job-file parser, like distillctl.
v1::JobSpec ParseSpec(const std::string& yaml) {
  absl::StatusOr<v1::JobSpec> spec = jobs::ParseJobSpecYaml(yaml, "job.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : v1::JobSpec();
}

TEST_F(PipelineTest, JobRunsThroughFiveProcessesAndDeploysBehindTheGate) {
  ProcessCluster cluster(Dir("e2e"), /*teacher_latency_ms=*/0);
  cluster.StartAll();
  ASSERT_FALSE(HasFatalFailure());
  auto jobs = cluster.Jobs();
  const v1::JobSpec spec = ParseSpec(JobYaml(40, 12, 0.0));

  v1::SubmitJobResponse submitted;
  ASSERT_TRUE(Submit(*jobs, "e2e-1", spec, &submitted).ok());
  EXPECT_TRUE(submitted.created());
  const std::string id = submitted.job().job_id();
  EXPECT_EQ(submitted.job().stages_size(), 6);

  // Idempotent on the request id; a different spec under it is refused.
  v1::SubmitJobResponse again;
  ASSERT_TRUE(Submit(*jobs, "e2e-1", spec, &again).ok());
  EXPECT_FALSE(again.created());
  EXPECT_EQ(again.job().job_id(), id);
  v1::JobSpec other = spec;
  other.set_name("other");
  EXPECT_EQ(Submit(*jobs, "e2e-1", other, &again).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  // Bad specs name the field.
  v1::JobSpec bad = spec;
  bad.mutable_training()->mutable_hyperparameters()->set_learning_rate(-1);
  grpc::Status rejected = Submit(*jobs, "e2e-bad", bad, &again);
  EXPECT_EQ(rejected.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(rejected.error_message().find("training.hyperparameters.learning_rate"), std::string::npos)
      << rejected.error_message();
  bad = spec;
  bad.mutable_teacher()->set_backend("nope");
  rejected = Submit(*jobs, "e2e-bad2", bad, &again);
  EXPECT_EQ(rejected.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(rejected.error_message().find("teacher.backend"), std::string::npos) << rejected.error_message();

  // Watch to the end: a snapshot, stage updates, a final snapshot.
  v1::WatchJobRequest watch;
  watch.set_job_id(id);
  grpc::ClientContext call;
  call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(240));
  auto stream = jobs->WatchJob(&call, watch);
  std::vector<v1::WatchJobResponse> events;
  v1::WatchJobResponse event;
  while (stream->Read(&event)) events.push_back(event);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_GE(events.size(), 3u);
  EXPECT_TRUE(events.front().has_job());
  ASSERT_TRUE(events.back().has_job());
  std::set<v1::Stage> stages_seen;
  for (const auto& e : events) {
    if (e.has_stage()) stages_seen.insert(e.stage().stage());
  }
  EXPECT_TRUE(stages_seen.count(v1::STAGE_TRAIN));
  const v1::Job job = events.back().job();
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.failure_cause();
  for (const v1::StageStatus& stage : job.stages()) {
    EXPECT_EQ(stage.state(), v1::STAGE_STATE_SUCCEEDED) << v1::Stage_Name(stage.stage()) << ": " << stage.message();
  }
  // Every example is accounted for: the teacher answered train + test, curation kept + dropped = received.
  const v1::LoadDatasetDetails& data = job.stages(0).load_dataset();
  EXPECT_EQ(data.train_count() + data.validation_count() + data.test_count(), 40);
  const v1::TeachDetails& teach = job.stages(1).teach();
  EXPECT_EQ(teach.examples_total(), data.train_count() + data.test_count());
  EXPECT_EQ(teach.examples_completed() + teach.examples_failed(), teach.examples_total());
  EXPECT_EQ(job.report().curation().kept() + job.report().curation().dropped(), job.report().curation().received());
  EXPECT_EQ(job.report().curation().examples_received(), data.train_count());
  EXPECT_TRUE(job.report().has_teacher_test_accuracy());
  ASSERT_EQ(job.report().students_size(), 2);
  EXPECT_EQ(job.report().students(0).student(), "primary");
  EXPECT_EQ(job.report().students(1).student(), "standard");
  for (const v1::StudentResult& student : job.report().students()) {
    EXPECT_EQ(student.examples(), 6);
    EXPECT_GT(student.parameters(), 0);
    EXPECT_GT(student.size_bytes(), 0);
    EXPECT_GT(student.mean_latency_seconds(), 0);
  }
  EXPECT_EQ(job.report().verdict(), v1::VERDICT_PROMOTED);

  // The student is served as arith, version = job id.
  auto inference = cluster.Inference();
  {
    v1::PredictRequest predict;
    predict.set_model("arith");
    predict.set_input("Sara has 4 apples. She buys 3 more apples. How many apples does Sara have now?");
    v1::PredictResponse answer;
    grpc::ClientContext predict_call;
    ASSERT_TRUE(inference->Predict(&predict_call, predict, &answer).ok());
    EXPECT_EQ(answer.model_version(), id);
  }

  // distillctl reads the same job.
  {
    auto ctl = Subprocess::Start({BinaryPath("distillctl"), "--address", cluster.service("coordinator").grpc, "get", id});
    ASSERT_TRUE(ctl.ok());
    absl::StatusOr<int> status = (*ctl)->Wait(absl::Seconds(20));
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(WEXITSTATUS(*status), 0) << (*ctl)->Stderr();
    EXPECT_NE((*ctl)->PendingStdout().find("primary"), std::string::npos) << (*ctl)->PendingStdout();
  }

  // A second job that cannot pass the gate leaves the first version serving.
  ASSERT_TRUE(Submit(*jobs, "e2e-2", ParseSpec(JobYaml(40, 4, 1.0)), &submitted).ok());
  const v1::Job second = PollUntil(*jobs, submitted.job().job_id(), absl::Seconds(240), [](const v1::Job&) { return false; });
  ASSERT_EQ(second.state(), v1::JOB_STATE_SUCCEEDED) << second.failure_cause();
  EXPECT_EQ(second.report().verdict(), v1::VERDICT_BELOW_THRESHOLD) << second.report().verdict_message();
  v1::ListModelsRequest list;
  list.set_name("arith");
  v1::ListModelsResponse models;
  grpc::ClientContext list_call;
  ASSERT_TRUE(inference->ListModels(&list_call, list, &models).ok());
  int active = 0;
  for (const v1::ModelInfo& model : models.models()) {
    if (model.active()) {
      ++active;
      EXPECT_EQ(model.version(), id);
    }
  }
  EXPECT_EQ(active, 1);

  // ListJobs: newest first, paged.
  v1::ListJobsRequest page_request;
  page_request.set_page_size(1);
  v1::ListJobsResponse page;
  grpc::ClientContext page_call;
  ASSERT_TRUE(jobs->ListJobs(&page_call, page_request, &page).ok());
  ASSERT_EQ(page.jobs_size(), 1);
  EXPECT_EQ(page.jobs(0).job_id(), second.job_id());
  EXPECT_FALSE(page.next_page_token().empty());
  inference.reset();
  jobs.reset();
}

TEST_F(PipelineTest, CoordinatorKilledInTeachAndInTrainResumesWithNothingLostOrPaidTwice) {
  // A slow teacher (10 requests/s) so the kill lands mid-stream.
  ProcessCluster cluster(Dir("crash"), /*teacher_latency_ms=*/100);
  cluster.StartAll();
  ASSERT_FALSE(HasFatalFailure());
  auto jobs = cluster.Jobs();
  v1::SubmitJobResponse submitted;
  ASSERT_TRUE(Submit(*jobs, "crash-1", ParseSpec(JobYaml(60, 60, 0.0)), &submitted).ok());
  const std::string id = submitted.job().job_id();

  // 1. SIGKILL the coordinator once some samples are in.
  v1::Job job = PollUntil(*jobs, id, absl::Seconds(60),
                          [](const v1::Job& j) { return j.stages(1).teach().samples_received() >= 5; });
  ASSERT_EQ(job.stages(1).state(), v1::STAGE_STATE_RUNNING) << "the teacher stage ended before the kill";
  jobs.reset();
  cluster.Kill("coordinator");
  // The operator restarts it; meanwhile the request it left in flight finishes into the gateway's cache.
  absl::SleepFor(absl::Milliseconds(300));
  cluster.Start("coordinator");
  ASSERT_FALSE(HasFatalFailure());
  jobs = cluster.Jobs();

  // 2. Once the primary student has a checkpoint, SIGKILL the coordinator and the trainer (its workers die
  // with it).
  job = PollUntil(*jobs, id, absl::Seconds(180), [](const v1::Job& j) {
    return j.stages(3).train().runs_size() > 0 && j.stages(3).train().runs(0).run().latest_checkpoint().step() > 0;
  });
  ASSERT_EQ(job.stages(3).state(), v1::STAGE_STATE_RUNNING) << "training ended before the kill: " << job.failure_cause();
  const std::string first_run = job.stages(3).train().runs(0).run().run_id();
  const int64_t checkpoint_step = job.stages(3).train().runs(0).run().latest_checkpoint().step();
  jobs.reset();
  cluster.Kill("coordinator");
  cluster.Kill("trainer");
  cluster.Start("trainer");
  ASSERT_FALSE(HasFatalFailure());
  cluster.Start("coordinator");
  ASSERT_FALSE(HasFatalFailure());
  jobs = cluster.Jobs();

  job = PollUntil(*jobs, id, absl::Seconds(240), [](const v1::Job&) { return false; });
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.failure_cause();

  // No example lost: every train and test example has exactly its sample.
  const v1::LoadDatasetDetails& data = job.stages(0).load_dataset();
  const v1::TeachDetails& teach = job.stages(1).teach();
  EXPECT_EQ(teach.examples_total(), data.train_count() + data.test_count());
  EXPECT_EQ(teach.examples_completed(), teach.examples_total());
  EXPECT_EQ(job.report().curation().examples_received(), data.train_count());
  // No prompt paid twice: the backend saw one request per example.
  EXPECT_EQ(cluster.GatewayCounter("distill_teacher_gateway_backend_requests_total"),
            static_cast<double>(teach.examples_total()));
  // Training resumed from its checkpoint in a new run of the restarted trainer.
  const v1::Run& run = job.stages(3).train().runs(0).run();
  EXPECT_NE(run.run_id(), first_run);
  EXPECT_EQ(run.state(), v1::RUN_STATE_SUCCEEDED);
  Subprocess& trainer = *cluster.service("trainer").process;
  trainer.Signal(SIGTERM);
  ASSERT_TRUE(trainer.Wait(absl::Seconds(30)).ok());
  EXPECT_NE(trainer.Stderr().find("msg=resuming"), std::string::npos)
      << "the restarted trainer did not resume from the step-" << checkpoint_step << " checkpoint";
  jobs.reset();
}

TEST_F(PipelineTest, CancelStopsTrainingAndEndsTheJobCancelled) {
  ProcessCluster cluster(Dir("cancel"), /*teacher_latency_ms=*/0);
  cluster.StartAll();
  ASSERT_FALSE(HasFatalFailure());
  auto jobs = cluster.Jobs();
  v1::SubmitJobResponse submitted;
  ASSERT_TRUE(Submit(*jobs, "cancel-1", ParseSpec(JobYaml(40, 100000, 0.0)), &submitted).ok());
  const std::string id = submitted.job().job_id();
  v1::Job job = PollUntil(*jobs, id, absl::Seconds(120), [](const v1::Job& j) {
    return j.stages(3).train().runs_size() > 0 && j.stages(3).train().runs(0).run().progress().step() > 0;
  });
  ASSERT_EQ(job.stages(3).state(), v1::STAGE_STATE_RUNNING) << job.failure_cause();
  const std::string run_id = job.stages(3).train().runs(0).run().run_id();

  v1::CancelJobRequest cancel;
  cancel.set_job_id(id);
  v1::CancelJobResponse cancelled;
  grpc::ClientContext call;
  ASSERT_TRUE(jobs->CancelJob(&call, cancel, &cancelled).ok());
  EXPECT_TRUE(cancelled.job().state() == v1::JOB_STATE_CANCELLING || cancelled.job().state() == v1::JOB_STATE_CANCELLED);
  job = PollUntil(*jobs, id, absl::Seconds(60), [](const v1::Job&) { return false; });
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(job.stages(3).state(), v1::STAGE_STATE_CANCELLED);
  EXPECT_EQ(job.stages(4).state(), v1::STAGE_STATE_PENDING);

  // The training run was stopped too.
  auto trainer = v1::Trainer::NewStub(grpc::CreateChannel(cluster.service("trainer").grpc, grpc::InsecureChannelCredentials()));
  v1::RunState state = v1::RUN_STATE_UNSPECIFIED;
  for (int i = 0; i < 100 && state != v1::RUN_STATE_CANCELLED; ++i) {
    v1::GetRunRequest get;
    get.set_run_id(run_id);
    v1::GetRunResponse run;
    grpc::ClientContext get_call;
    ASSERT_TRUE(trainer->GetRun(&get_call, get, &run).ok());
    state = run.run().state();
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(state, v1::RUN_STATE_CANCELLED);
  // Cancelling again changes nothing.
  grpc::ClientContext again;
  ASSERT_TRUE(jobs->CancelJob(&again, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.job().state(), v1::JOB_STATE_CANCELLED);
  trainer.reset();
  jobs.reset();
}

}  // namespace
}  // namespace distill
