// The server bootstrap over real gRPC on loopback: health, auth, metrics, reflection, TLS, message
// limits and graceful shutdown. A small Inference service whose Predict can be held open stands in
// for a real handler.

#include "common/rpc/server.h"

#include <cstdlib>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/rpc/handler.h"
#include "common/rpc/service_module.h"
#include "distill/v1/inference.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/support/generic_call.h"
#include "tests/support/loopback_http.h"
#include "tests/support/paths.h"

namespace distill::rpc {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using ::testing::Not;

// Predict echoes its input; when the input is "hold" it blocks until released or cancelled.
class HoldableInference final : public v1::Inference::Service {
 public:
  explicit HoldableInference(CallGuard guard) : guard_(guard) {}

  grpc::Status Predict(grpc::ServerContext* context, const v1::PredictRequest* request,
                       v1::PredictResponse* response) override {
    return Handle(guard_, context, [&]() -> absl::Status {
      if (request->input() == "hold") {
        entered.Notify();
        while (!release.WaitForNotificationWithTimeout(absl::Milliseconds(10))) {
          if (context->IsCancelled()) return absl::CancelledError("cancelled while held");
        }
      }
      if (request->input() == "throw") throw std::runtime_error("library exploded");
      response->set_text(request->input());
      return absl::OkStatus();
    });
  }

  absl::Notification entered;
  absl::Notification release;

 private:
  const CallGuard guard_;
};

using TestModule = SingleServiceModule<HoldableInference>;

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    auto server = Server::Start(
        "test", options,
        [this](const ModuleContext& context) -> absl::StatusOr<std::unique_ptr<ServiceModule>> {
          auto module = std::make_unique<TestModule>(v1::Inference::service_full_name(), context.guard);
          service_ = &module->service();
          return module;
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(server_->grpc_address(), grpc::InsecureChannelCredentials());
  }

  grpc::Status Predict(const std::string& input, const std::string& token = "",
                       v1::PredictResponse* response = nullptr) {
    auto stub = v1::Inference::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::PredictRequest request;
    request.set_input(input);
    v1::PredictResponse ignored;
    return stub->Predict(&context, request, response != nullptr ? response : &ignored);
  }

  HealthCheckResponse::ServingStatus Health(const std::string& service) {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.status();
  }

  std::string Scrape() {
    auto result = testing::HttpGet(server_->metrics_address(), "/metrics");
    EXPECT_TRUE(result) << "scrape failed";
    return result ? result->body : "";
  }

  std::unique_ptr<Server> server_;
  HoldableInference* service_ = nullptr;
  std::shared_ptr<grpc::Channel> channel_;
};

std::string WriteTempFile(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << content;
  return path;
}

TEST_F(ServerTest, ReportsServingForEveryServiceAndTheServer) {
  StartServer();
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("distill.v1.Inference"), HealthCheckResponse::SERVING);
  EXPECT_THAT(server_->ListeningLine(),
              ::testing::MatchesRegex("listening service=test grpc=127\\.0\\.0\\.1:[1-9][0-9]* "
                                      "metrics=127\\.0\\.0\\.1:[1-9][0-9]*"));
}

TEST_F(ServerTest, CountsCallsByMethodAndCode) {
  StartServer();
  ASSERT_TRUE(Predict("a").ok());
  ASSERT_TRUE(Predict("b").ok());
  const std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("distill_test_grpc_requests_total{code=\"OK\","
                              "method=\"/distill.v1.Inference/Predict\"} 2"));
  EXPECT_THAT(text, HasSubstr("distill_test_grpc_request_duration_seconds_count{"
                              "method=\"/distill.v1.Inference/Predict\"} 2"));
  EXPECT_THAT(text, HasSubstr("distill_test_grpc_requests_in_flight 0"));
  EXPECT_THAT(text, HasSubstr("distill_test_build_info{version=\"0.1.0\"} 1"));
}

TEST_F(ServerTest, UnknownMethodsShareOneLabelValue) {
  StartServer();
  testing::GenericResult result = testing::GenericCall(channel_, "/distill.v1.Nope/Random123", "");
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  const std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("method=\"other\""));
  EXPECT_THAT(text, Not(HasSubstr("Random123")));
}

