// distillctl's commands over real gRPC on loopback, against small in-test implementations of
// DistillationJobs and Inference that record what they receive and answer from fixed data, and (for
// `health`) against gRPC's own health service, the one every distill server enables.

#include "services/distillctl/ctl_commands.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "distill/v1/inference.grpc.pb.h"
#include "distill/v1/jobs.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace distill::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

// The part of DistillationJobs distillctl uses, over an in-memory list of jobs. Thread-safe.
class TestJobs final : public v1::DistillationJobs::Service {
 public:
  // Adds a job that GetJob, ListJobs (newest first = insertion order) and CancelJob know.
  void AddJob(const v1::Job& job) {
    absl::MutexLock lock(&mu_);
    jobs_.push_back(job);
  }
  // What WatchJob streams for `job_id`.
  void SetWatchScript(const std::string& job_id, std::vector<v1::WatchJobResponse> script) {
    absl::MutexLock lock(&mu_);
    scripts_[job_id] = std::move(script);
  }

  std::vector<v1::SubmitJobRequest> submitted() {
    absl::MutexLock lock(&mu_);
    return submitted_;
  }
  std::vector<std::string> page_tokens() {
    absl::MutexLock lock(&mu_);
    return page_tokens_;
  }
  std::vector<std::string> authorizations() {
    absl::MutexLock lock(&mu_);
    return authorizations_;
  }

  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override {
    absl::MutexLock lock(&mu_);
    Record(*context);
    submitted_.push_back(*request);
    v1::Job* job = response->mutable_job();
    job->set_job_id("job-" + std::to_string(submitted_.size()));
    job->set_client_request_id(request->client_request_id());
    *job->mutable_spec() = request->spec();
    job->set_state(v1::JOB_STATE_QUEUED);
    response->set_created(true);
    jobs_.push_back(*job);
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::GetJobResponse* response) override {
    absl::MutexLock lock(&mu_);
    Record(*context);
    const v1::Job* job = Find(request->job_id());
    if (job == nullptr) return NotFound(request->job_id());
    *response->mutable_job() = *job;
    return grpc::Status::OK;
  }

  // Pages are tokens holding the index of their first job.
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override {
    absl::MutexLock lock(&mu_);
    Record(*context);
    page_tokens_.push_back(request->page_token());
    size_t first = 0;
    if (!request->page_token().empty() && !absl::SimpleAtoi(request->page_token(), &first)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_token: not a token of this server");
    }
    const size_t size = request->page_size() > 0 ? static_cast<size_t>(request->page_size()) : 50;
    std::vector<const v1::Job*> matching;
    for (const v1::Job& job : jobs_) {
      if (request->state() == v1::JOB_STATE_UNSPECIFIED || job.state() == request->state())
        matching.push_back(&job);
    }
    for (size_t i = first; i < matching.size() && i < first + size; ++i) *response->add_jobs() = *matching[i];
    if (first + size < matching.size()) response->set_next_page_token(std::to_string(first + size));
    return grpc::Status::OK;
  }

  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::WatchJobResponse>* writer) override {
    std::vector<v1::WatchJobResponse> script;
    {
      absl::MutexLock lock(&mu_);
      Record(*context);
      auto it = scripts_.find(request->job_id());
      if (it == scripts_.end()) return NotFound(request->job_id());
      script = it->second;
    }
    for (const v1::WatchJobResponse& event : script) {
      if (!writer->Write(event)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::CancelJobResponse* response) override {
    absl::MutexLock lock(&mu_);
    Record(*context);
    for (v1::Job& job : jobs_) {
      if (job.job_id() != request->job_id()) continue;
      if (job.state() == v1::JOB_STATE_QUEUED || job.state() == v1::JOB_STATE_RUNNING) {
        job.set_state(v1::JOB_STATE_CANCELLING);
      }
      *response->mutable_job() = job;
      return grpc::Status::OK;
    }
    return NotFound(request->job_id());
  }

 private:
  static grpc::Status NotFound(const std::string& job_id) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "job \"" + job_id + "\" not found");
  }

  void Record(const grpc::ServerContext& context) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = context.client_metadata().find("authorization");
    authorizations_.push_back(
        it == context.client_metadata().end() ? "" : std::string(it->second.data(), it->second.size()));
  }

  const v1::Job* Find(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const v1::Job& job : jobs_) {
      if (job.job_id() == job_id) return &job;
    }
    return nullptr;
  }

  absl::Mutex mu_;
  std::vector<v1::Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<v1::WatchJobResponse>> scripts_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::SubmitJobRequest> submitted_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> page_tokens_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> authorizations_ ABSL_GUARDED_BY(mu_);
};

