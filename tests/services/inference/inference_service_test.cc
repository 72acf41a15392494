// The inference service over real gRPC on loopback: start-up loads gating health, Predict, streaming
// Generate, version swaps under load, the bounded queue, unloading, bad input and metrics.

#include "services/inference/inference_service.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/config/yaml.h"
#include "common/dataset/student_text.h"
#include "common/rpc/server.h"
#include "common/student/model/generation.h"
#include "common/student/model/student_model.h"
#include "common/student/runtime/device.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/services/inference/test_model.h"
#include "tests/support/paths.h"
#include "tests/support/temp_dir.h"

namespace distill::services {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

class InferenceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sbs_dir_ = temp_.path() + "/sbs";
    sbs_v2_dir_ = temp_.path() + "/sbs-v2";
    std_dir_ = temp_.path() + "/standard";
    ASSERT_TRUE(inference::testing::WriteTinyModel(sbs_dir_, v1::OBJECTIVE_STEP_BY_STEP, 7).ok());
    ASSERT_TRUE(inference::testing::WriteTinyModel(sbs_v2_dir_, v1::OBJECTIVE_STEP_BY_STEP, 8).ok());
    ASSERT_TRUE(inference::testing::WriteTinyModel(std_dir_, v1::OBJECTIVE_STANDARD, 9).ok());
  }
  void TearDown() override { Stop(); }

  void Start(const std::string& extra = "  max_batch: 8\n  max_wait: 2ms\n") {
    rpc::ServiceDefinition definition = InferenceDefinition();
    auto doc = config::Document::Parse(absl::StrCat("inference:\n  artifact_root: ", temp_.path(),
                                                    "\n  http_address: \"\"\n", extra, "  models:\n",
                                                    "    - {name: arith, version: v1, artifact: ", sbs_dir_, "}\n",
                                                    "    - {name: plain, version: v1, artifact: ", std_dir_, "}\n"),
                                       "test.yaml");
    ASSERT_TRUE(doc.ok()) << doc.status();
    config::Node root = doc->Root();
    definition.read_config(root);
    ASSERT_TRUE(doc->Finish().ok()) << doc->Finish();
    auto server = rpc::Server::Start("inference", rpc::ServerOptions{}, definition.factory);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(server_->grpc_address(), grpc::InsecureChannelCredentials());
    stub_ = v1::Inference::NewStub(channel_);
  }

  void Stop() {
    stub_.reset();
    channel_.reset();
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
  }

  HealthCheckResponse::ServingStatus Health() {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    HealthCheckRequest request;
    request.set_service("distill.v1.Inference");
    HealthCheckResponse response;
    EXPECT_TRUE(stub->Check(&context, request, &response).ok());
    return response.status();
  }

  void WaitServing() {
    for (int i = 0; i < 600 && Health() != HealthCheckResponse::SERVING; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(Health(), HealthCheckResponse::SERVING);
  }

  grpc::Status Predict(const v1::PredictRequest& request, v1::PredictResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub_->Predict(&context, request, response);
  }

  // Runs Generate to the end; returns the chunks and the result.
  grpc::Status Generate(const v1::GenerateRequest& request, std::vector<v1::TokenChunk>* chunks,
                        v1::GenerateResult* result) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto reader = stub_->Generate(&context, request);
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
      if (response.has_chunk()) chunks->push_back(response.chunk());
      if (response.has_result()) *result = response.result();
    }
    return reader->Finish();
  }

  // The library's greedy answer for `text` from the model in `dir`.
  static std::string LibraryText(const std::string& dir, const std::string& text, int max_new_tokens) {
    absl::StatusOr<student::Student> s = student::LoadStudent(dir);
    EXPECT_TRUE(s.ok());
    std::vector<int> ids = s->tokenizer->Encode(text);
    torch::Tensor t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0);
    student::GenerationOptions o = s->model->DefaultGenerationOptions();
    o.max_new_tokens = max_new_tokens;
    auto out = s->model->Generate(t, torch::ones_like(t), o);
    EXPECT_TRUE(out.ok());
    const std::string decoded = s->tokenizer->Decode((*out)[0]);
    return std::string(absl::StripAsciiWhitespace(absl::string_view(decoded.data(), decoded.size())));
  }

  distill::testing::TempDir temp_;
  std::string sbs_dir_, sbs_v2_dir_, std_dir_;
  std::unique_ptr<rpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TEST_F(InferenceServiceTest, StartupModelsLoadThenHealthTurnsServing) {
  Start();
  WaitServing();
  grpc::ClientContext context;
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub_->ListModels(&context, v1::ListModelsRequest(), &list).ok());
  ASSERT_EQ(list.models_size(), 2);
  EXPECT_EQ(list.models(0).name(), "arith");
  EXPECT_EQ(list.models(0).state(), v1::MODEL_STATE_READY);
  EXPECT_TRUE(list.models(0).active());
  EXPECT_EQ(list.models(0).objective(), v1::OBJECTIVE_STEP_BY_STEP) << "from the manifest";
  EXPECT_EQ(list.models(0).task().type(), v1::TASK_TYPE_NUMERIC);
  EXPECT_GT(list.models(0).parameters(), 0);
  EXPECT_TRUE(list.models(0).has_ready_time());
  EXPECT_EQ(list.models(1).objective(), v1::OBJECTIVE_STANDARD);
}