TEST_F(ServerTest, ExposesMetricsThatPromtoolAccepts) {
  StartServer();
  ASSERT_TRUE(Predict("x").ok());
  const std::string path = WriteTempFile("server_metrics.txt", Scrape());
  const std::string command =
      absl::StrCat(::distill::testing::Promtool(), " check metrics < ", path, " > ", path, ".out 2>&1");
  EXPECT_EQ(std::system(command.c_str()), 0);
  std::ifstream out(path + ".out");
  std::string problems((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(problems, "");
}

TEST_F(ServerTest, ExceptionsFromHandlersBecomeInternal) {
  StartServer();
  grpc::Status status = Predict("throw");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(), HasSubstr("library exploded"));
}

TEST_F(ServerTest, RejectsMissingAndWrongTokensButAdmitsTheRightOne) {
  const std::string token_file = WriteTempFile("token", "s3cret-token\n");
  ServerOptions options;
  options.auth.token_file = token_file;
  StartServer(options);

  grpc::Status missing = Predict("a");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("missing"));
  grpc::Status wrong = Predict("a", "s3cret-tokeN");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(), Not(HasSubstr("s3cret")));

  v1::PredictResponse response;
  ASSERT_TRUE(Predict("a", "s3cret-token", &response).ok());
  EXPECT_EQ(response.text(), "a");
  // Health probes carry no token (kubelet cannot send one) and stay open.
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
  EXPECT_THAT(Scrape(), HasSubstr("code=\"UNAUTHENTICATED\""));
}