// Predict answers "17" for model "arith"; Generate streams a fixed rationale and answer in chunks.
class TestInference final : public v1::Inference::Service {
 public:
  grpc::Status Predict(grpc::ServerContext*, const v1::PredictRequest* request,
                       v1::PredictResponse* response) override {
    if (request->model() != "arith") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "model \"" + request->model() + "\" is not loaded");
    }
    response->set_text("17 apples");
    response->set_answer("17");
    response->set_model_version(request->version().empty() ? "v1" : request->version());
    return grpc::Status::OK;
  }

  grpc::Status Generate(grpc::ServerContext*, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    {
      absl::MutexLock lock(&mu_);
      last_generate_ = *request;
    }
    auto chunk = [&](v1::OutputSegment segment, const std::string& text) {
      v1::GenerateResponse response;
      response.mutable_chunk()->set_segment(segment);
      response.mutable_chunk()->set_text(text);
      writer->Write(response);
    };
    if (request->include_rationale()) {
      chunk(v1::OUTPUT_SEGMENT_RATIONALE, "12 + 5");
      chunk(v1::OUTPUT_SEGMENT_RATIONALE, " = 17.");
    }
    chunk(v1::OUTPUT_SEGMENT_ANSWER, "1");
    chunk(v1::OUTPUT_SEGMENT_ANSWER, "7");
    v1::GenerateResponse result;
    result.mutable_result()->set_text("17");
    result.mutable_result()->set_answer("17");
    writer->Write(result);
    return grpc::Status::OK;
  }

  v1::GenerateRequest last_generate() {
    absl::MutexLock lock(&mu_);
    return last_generate_;
  }

 private:
  absl::Mutex mu_;
  v1::GenerateRequest last_generate_ ABSL_GUARDED_BY(mu_);
};

struct Result {
  int code;
  std::string out;
  std::string err;
};

class DistillctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&jobs_);
    builder.RegisterService(&inference_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override { server_->Shutdown(); }

  // Runs distillctl with --address and --inference-address pointing at the test server, after `args`.
  Result Run(std::vector<std::string> args) {
    args.push_back("--address=" + address_);
    args.push_back("--inference-address=" + address_);
    std::ostringstream out, err;
    const int code = RunDistillctl(args, out, err);
    return {code, out.str(), err.str()};
  }

  static v1::Job Job(const std::string& id, v1::JobState state) {
    v1::Job job;
    job.set_job_id(id);
    job.mutable_spec()->set_name("svamp");
    job.set_state(state);
    return job;
  }

  static v1::WatchJobResponse Snapshot(const v1::Job& job) {
    v1::WatchJobResponse event;
    *event.mutable_job() = job;
    return event;
  }

  static v1::WatchJobResponse StageEvent(v1::Stage stage, v1::StageState state, int64_t done, int64_t total,
                                         const std::string& message) {
    v1::WatchJobResponse event;
    v1::StageStatus* s = event.mutable_stage();
    s->set_stage(stage);
    s->set_state(state);
    s->set_done(done);
    s->set_total(total);
    s->set_message(message);
    return event;
  }

  // A watch of job-9: running, TRAIN starts and fails, then the final snapshot.
  void ScriptFailingJob() {
    v1::Job running = Job("job-9", v1::JOB_STATE_RUNNING);
    for (v1::Stage stage : {v1::STAGE_LOAD_DATASET, v1::STAGE_TEACH, v1::STAGE_CURATE, v1::STAGE_TRAIN,
                            v1::STAGE_EVALUATE, v1::STAGE_DEPLOY}) {
      v1::StageStatus* s = running.add_stages();
      s->set_stage(stage);
      s->set_state(stage < v1::STAGE_TRAIN ? v1::STAGE_STATE_SUCCEEDED : v1::STAGE_STATE_PENDING);
    }
    v1::Job failed = running;
    failed.set_state(v1::JOB_STATE_FAILED);
    failed.mutable_stages(3)->set_state(v1::STAGE_STATE_FAILED);
    failed.set_failure_cause("TRAIN: primary: worker exited with code 137");
    failed.set_failure_code(13);
    jobs_.SetWatchScript(
        "job-9",
        {Snapshot(running), StageEvent(v1::STAGE_TRAIN, v1::STAGE_STATE_RUNNING, 0, 400, "starting"),
         StageEvent(v1::STAGE_TRAIN, v1::STAGE_STATE_RUNNING, 10, 400, "step 10/400"),
         StageEvent(v1::STAGE_TRAIN, v1::STAGE_STATE_FAILED, 10, 400, "primary: worker exited with code 137"),
         Snapshot(failed)});
  }

  TestJobs jobs_;
  TestInference inference_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

constexpr char kJobYaml[] =
    "name: arith-demo\n"
    "task: {name: arith, type: numeric}\n"
    "dataset:\n"
    "  uri: data/train.jsonl\n"
    "  split: {random: {seed: 7, test_fraction: 0.1}}\n"
    "student: {preset: tiny}\n"
    "training: {objective: step_by_step, alpha: 0.5}\n"
    "baselines:\n"
    "  - {name: standard, objective: standard, label_source: gold_only}\n";

TEST_F(DistillctlTest, SubmitPrintsTheJobIdAndSendsTheParsedSpecAndARequestId) {
  testing::TempDir dir;
  std::ofstream(dir.File("job.yaml")) << kJobYaml;
  const Result r = Run({"submit", dir.File("job.yaml")});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "job-1\n");
  const std::vector<v1::SubmitJobRequest> submitted = jobs_.submitted();
  ASSERT_EQ(submitted.size(), 1u);
  EXPECT_THAT(submitted[0].client_request_id(),
              MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  const v1::JobSpec& spec = submitted[0].spec();
  EXPECT_EQ(spec.name(), "arith-demo");
  EXPECT_EQ(spec.task().type(), v1::TASK_TYPE_NUMERIC);
  EXPECT_EQ(spec.training().objective(), v1::OBJECTIVE_STEP_BY_STEP);
  ASSERT_EQ(spec.baselines_size(), 1);
  EXPECT_EQ(spec.baselines(0).label_source(), v1::LABEL_SOURCE_GOLD_ONLY);
  // The dataset path is resolved against the job file's folder, for a coordinator that runs elsewhere.
  EXPECT_EQ(spec.dataset().uri(), dir.File("data/train.jsonl"));
  EXPECT_EQ(jobs_.authorizations(), std::vector<std::string>{""});
}

TEST_F(DistillctlTest, SubmitSendsTheGivenRequestIdAndPrintsJson) {
  testing::TempDir dir;
  std::ofstream(dir.File("job.yaml")) << kJobYaml;
  const Result r = Run({"submit", "--request-id", "retry-42", dir.File("job.yaml"), "--output=json"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  ASSERT_EQ(jobs_.submitted().size(), 1u);
  EXPECT_EQ(jobs_.submitted()[0].client_request_id(), "retry-42");
  v1::Job job;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &job).ok()) << r.out;
  EXPECT_EQ(job.job_id(), "job-1");
  EXPECT_EQ(job.client_request_id(), "retry-42");
  EXPECT_EQ(job.spec().name(), "arith-demo");
}

TEST_F(DistillctlTest, SubmitOfABadJobFileExits2NamingFileAndLine) {
  testing::TempDir dir;
  std::ofstream(dir.File("job.yaml")) << "name: arith-demo\nnmae: typo\ntraining: {objective: sideways}\n";
  const Result r = Run({"submit", dir.File("job.yaml")});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("job.yaml:2"));
  EXPECT_THAT(r.err, HasSubstr("nmae"));
  EXPECT_THAT(r.err, HasSubstr("job.yaml:3"));
  EXPECT_THAT(r.err, HasSubstr("training.objective"));
  EXPECT_TRUE(jobs_.submitted().empty());

  const Result missing = Run({"submit", dir.File("nope.yaml")});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_THAT(missing.err, HasSubstr("nope.yaml"));
  EXPECT_TRUE(jobs_.submitted().empty());
}