TEST_F(InferenceServiceTest, AStartupModelThatFailsKeepsTheServerNotReady) {
  sbs_dir_ = temp_.path() + "/missing";
  Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Health(), HealthCheckResponse::NOT_SERVING);
  grpc::ClientContext context;
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub_->ListModels(&context, v1::ListModelsRequest(), &list).ok());
  bool failed = false;
  for (const auto& m : list.models()) failed |= m.name() == "arith" && m.state() == v1::MODEL_STATE_FAILED;
  EXPECT_TRUE(failed);
}

TEST_F(InferenceServiceTest, PredictRunsThePredictTaskOnly) {
  Start();
  WaitServing();
  v1::PredictRequest request;
  request.set_model("arith");
  request.set_input("what is 3 plus 4");
  request.mutable_sampling()->set_max_new_tokens(10);
  v1::PredictResponse response;
  grpc::Status status = Predict(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), LibraryText(sbs_dir_, dataset::PredictInput("what is 3 plus 4"), 10));
  EXPECT_EQ(response.model_version(), "v1");
  EXPECT_EQ(response.input_tokens(),
            static_cast<int>(student::LoadStudent(sbs_dir_)->tokenizer->Encode("predict: what is 3 plus 4").size()));
  EXPECT_LE(response.output_tokens(), 10);
  EXPECT_NE(response.finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_GE(response.queue_seconds(), 0);
  EXPECT_GT(response.compute_seconds(), 0);
}

TEST_F(InferenceServiceTest, GenerateStreamsTheRationaleThenTheAnswer) {
  Start();
  WaitServing();
  v1::GenerateRequest request;
  request.set_model("arith");
  request.set_input("what is 3 plus 4");
  request.set_include_rationale(true);
  request.mutable_sampling()->set_max_new_tokens(12);
  std::vector<v1::TokenChunk> chunks;
  v1::GenerateResult result;
  grpc::Status status = Generate(request, &chunks, &result);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::string rationale, answer;
  bool answer_started = false;
  for (const v1::TokenChunk& c : chunks) {
    if (c.segment() == v1::OUTPUT_SEGMENT_ANSWER) answer_started = true;
    if (c.segment() == v1::OUTPUT_SEGMENT_RATIONALE) {
      EXPECT_FALSE(answer_started) << "rationale chunks come first";
      rationale += c.text();
    } else {
      answer += c.text();
    }
  }
  EXPECT_EQ(rationale, result.rationale());
  EXPECT_EQ(answer, result.text());
  EXPECT_EQ(result.rationale(), LibraryText(sbs_dir_, dataset::ExplainInput("what is 3 plus 4"), 12));
  EXPECT_EQ(result.text(), LibraryText(sbs_dir_, dataset::PredictInput("what is 3 plus 4"), 12));
  EXPECT_GT(result.time_to_first_token_seconds(), 0);
  EXPECT_GE(result.total_seconds(), result.time_to_first_token_seconds());

  // Without a rationale: no rationale chunks at all.
  request.set_include_rationale(false);
  chunks.clear();
  ASSERT_TRUE(Generate(request, &chunks, &result).ok());
  for (const v1::TokenChunk& c : chunks) EXPECT_EQ(c.segment(), v1::OUTPUT_SEGMENT_ANSWER);
  EXPECT_TRUE(result.rationale().empty());
}