TEST_F(ServerTest, ReadsTheTokenFromAnEnvironmentVariable) {
  ::setenv("DISTILL_TEST_TOKEN", "from-env", 1);
  ServerOptions options;
  options.auth.token_env = "DISTILL_TEST_TOKEN";
  StartServer(options);
  EXPECT_EQ(Predict("a", "wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Predict("a", "from-env").ok());
}

TEST_F(ServerTest, ServesReflection) {
  StartServer();
  // ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
  testing::GenericResult result = testing::GenericCall(
      channel_, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", std::string("\x3a\x00", 2));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.responses.size(), 1u);
  EXPECT_THAT(result.responses[0], HasSubstr("distill.v1.Inference"));
  EXPECT_THAT(result.responses[0], HasSubstr("grpc.health.v1.Health"));
}

TEST_F(ServerTest, EnforcesTheMaximumMessageSize) {
  ServerOptions options;
  options.max_message_bytes = 1024;
  StartServer(options);
  EXPECT_TRUE(Predict(std::string(100, 'a')).ok());
  grpc::Status status = Predict(std::string(4096, 'a'));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(ServerTest, ShutdownLetsAnInFlightCallFinish) {
  StartServer();
  auto call = std::async(std::launch::async, [this] {
    v1::PredictResponse response;
    grpc::Status status = Predict("hold", "", &response);
    return std::make_pair(status, response.text());
  });
  service_->entered.WaitForNotification();
  auto shutdown = std::async(std::launch::async, [this] { server_->Shutdown(); });
  // Shutdown cannot complete while the call is held; release it and both finish cleanly.
  EXPECT_EQ(shutdown.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  service_->release.Notify();
  auto [status, text] = call.get();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(text, "hold");
  shutdown.get();
  // After shutdown nothing is accepted.
  EXPECT_EQ(Predict("late").error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ServerTest, ShutdownCancelsCallsThatOutliveTheGrace) {
  ServerOptions options;
  options.shutdown_grace = absl::Milliseconds(100);
  StartServer(options);
  auto call = std::async(std::launch::async, [this] { return Predict("hold"); });
  service_->entered.WaitForNotification();
  server_->Shutdown();  // returns only once the held call was cancelled
  grpc::Status status = call.get();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.error_code(),
              ::testing::AnyOf(grpc::StatusCode::CANCELLED, grpc::StatusCode::UNAVAILABLE));
}

// A module that cannot do its job yet (think: model not loaded).
class NotReadyModule final : public ServiceModule {
 public:
  explicit NotReadyModule(CallGuard guard) : service_(guard) {}
  std::vector<grpc::Service*> services() override { return {&service_}; }
  std::vector<std::string> service_names() const override { return {v1::Inference::service_full_name()}; }
  bool Ready() const override { return false; }

 private:
  HoldableInference service_;
};

TEST(ServerReadinessTest, NotReadyModuleIsNotServing) {
  auto server = Server::Start(
      "nr", {}, [](const ModuleContext& context) -> absl::StatusOr<std::unique_ptr<ServiceModule>> {
        return std::make_unique<NotReadyModule>(context.guard);
      });
  ASSERT_TRUE(server.ok()) << server.status();
  auto ready = testing::HttpGet((*server)->metrics_address(), "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  auto live = testing::HttpGet((*server)->metrics_address(), "/healthz");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);

  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel((*server)->grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  HealthCheckResponse response;
  ASSERT_TRUE(stub->Check(&context, HealthCheckRequest(), &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
}

TEST(ServerStartTest, RejectsBadOptionsNamingTheField) {
  auto factory = [](const ModuleContext& context) -> absl::StatusOr<std::unique_ptr<ServiceModule>> {
    return std::make_unique<TestModule>(v1::Inference::service_full_name(), context.guard);
  };
  ServerOptions bad_address;
  bad_address.grpc_address = "localhost";
  auto s1 = Server::Start("t", bad_address, factory);
  EXPECT_EQ(s1.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s1.status().message()), HasSubstr("server.grpc_address"));

  ServerOptions bad_size;
  bad_size.max_message_bytes = 0;
  EXPECT_THAT(std::string(Server::Start("t", bad_size, factory).status().message()),
              HasSubstr("server.max_message_bytes"));

  ServerOptions missing_token;
  missing_token.auth.token_file = "/nonexistent/token";
  auto s3 = Server::Start("t", missing_token, factory);
  EXPECT_EQ(s3.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s3.status().message()), HasSubstr("server.auth.token_file"));

  ServerOptions empty_env;
  empty_env.auth.token_env = "DISTILL_TEST_UNSET_VARIABLE";
  EXPECT_THAT(std::string(Server::Start("t", empty_env, factory).status().message()),
              HasSubstr("DISTILL_TEST_UNSET_VARIABLE is unset or empty"));

  ServerOptions half_tls;
  half_tls.tls.cert_file = "/tmp/cert.pem";
  EXPECT_THAT(std::string(Server::Start("t", half_tls, factory).status().message()), HasSubstr("server.tls"));
}

TEST(ServerStartTest, FailsWhenThePortIsTaken) {
  auto factory = [](const ModuleContext& context) -> absl::StatusOr<std::unique_ptr<ServiceModule>> {
    return std::make_unique<TestModule>(v1::Inference::service_full_name(), context.guard);
  };
  auto first = Server::Start("a", {}, factory);
  ASSERT_TRUE(first.ok()) << first.status();
  ServerOptions same_port;
  same_port.grpc_address = (*first)->grpc_address();
  auto second = Server::Start("b", same_port, factory);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot listen"));

  ServerOptions same_metrics_port;
  same_metrics_port.metrics_address = (*first)->metrics_address();
  auto third = Server::Start("c", same_metrics_port, factory);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(third.status().message()), HasSubstr("server.metrics_address"));
}

TEST(ServerTlsTest, ServesTlsClientsAndRefusesPlaintext) {
  const std::string dir = ::testing::TempDir();
  const std::string key = dir + "tls_key.pem";
  const std::string cert = dir + "tls_cert.pem";
  const std::string command = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost ",
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ", key, " -out ", cert, " > /dev/null 2>&1");
  ASSERT_EQ(std::system(command.c_str()), 0) << "openssl failed";
  ServerOptions options;
  options.grpc_address = "127.0.0.1:0";
  options.tls.cert_file = cert;
  options.tls.key_file = key;
  auto server = Server::Start(
      "tls", options, [](const ModuleContext& context) -> absl::StatusOr<std::unique_ptr<ServiceModule>> {
        return std::make_unique<TestModule>(v1::Inference::service_full_name(), context.guard);
      });
  ASSERT_TRUE(server.ok()) << server.status();

  std::ifstream in(cert);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  auto tls_channel = grpc::CreateChannel((*server)->grpc_address(), grpc::SslCredentials(ssl));
  auto stub = v1::Inference::NewStub(tls_channel);
  grpc::ClientContext context;
  v1::PredictRequest request;
  request.set_input("secure");
  v1::PredictResponse response;
  grpc::Status status = stub->Predict(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "secure");

  auto plain = v1::Inference::NewStub(
      grpc::CreateChannel((*server)->grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext plain_context;
  plain_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(plain->Predict(&plain_context, request, &response).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace distill::rpc