TEST_F(DistillctlTest, SubmitWatchFollowsTheNewJobToItsEnd) {
  testing::TempDir dir;
  std::ofstream(dir.File("job.yaml")) << kJobYaml;
  v1::Job job = Job("job-1", v1::JOB_STATE_SUCCEEDED);
  job.mutable_report()->set_verdict(v1::VERDICT_PROMOTED);
  jobs_.SetWatchScript("job-1", {Snapshot(job)});
  const Result r = Run({"submit", dir.File("job.yaml"), "--watch"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("job-1\n"));
  EXPECT_THAT(r.out, HasSubstr("verdict: promoted"));
}

TEST_F(DistillctlTest, GetOfAnUnknownJobExits3WithTheServersCodeAndMessage) {
  const Result r = Run({"get", "job-404"});
  EXPECT_EQ(r.code, kExitRejected);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND: job \"job-404\" not found"));
  EXPECT_EQ(r.out, "");
}

TEST_F(DistillctlTest, AnUnreachableServerExits4) {
  std::ostringstream out, err;
  const int code = RunDistillctl(
      {"get", "job-1", "--address", "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort()), "--timeout", "10s"}, out,
      err);
  EXPECT_EQ(code, kExitUnreachable);
  EXPECT_THAT(err.str(), HasSubstr("UNAVAILABLE"));
  std::ostringstream watch_out, watch_err;
  EXPECT_EQ(RunDistillctl({"watch", "job-1", "--address", "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort())},
                          watch_out, watch_err),
            kExitUnreachable);
}

TEST_F(DistillctlTest, GetPrintsTheSummaryOrJson) {
  v1::Job job = Job("job-1", v1::JOB_STATE_SUCCEEDED);
  job.mutable_report()->set_verdict(v1::VERDICT_NOT_DEPLOYED);
  jobs_.AddJob(job);
  const Result text = Run({"get", "job-1"});
  EXPECT_EQ(text.code, kExitOk) << text.err;
  EXPECT_THAT(text.out, HasSubstr("job job-1 (svamp): succeeded"));
  EXPECT_THAT(text.out, HasSubstr("verdict: not_deployed"));

  const Result json = Run({"--output", "json", "get", "job-1"});
  EXPECT_EQ(json.code, kExitOk) << json.err;
  v1::Job parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
  EXPECT_EQ(parsed.job_id(), "job-1");
  EXPECT_THAT(json.out, HasSubstr("\"job_id\""));  // Proto field names, not lowerCamelCase.
  EXPECT_EQ(std::count(json.out.begin(), json.out.end(), '\n'), 1);
}

TEST_F(DistillctlTest, WatchOfAJobThatFailsExits1AndPrintsTheSummary) {
  ScriptFailingJob();
  const Result r = Run({"watch", "job-9"});
  EXPECT_EQ(r.code, kExitJobFailed) << r.err;
  EXPECT_THAT(r.out, HasSubstr("TRAIN running 0/400 steps: starting\n"));
  EXPECT_THAT(r.out, HasSubstr("TRAIN failed: primary: worker exited with code 137\n"));
  EXPECT_THAT(r.out, HasSubstr("job job-9 (svamp): failed"));
  EXPECT_THAT(r.out, HasSubstr("failed: TRAIN: primary: worker exited with code 137 (INTERNAL)"));
  EXPECT_THAT(r.out, Not(HasSubstr("\x1b[")));  // Not a terminal: plain lines.
}

TEST_F(DistillctlTest, WatchOfAJobThatSucceedsExits0WhateverTheVerdict) {
  v1::Job job = Job("job-3", v1::JOB_STATE_SUCCEEDED);
  job.mutable_report()->set_verdict(v1::VERDICT_BELOW_THRESHOLD);
  job.mutable_report()->set_verdict_message("test accuracy 0.20 < 0.30");
  jobs_.SetWatchScript("job-3", {Snapshot(job)});
  const Result r = Run({"watch", "job-3"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("verdict: below_threshold: test accuracy 0.20 < 0.30"));
}

TEST_F(DistillctlTest, WatchOfACancelledJobExits1) {
  v1::Job job = Job("job-4", v1::JOB_STATE_CANCELLED);
  job.set_failure_cause("cancelled by client");
  jobs_.SetWatchScript("job-4", {Snapshot(job)});
  const Result r = Run({"watch", "job-4"});
  EXPECT_EQ(r.code, kExitJobFailed);
  EXPECT_THAT(r.out, HasSubstr("cancelled: cancelled by client"));
}

TEST_F(DistillctlTest, WatchOfAnUnknownJobExits3) {
  const Result r = Run({"watch", "job-404"});
  EXPECT_EQ(r.code, kExitRejected);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(DistillctlTest, WatchJsonPrintsEveryEventAsOneJsonLine) {
  ScriptFailingJob();
  const Result r = Run({"watch", "job-9", "--output", "json"});
  EXPECT_EQ(r.code, kExitJobFailed);
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << r.out;
  for (const std::string& line : lines) {
    v1::WatchJobResponse event;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &event).ok()) << line;
  }
  v1::WatchJobResponse last;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines.back(), &last).ok());
  EXPECT_EQ(last.job().state(), v1::JOB_STATE_FAILED);
}