TEST_F(InferenceServiceTest, BadRequestsNameTheField) {
  Start();
  WaitServing();
  struct Case {
    std::string model, version, input;
    float top_p;
    bool rationale;
    grpc::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "", "x", 1, false, grpc::INVALID_ARGUMENT, "model: required"},
      {"nope", "", "x", 1, false, grpc::NOT_FOUND, "model: "},
      {"arith", "v9", "x", 1, false, grpc::NOT_FOUND, "version: "},
      {"arith", "", "", 1, false, grpc::INVALID_ARGUMENT, "input: "},
      {"arith", "", "x", 0, false, grpc::INVALID_ARGUMENT, "sampling.top_p"},
      {"plain", "", "x", 1, true, grpc::INVALID_ARGUMENT, "include_rationale"},
  };
  for (const Case& c : cases) {
    v1::GenerateRequest request;
    request.set_model(c.model);
    request.set_version(c.version);
    request.set_input(c.input);
    request.mutable_sampling()->set_top_p(c.top_p);
    request.set_include_rationale(c.rationale);
    std::vector<v1::TokenChunk> chunks;
    v1::GenerateResult result;
    grpc::Status status = Generate(request, &chunks, &result);
    EXPECT_EQ(status.error_code(), c.code) << c.message << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
  }
  // Invalid UTF-8 in the input: whatever gRPC's parser makes of it, the server answers and keeps serving.
  v1::PredictRequest bad;
  bad.set_model("arith");
  bad.set_input("caf\xC3 \xFF\xFE");
  v1::PredictResponse response;
  Predict(bad, &response);
  bad.set_input("fine");
  EXPECT_TRUE(Predict(bad, &response).ok());
}

