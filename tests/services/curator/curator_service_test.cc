// The Curator gRPC service over real gRPC on loopback: the Curate stream and CurateDataset on the
// artifact store.

#include "services/curator/curator_service.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/config/yaml.h"
#include "common/hash/sha256.h"
#include "common/rpc/server.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/support/paths.h"

namespace distill::services {
namespace {

using ::testing::HasSubstr;

class CuratorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "curator_store/";
    std::filesystem::create_directories(root_);
    rpc::ServiceDefinition definition = CuratorDefinition();
    auto doc = config::Document::Parse("curator:\n  artifact_root: " + root_ + "\n", "test.yaml");
    ASSERT_TRUE(doc.ok());
    config::Node node = doc->Root();
    definition.read_config(node);
    ASSERT_TRUE(doc->Finish().ok());
    auto server = rpc::Server::Start("curator", rpc::ServerOptions{}, definition.factory);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Curator::NewStub(
        grpc::CreateChannel(server_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  static v1::CurateRequest Input(const std::string& id, const std::string& gold,
                                 const std::string& completion) {
    v1::CurateRequest r;
    r.mutable_input()->mutable_example()->set_id(id);
    r.mutable_input()->mutable_example()->set_input("Tom has 12 apples and buys 5. How many now? (" + id +
                                                    ")");
    r.mutable_input()->mutable_example()->set_gold(gold);
    v1::TeacherSample* s = r.mutable_input()->add_samples();
    s->set_completion(completion);
    return r;
  }

  std::string root_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<v1::Curator::Stub> stub_;
};

TEST_F(CuratorServiceTest, CurateStreamsRecordsDropsAndASummary) {
  grpc::ClientContext context;
  auto stream = stub_->Curate(&context);
  v1::CurateRequest config;
  config.mutable_config()->mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
  config.mutable_config()->mutable_options()->set_format(v1::OUTPUT_FORMAT_STEP_BY_STEP);
  config.mutable_config()->mutable_options()->set_include_drops(true);
  ASSERT_TRUE(stream->Write(config));
  ASSERT_TRUE(
      stream->Write(Input("a", "17", "He has 12 and buys 5, so 12 + 5 = 17 apples. So the answer is 17.")));
  ASSERT_TRUE(
      stream->Write(Input("b", "17", "He has 12 and buys 5, so 12 + 5 = 18 apples. So the answer is 18.")));
  stream->WritesDone();
  std::vector<v1::CurateResponse> responses;
  v1::CurateResponse r;
  while (stream->Read(&r)) responses.push_back(r);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_TRUE(responses[0].has_record());
  EXPECT_EQ(responses[1].dropped().reason(), v1::DROP_REASON_WRONG_ANSWER);
  EXPECT_EQ(responses[2].summary().kept(), 1);
  EXPECT_EQ(responses[2].summary().dropped(), 1);

  // Every drop reason is a metric too, and the exposition passes promtool.
  const std::string text = server_->registry().Serialize();
  EXPECT_THAT(text, HasSubstr("distill_curator_samples_dropped_total{reason=\"wrong_answer\"} 1"));
  EXPECT_THAT(text, HasSubstr("distill_curator_samples_kept_total 1"));
  EXPECT_THAT(text, HasSubstr("distill_curator_teacher_accuracy_ratio 0.5"));
  const std::string path = ::testing::TempDir() + "curator_metrics.txt";
  std::ofstream(path) << text;
  EXPECT_EQ(std::system((::distill::testing::Promtool() + " check metrics < " + path).c_str()), 0);
}

TEST_F(CuratorServiceTest, CurateRejectsABadConfigNamingTheField) {
  grpc::ClientContext context;
  auto stream = stub_->Curate(&context);
  v1::CurateRequest config;
  config.mutable_config()->mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
  stream->Write(config);
  stream->WritesDone();
  v1::CurateResponse r;
  while (stream->Read(&r)) {
  }
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("config.options.format: is required"));
}

TEST_F(CuratorServiceTest, CurateDatasetWritesIntoTheArtifactStore) {
  const std::string input = root_ + "samples.jsonl";
  const std::string content =
      "{\"id\": \"a\", \"input\": \"Q1?\", \"gold\": \"17\", \"completions\": [\"12 + 5 = 17 apples in all. "
      "So the "
      "answer is 17.\"]}\n";
  std::ofstream(input) << content;
  v1::CurateDatasetRequest request;
  request.mutable_input()->set_uri("artifact://samples.jsonl");
  request.mutable_input()->set_content_hash("sha256:" + hash::Sha256Hex(content));
  request.mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
  request.mutable_options()->set_format(v1::OUTPUT_FORMAT_STEP_BY_STEP);
  request.set_output_uri("artifact://curated/run1/");
  grpc::ClientContext context;
  v1::CurateDatasetResponse response;
  grpc::Status status = stub_->CurateDataset(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.output().uri(), "artifact://curated/run1/");
  EXPECT_EQ(response.records().uri(), "artifact://curated/run1/records.jsonl");
  EXPECT_THAT(response.records().content_hash(), ::testing::StartsWith("sha256:"));
  EXPECT_EQ(response.summary().kept(), 1);
  EXPECT_TRUE(std::filesystem::exists(root_ + "curated/run1/manifest.json"));

  request.mutable_input()->set_content_hash("sha256:0000");
  grpc::ClientContext mismatch_context;
  EXPECT_EQ(stub_->CurateDataset(&mismatch_context, request, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  request.mutable_input()->set_uri("relative/path.jsonl");
  grpc::ClientContext bad_context;
  status = stub_->CurateDataset(&bad_context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("input.uri"));

  request.mutable_input()->set_uri("artifact://../escape.jsonl");
  grpc::ClientContext escape_context;
  EXPECT_EQ(stub_->CurateDataset(&escape_context, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(CuratorConfigTest, BadValuesNameFileLineAndKey) {
  rpc::ServiceDefinition definition = CuratorDefinition();
  auto doc = config::Document::Parse("curator:\n  artifact_root: ''\n  artefact_root: x\n", "c.yaml");
  ASSERT_TRUE(doc.ok());
  config::Node root = doc->Root();
  definition.read_config(root);
  const std::string message(doc->Finish().message());
  EXPECT_THAT(message, HasSubstr("c.yaml:2: curator.artifact_root: must not be empty"));
  EXPECT_THAT(message, HasSubstr("c.yaml:3: curator.artefact_root: unknown key"));
}

}  // namespace
}  // namespace distill::services