TEST_F(DistillctlTest, ListAllFollowsPageTokens) {
  for (int i = 1; i <= 5; ++i) jobs_.AddJob(Job("job-" + std::to_string(i), v1::JOB_STATE_SUCCEEDED));
  const Result r = Run({"list", "--all", "--page-size", "2"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  for (int i = 1; i <= 5; ++i) EXPECT_THAT(r.out, HasSubstr("job-" + std::to_string(i)));
  EXPECT_THAT(jobs_.page_tokens(), ElementsAre("", "2", "4"));
  EXPECT_THAT(r.out, HasSubstr("JOB"));  // One header.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 6);
}

TEST_F(DistillctlTest, ListWithoutAllPrintsOnePageAndTheNextToken) {
  for (int i = 1; i <= 3; ++i) jobs_.AddJob(Job("job-" + std::to_string(i), v1::JOB_STATE_RUNNING));
  jobs_.AddJob(Job("job-x", v1::JOB_STATE_FAILED));
  const Result r = Run({"list", "--page-size=2", "--state", "running", "--output", "json"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  for (const std::string& line : lines) {
    v1::Job job;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &job).ok()) << line;
    EXPECT_EQ(job.state(), v1::JOB_STATE_RUNNING);
  }
  EXPECT_THAT(r.err, HasSubstr("--page-token 2"));

  const Result bad = Run({"list", "--state", "sleeping"});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_THAT(bad.err,
              HasSubstr("expected one of: queued, running, succeeded, failed, cancelling, cancelled"));
}

TEST_F(DistillctlTest, TheTokenReachesTheServerAsBearerMetadata) {
  jobs_.AddJob(Job("job-1", v1::JOB_STATE_RUNNING));
  EXPECT_EQ(Run({"--token", "s3cret", "get", "job-1"}).code, kExitOk);

  testing::TempDir dir;
  std::ofstream(dir.File("token")) << "from-file\n";
  EXPECT_EQ(Run({"cancel", "job-1", "--token-file", dir.File("token")}).code, kExitOk);

  setenv("DISTILL_TOKEN", "from-env", 1);
  EXPECT_EQ(Run({"get", "job-1"}).code, kExitOk);
  unsetenv("DISTILL_TOKEN");
  EXPECT_EQ(Run({"get", "job-1"}).code, kExitOk);

  EXPECT_THAT(jobs_.authorizations(),
              ElementsAre("Bearer s3cret", "Bearer from-file", "Bearer from-env", ""));

  const Result missing = Run({"get", "job-1", "--token-file", dir.File("nope")});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_THAT(missing.err, HasSubstr("--token-file: cannot read"));
}

TEST_F(DistillctlTest, CancelPrintsTheNewState) {
  jobs_.AddJob(Job("job-1", v1::JOB_STATE_RUNNING));
  const Result r = Run({"cancel", "job-1"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "job-1 cancelling\n");
  EXPECT_EQ(Run({"cancel", "job-404"}).code, kExitRejected);
}

TEST_F(DistillctlTest, PredictPrintsTheAnswer) {
  const Result r = Run({"predict", "--model", "arith", "Tom has 12 apples and buys 5. How many?"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "17\n");

  const Result json = Run({"predict", "--model", "arith", "--version", "v7", "--output", "json", "Q?"});
  EXPECT_EQ(json.code, kExitOk) << json.err;
  v1::PredictResponse response;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &response).ok()) << json.out;
  EXPECT_EQ(response.model_version(), "v7");

  const Result unknown = Run({"predict", "--model", "nope", "Q?"});
  EXPECT_EQ(unknown.code, kExitRejected);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND: model \"nope\" is not loaded"));
}