TEST_F(InferenceServiceTest, LoadModelDeviceIsCheckedAgainstThisHost) {
  Start();
  WaitServing();
  auto load = [&](const std::string& device, v1::LoadModelResponse* loaded) {
    v1::LoadModelRequest request;
    request.set_name("arith");
    request.set_version("dev-" + std::to_string(device.size()));
    request.mutable_artifact()->set_uri(sbs_v2_dir_);
    request.set_device(device);
    grpc::ClientContext context;
    return stub_->LoadModel(&context, request, loaded);
  };
  v1::LoadModelResponse loaded;
  grpc::Status status = load("gpu", &loaded);
  EXPECT_EQ(status.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("device: must be \"cpu\", \"cuda\" or \"cuda:N\", got \"gpu\""));
  if (student::CudaDeviceCount() == 0) {
    status = load("cuda", &loaded);
    EXPECT_EQ(status.error_code(), grpc::FAILED_PRECONDITION);
    EXPECT_THAT(status.error_message(), HasSubstr("device: \"cuda\" asks for a GPU, but this host has none"));
  }
  status = load("cpu", &loaded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(loaded.model().state(), v1::MODEL_STATE_READY);
}

TEST_F(InferenceServiceTest, ANewVersionTakesOverWhileRunningRequestsFinishOnTheOld) {
  Start();
  WaitServing();
  // A long generation on v1, started before the swap.
  v1::GenerateRequest long_request;
  long_request.set_model("arith");
  long_request.set_input("a long one");
  long_request.mutable_sampling()->set_max_new_tokens(400);
  long_request.mutable_sampling()->set_temperature(1.0f);  // a random tiny model rarely stops early this way
  long_request.mutable_sampling()->set_seed(1);
  grpc::ClientContext long_context;
  auto reader = stub_->Generate(&long_context, long_request);
  v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first)) << "the long request is decoding";

  v1::LoadModelRequest load;
  load.set_name("arith");
  load.set_version("v2");
  load.mutable_artifact()->set_uri(sbs_v2_dir_);
  v1::LoadModelResponse loaded;
  {
    grpc::ClientContext context;
    grpc::Status status = stub_->LoadModel(&context, load, &loaded);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_EQ(loaded.model().state(), v1::MODEL_STATE_READY);
  EXPECT_TRUE(loaded.model().active());

  v1::PredictRequest request;
  request.set_model("arith");
  request.set_input("what is 3 plus 4");
  request.mutable_sampling()->set_max_new_tokens(6);
  v1::PredictResponse response;
  ASSERT_TRUE(Predict(request, &response).ok());
  EXPECT_EQ(response.model_version(), "v2");
  EXPECT_EQ(response.text(), LibraryText(sbs_v2_dir_, dataset::PredictInput("what is 3 plus 4"), 6));

  v1::GenerateResponse message;
  v1::GenerateResult result;
  while (reader->Read(&message)) {
    if (message.has_result()) result = message.result();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(result.model_version(), "v1") << "finished on the version it started on";

  // v1 is released after draining.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    grpc::ClientContext context;
    v1::ListModelsRequest list_request;
    list_request.set_name("arith");
    v1::ListModelsResponse list;
    ASSERT_TRUE(stub_->ListModels(&context, list_request, &list).ok());
    gone = list.models_size() == 1 && list.models(0).version() == "v2";
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(gone);

  // The same version from the same artifact: a no-op; from another: ALREADY_EXISTS.
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->LoadModel(&context, load, &loaded).ok());
  }
  load.mutable_artifact()->set_uri(sbs_dir_);
  {
    grpc::ClientContext context;
    EXPECT_EQ(stub_->LoadModel(&context, load, &loaded).error_code(), grpc::ALREADY_EXISTS);
  }
  load.set_version("v3");
  load.mutable_artifact()->set_uri(temp_.path() + "/missing");
  {
    grpc::ClientContext context;
    EXPECT_EQ(stub_->LoadModel(&context, load, &loaded).error_code(), grpc::NOT_FOUND);
  }
  load.set_version("bad version!");
  {
    grpc::ClientContext context;
    grpc::Status status = stub_->LoadModel(&context, load, &loaded);
    EXPECT_EQ(status.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("version"));
  }
  // A directory that is not a model: FAILED_PRECONDITION naming the file, listed as FAILED.
  std::filesystem::create_directories(temp_.path() + "/empty");
  load.set_version("v4");
  load.mutable_artifact()->set_uri(temp_.path() + "/empty");
  {
    grpc::ClientContext context;
    grpc::Status status = stub_->LoadModel(&context, load, &loaded);
    EXPECT_EQ(status.error_code(), grpc::FAILED_PRECONDITION);
    EXPECT_THAT(status.error_message(), HasSubstr("config.json"));
  }
}

TEST_F(InferenceServiceTest, AFullQueueAnswersResourceExhaustedWithARetryHint) {
  Start("  max_batch: 1\n  max_queue: 1\n  max_wait: 0s\n  max_new_tokens_limit: 100000\n");
  WaitServing();
  auto endless = [&] {
    v1::GenerateRequest r;
    r.set_model("plain");
    r.set_input("x");
    r.mutable_sampling()->set_max_new_tokens(100000);
    r.mutable_sampling()->set_temperature(1.0f);
    return r;
  };
  grpc::ClientContext running_context, queued_context;
  auto running = stub_->Generate(&running_context, endless());
  v1::GenerateResponse message;
  ASSERT_TRUE(running->Read(&message));
  auto queued = stub_->Generate(&queued_context, endless());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let it reach the queue

  grpc::ClientContext context;
  v1::PredictRequest request;
  request.set_model("plain");
  request.set_input("y");
  v1::PredictResponse response;
  grpc::Status status = stub_->Predict(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::RESOURCE_EXHAUSTED) << status.error_message();
  auto hint = context.GetServerTrailingMetadata().find("retry-after-ms");
  ASSERT_NE(hint, context.GetServerTrailingMetadata().end());
  EXPECT_GT(std::stoi(std::string(hint->second.data(), hint->second.size())), 0);

  // Cancelling frees the slots: the queued one runs, and after both are cancelled a request succeeds.
  running_context.TryCancel();
  EXPECT_EQ(running->Finish().error_code(), grpc::CANCELLED);
  ASSERT_TRUE(queued->Read(&message)) << "the queued request got the freed slot";
  queued_context.TryCancel();
  queued->Finish();
  request.mutable_sampling()->set_max_new_tokens(3);
  grpc::ClientContext after;
  EXPECT_TRUE(stub_->Predict(&after, request, &response).ok());

  const std::string exposition = server_->registry().Serialize();
  EXPECT_THAT(exposition, HasSubstr("distill_inference_requests_total{method=\"Predict\",model=\"plain\""));
  EXPECT_THAT(exposition, HasSubstr("outcome=\"RESOURCE_EXHAUSTED\""));
  EXPECT_THAT(exposition, HasSubstr("distill_inference_batch_size_bucket"));
  EXPECT_THAT(exposition, HasSubstr("distill_inference_time_to_first_token_seconds_bucket"));
  EXPECT_THAT(exposition, HasSubstr("distill_inference_generated_tokens_total"));
  EXPECT_THAT(exposition, HasSubstr("distill_inference_queue_depth"));
  // max_queue of the version, the denominator of queue saturation.
  EXPECT_THAT(exposition, ::testing::ContainsRegex("distill_inference_queue_capacity\\{model=\"plain\",version=\"[^\"]+\"\\} 1\n"));
  // Prometheus accepts the exposition as it is after real traffic.
  const std::string path = temp_.File("metrics.txt");
  std::ofstream(path) << exposition;
  EXPECT_EQ(std::system(absl::StrCat(::distill::testing::Promtool(), " check metrics < ", path, " > ", path,
                                     ".out 2>&1")
                            .c_str()),
            0)
      << "promtool rejected the exposition";
}

