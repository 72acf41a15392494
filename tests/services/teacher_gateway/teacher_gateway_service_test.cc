// The TeacherGateway gRPC service over real gRPC on loopback, with the embedded synthetic teacher.

#include "services/teacher_gateway/teacher_gateway_service.h"

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "common/config/yaml.h"
#include "common/rpc/server.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/support/paths.h"

namespace distill::services {
namespace {

using ::testing::HasSubstr;

class TeacherGatewayServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rpc::ServiceDefinition definition = TeacherGatewayDefinition();
    auto doc = config::Document::Parse("teacher_gateway:\n  cache_path: ':memory:'\n", "test.yaml");
    ASSERT_TRUE(doc.ok());
    config::Node root = doc->Root();
    definition.read_config(root);
    ASSERT_TRUE(doc->Finish().ok()) << doc->Finish();
    auto server = rpc::Server::Start("teacher_gateway", rpc::ServerOptions{}, definition.factory);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::TeacherGateway::NewStub(
        grpc::CreateChannel(server_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  static v1::GenerateRationalesRequest Config(const std::string& backend, int n) {
    v1::GenerateRationalesRequest r;
    r.mutable_config()->mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
    r.mutable_config()->mutable_options()->set_backend(backend);
    r.mutable_config()->mutable_options()->set_samples_per_example(n);
    return r;
  }

  static v1::GenerateRationalesRequest Example(const std::string& id, const std::string& input) {
    v1::GenerateRationalesRequest r;
    r.mutable_example()->set_id(id);
    r.mutable_example()->set_input(input);
    return r;
  }

  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<v1::TeacherGateway::Stub> stub_;
};

TEST_F(TeacherGatewayServiceTest, StreamsSamplesErrorsAndASummary) {
  grpc::ClientContext context;
  auto stream = stub_->GenerateRationales(&context);
  ASSERT_TRUE(stream->Write(Config("synthetic", 2)));
  ASSERT_TRUE(stream->Write(
      Example("a", "Tom has 12 apples. He buys 5 more apples. How many apples does Tom have now?")));
  ASSERT_TRUE(stream->Write(Example("empty", "")));
  ASSERT_TRUE(stream->Write(
      Example("b", "Ann has 20 pens. She gives 4 pens to Bo. How many pens does Ann have now?")));
  stream->WritesDone();
  std::vector<v1::GenerateRationalesResponse> responses;
  v1::GenerateRationalesResponse r;
  while (stream->Read(&r)) responses.push_back(r);
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();

  int samples = 0;
  int errors = 0;
  for (size_t i = 0; i < responses.size(); ++i) {
    if (responses[i].has_sample()) ++samples;
    if (responses[i].has_error()) {
      ++errors;
      EXPECT_EQ(responses[i].error().example_id(), "empty");
      EXPECT_EQ(responses[i].error().field(), "input");
      EXPECT_EQ(responses[i].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    }
    if (responses[i].has_summary()) {
      EXPECT_EQ(i, responses.size() - 1) << "the summary comes last";
    }
  }
  EXPECT_EQ(samples, 4);
  EXPECT_EQ(errors, 1);
  ASSERT_TRUE(responses.back().has_summary());
  EXPECT_EQ(responses.back().summary().examples_received(), 3);
  EXPECT_EQ(responses.back().summary().examples_completed(), 2);

  // The gateway's metrics after real traffic, checked by promtool.
  const std::string text = server_->registry().Serialize();
  EXPECT_THAT(
      text,
      HasSubstr("distill_teacher_gateway_backend_requests_total{backend=\"synthetic\",outcome=\"ok\"} 2"));
  EXPECT_THAT(text,
              HasSubstr("distill_teacher_gateway_samples_total{backend=\"synthetic\",source=\"backend\"} 4"));
  EXPECT_THAT(text, HasSubstr("distill_teacher_gateway_examples_failed_total{reason=\"invalid_example\"} 1"));
  const std::string path = ::testing::TempDir() + "teacher_gateway_metrics.txt";
  std::ofstream(path) << text;
  const std::string command =
      ::distill::testing::Promtool() + " check metrics < " + path + " > " + path + ".out 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0);
  std::ifstream out(path + ".out");
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>()), "");
}

TEST_F(TeacherGatewayServiceTest, StreamLevelErrorsNameTheField) {
  {
    grpc::ClientContext context;
    auto stream = stub_->GenerateRationales(&context);
    stream->Write(Config("no-such-backend", 1));
    stream->WritesDone();
    v1::GenerateRationalesResponse r;
    while (stream->Read(&r)) {
    }
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("config.options.backend: unknown backend \"no-such-backend\""));
  }
  {
    grpc::ClientContext context;
    auto stream = stub_->GenerateRationales(&context);
    stream->Write(Config("synthetic", 0));
    stream->WritesDone();
    v1::GenerateRationalesResponse r;
    while (stream->Read(&r)) {
    }
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("config.options.samples_per_example"));
  }
  {
    grpc::ClientContext context;
    auto stream = stub_->GenerateRationales(&context);
    stream->Write(Example("x", "too early"));
    stream->WritesDone();
    v1::GenerateRationalesResponse r;
    while (stream->Read(&r)) {
    }
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(status.error_message(), HasSubstr("first message must be the stream's config"));
  }
}

TEST_F(TeacherGatewayServiceTest, ListsBackendsAndEstimates) {
  grpc::ClientContext context;
  v1::ListBackendsResponse list;
  ASSERT_TRUE(stub_->ListBackends(&context, v1::ListBackendsRequest(), &list).ok());
  ASSERT_EQ(list.backends_size(), 1);
  EXPECT_EQ(list.backends(0).name(), "synthetic");
  EXPECT_EQ(list.backends(0).kind(), v1::BACKEND_KIND_SYNTHETIC);

  grpc::ClientContext estimate_context;
  v1::EstimateCostResponse estimate;
  auto writer = stub_->EstimateCost(&estimate_context, &estimate);
  v1::EstimateCostRequest config;
  *config.mutable_config() = Config("synthetic", 4).config();
  writer->Write(config);
  v1::EstimateCostRequest example;
  *example.mutable_example() = Example("q", "Sam has 3 apples. How many apples does Sam have?").example();
  writer->Write(example);
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(estimate.examples(), 1);
  EXPECT_EQ(estimate.samples_to_send(), 4);
  EXPECT_EQ(estimate.expected().cost_usd(), 0);  // the synthetic teacher is free
  EXPECT_TRUE(estimate.within_budget());
}

}  // namespace
}  // namespace distill::services