TEST_F(DistillctlTest, GenerateStreamsChunksInOrder) {
  const Result answer = Run({"generate", "--model", "arith", "Q?"});
  EXPECT_EQ(answer.code, kExitOk) << answer.err;
  EXPECT_EQ(answer.out, "17\n");

  const Result r = Run({"generate", "--model", "arith", "--rationale", "--max-new-tokens", "32",
                        "--temperature", "0.5", "Q?"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "12 + 5 = 17.\n17\n");
  const v1::GenerateRequest request = inference_.last_generate();
  EXPECT_TRUE(request.include_rationale());
  EXPECT_EQ(request.sampling().max_new_tokens(), 32);
  EXPECT_FLOAT_EQ(request.sampling().temperature(), 0.5f);
}

TEST_F(DistillctlTest, UsageErrorsExit2) {
  std::ostringstream out, err;
  EXPECT_EQ(RunDistillctl({}, out, err), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("exit codes:"));
  EXPECT_EQ(Run({"frobnicate"}).code, kExitUsage);
  EXPECT_EQ(Run({"get"}).code, kExitUsage);
  EXPECT_EQ(Run({"get", "a", "b"}).code, kExitUsage);
  EXPECT_EQ(Run({"get", "job-1", "--output", "yaml"}).code, kExitUsage);
  EXPECT_EQ(Run({"predict", "Q?"}).code, kExitUsage);
  EXPECT_EQ(Run({"list", "--bogus"}).code, kExitUsage);
  const Result help = Run({"help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, HasSubstr("usage: distillctl"));
}

// `distillctl health` against a server with gRPC's default health service (what common/rpc/server.cc
// enables), whose statuses the test sets.
class DistillctlHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&inference_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    address_ = "127.0.0.1:" + std::to_string(port);
    health_ = server_->GetHealthCheckService();
    ASSERT_NE(health_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  Result Health(std::vector<std::string> args) {
    args.insert(args.begin(), "health");
    args.push_back("--address=" + address_);
    std::ostringstream out, err;
    const int code = RunDistillctl(args, out, err);
    return {code, out.str(), err.str()};
  }

  TestInference inference_;
  std::unique_ptr<grpc::Server> server_;
  grpc::HealthCheckServiceInterface* health_ = nullptr;
  std::string address_;
};

TEST_F(DistillctlHealthTest, ServingPrintsServingAndExits0) {
  health_->SetServingStatus("distill.v1.Inference", true);
  const Result overall = Health({});
  EXPECT_EQ(overall.code, kExitOk) << overall.err;
  EXPECT_EQ(overall.out, "SERVING\n");
  EXPECT_EQ(overall.err, "");

  const Result one = Health({"--service", "distill.v1.Inference", "--timeout", "2s"});
  EXPECT_EQ(one.code, kExitOk) << one.err;
  EXPECT_EQ(one.out, "SERVING\n");

  const Result json = Health({"--output=json"});
  EXPECT_EQ(json.code, kExitOk) << json.err;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &response).ok()) << json.out;
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(DistillctlHealthTest, NotServingPrintsTheStatusAndExits1) {
  health_->SetServingStatus("distill.v1.Inference", false);
  const Result one = Health({"--service=distill.v1.Inference"});
  EXPECT_EQ(one.code, kExitNotServing) << one.err;
  EXPECT_EQ(one.out, "NOT_SERVING\n");
  // The server as a whole is still SERVING: only the named service is asked about.
  EXPECT_EQ(Health({}).code, kExitOk);

  health_->SetServingStatus(false);
  const Result overall = Health({});
  EXPECT_EQ(overall.code, kExitNotServing);
  EXPECT_EQ(overall.out, "NOT_SERVING\n");

  // A draining server answers NOT_SERVING for everything.
  health_->SetServingStatus(true);
  health_->Shutdown();
  EXPECT_EQ(Health({}).out, "NOT_SERVING\n");
}

TEST_F(DistillctlHealthTest, AnUnknownServiceExits3WithNotFound) {
  const Result r = Health({"--service", "distill.v1.Nope"});
  EXPECT_EQ(r.code, kExitRejected);
  EXPECT_THAT(r.err, HasSubstr("distillctl health: NOT_FOUND"));
  EXPECT_EQ(r.out, "");
}

TEST_F(DistillctlHealthTest, AnUnreachableServerExits4) {
  std::ostringstream out, err;
  const std::string address = "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
  const int code = RunDistillctl({"health", "--address", address}, out, err);
  EXPECT_EQ(code, kExitUnreachable);
  EXPECT_THAT(err.str(), HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(err.str(), HasSubstr("(server " + address + ")"));
  EXPECT_EQ(out.str(), "");
}

TEST_F(DistillctlHealthTest, UsageErrorsExit2) {
  EXPECT_EQ(Health({"extra"}).code, kExitUsage);
  EXPECT_EQ(Health({"--service"}).code, kExitUsage);
  EXPECT_EQ(Health({"--timeout", "0s"}).code, kExitUsage);
  const Result help = Health({"--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, HasSubstr("--service"));
  EXPECT_THAT(help.out, HasSubstr("5s"));  // The probe's own default deadline.
  std::ostringstream out, err;
  EXPECT_EQ(RunDistillctl({"help"}, out, err), kExitOk);
  EXPECT_THAT(out.str(), HasSubstr("health [--service NAME]"));
}

TEST(StageEventThrottleTest, PrintsTransitionsAlwaysAndProgressEveryInterval) {
  StageEventThrottle throttle(absl::Seconds(2));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  v1::StageStatus train;
  train.set_stage(v1::STAGE_TRAIN);
  train.set_state(v1::STAGE_STATE_RUNNING);
  v1::StageStatus teach = train;
  teach.set_stage(v1::STAGE_TEACH);
  EXPECT_TRUE(throttle.ShouldPrint(train, t0));
  EXPECT_FALSE(throttle.ShouldPrint(train, t0 + absl::Milliseconds(500)));
  EXPECT_TRUE(throttle.ShouldPrint(teach, t0 + absl::Milliseconds(600)));  // Stages are independent.
  EXPECT_FALSE(throttle.ShouldPrint(train, t0 + absl::Milliseconds(1999)));
  EXPECT_TRUE(throttle.ShouldPrint(train, t0 + absl::Seconds(2)));
  v1::StageStatus done = train;
  done.set_state(v1::STAGE_STATE_SUCCEEDED);
  EXPECT_TRUE(throttle.ShouldPrint(done, t0 + absl::Milliseconds(2100)));  // A transition, at once.
}

TEST(NewRequestIdTest, IsARandomVersion4Uuid) {
  const std::string a = NewRequestId();
  EXPECT_THAT(a, MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_NE(a, NewRequestId());
}

}  // namespace
}  // namespace distill::ctl