TEST_F(InferenceServiceTest, UnloadDrainsAndForgetsTheModel) {
  Start();
  WaitServing();
  grpc::ClientContext context;
  v1::UnloadModelRequest request;
  request.set_name("plain");
  v1::UnloadModelResponse response;
  ASSERT_TRUE(stub_->UnloadModel(&context, request, &response).ok());
  ASSERT_EQ(response.unloaded_size(), 1);
  EXPECT_EQ(response.unloaded(0).state(), v1::MODEL_STATE_READY);
  v1::PredictRequest predict;
  predict.set_model("plain");
  predict.set_input("x");
  v1::PredictResponse out;
  EXPECT_EQ(Predict(predict, &out).error_code(), grpc::NOT_FOUND);
  grpc::ClientContext again;
  EXPECT_EQ(stub_->UnloadModel(&again, request, &response).error_code(), grpc::NOT_FOUND);
}

TEST(InferenceConfigTest, BadValuesNameFileLineAndKey) {
  rpc::ServiceDefinition definition = InferenceDefinition();
  auto doc = config::Document::Parse(
      "inference:\n"
      "  max_batch: 0\n"
      "  max_queue: 0\n"
      "  max_wait: -1ms\n"
      "  default_max_new_tokens: 64\n"
      "  max_new_tokens_limit: 32\n"
      "  max_input_tokens: 1\n"
      "  max_btach: 4\n"
      "  models:\n"
      "    - {name: a, artifact: artifact://m/}\n"
      "    - {name: b, version: v1, artifact: artifact://m/, objective: sbs}\n",
      "i.yaml");
  ASSERT_TRUE(doc.ok()) << doc.status();
  config::Node root = doc->Root();
  definition.read_config(root);
  const std::string message(doc->Finish().message());
  EXPECT_THAT(message, HasSubstr("i.yaml:2: inference.max_batch: must be >= 1, got 0"));
  EXPECT_THAT(message, HasSubstr("i.yaml:3: inference.max_queue: must be >= 1, got 0"));
  EXPECT_THAT(message, HasSubstr("i.yaml:4: inference.max_wait: must be >= 0"));
  EXPECT_THAT(message, HasSubstr("i.yaml:6: inference.max_new_tokens_limit: must be >= default_max_new_tokens (64)"));
  EXPECT_THAT(message, HasSubstr("i.yaml:7: inference.max_input_tokens: must be >= 2, got 1"));
  EXPECT_THAT(message, HasSubstr("i.yaml:8: inference.max_btach: unknown key"));
  EXPECT_THAT(message, HasSubstr("inference.models[0].version: is required"));
  EXPECT_THAT(message, HasSubstr("i.yaml:11: inference.models[1].objective: expected one of: STANDARD, "
                                 "STEP_BY_STEP, COT_SEQUENCE"));
}

}  // namespace
}  // namespace distill::services
