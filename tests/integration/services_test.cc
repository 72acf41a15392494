// Starts every distill binary as a real process on ephemeral loopback ports and checks what a user or
// Kubernetes sees: the listening line, gRPC health, every RPC answering (UNIMPLEMENTED until built,
// UNAUTHENTICATED without the token), /metrics accepted by promtool, /readyz, and a clean exit 0 on
// SIGTERM.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "distill/v1/curator.grpc.pb.h"
#include "distill/v1/inference.grpc.pb.h"
#include "distill/v1/jobs.grpc.pb.h"
#include "distill/v1/teacher.grpc.pb.h"
#include "distill/v1/trainer.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/support/generic_call.h"
#include "tests/support/loopback_http.h"
#include "tests/support/paths.h"
#include "tests/support/subprocess.h"

namespace distill {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

constexpr absl::Duration kStartTimeout = absl::Seconds(30);

struct ServiceBinary {
  std::string name;                                    // "teacher_gateway"
  std::string binary;                                  // "distill-teacher-gateway"
  const google::protobuf::ServiceDescriptor* service;  // its gRPC service
  // Config lines that keep extra listeners on loopback and a free port (tests run in parallel).
  std::string loopback_config = "";
};

// Looking the services up through a message descriptor of each file also links the generated code in.
std::vector<ServiceBinary> AllBinaries() {
  return {
      {"teacher_gateway", "distill-teacher-gateway",
       v1::ListBackendsRequest::descriptor()->file()->FindServiceByName("TeacherGateway")},
      {"curator", "distill-curator", v1::CurateRequest::descriptor()->file()->FindServiceByName("Curator")},
      {"trainer", "distill-trainer", v1::StartRunRequest::descriptor()->file()->FindServiceByName("Trainer")},
      {"inference", "distill-inference", v1::PredictRequest::descriptor()->file()->FindServiceByName("Inference"),
       "inference:\n  http_address: 127.0.0.1:0\n"},
      {"coordinator", "distill-coordinator",
       v1::SubmitJobRequest::descriptor()->file()->FindServiceByName("DistillationJobs"),
       absl::StrCat("coordinator:\n  database: ", ::testing::TempDir(), "coordinator-", getpid(), ".db\n")},
  };
}

std::string BinaryPath(const std::string& binary) {
  return absl::StrCat(::distill::testing::BinaryDir(), "/bin/", binary);
}

struct Listening {
  std::string service;
  std::string grpc;
  std::string metrics;
};

Listening ParseListening(const std::string& line) {
  static const std::regex kLine(
      "^listening service=([a-z_]+) grpc=(127\\.0\\.0\\.1:[1-9][0-9]*) "
      "metrics=(127\\.0\\.0\\.1:[1-9][0-9]*)( http=127\\.0\\.0\\.1:[1-9][0-9]*)?$");
  std::smatch m;
  EXPECT_TRUE(std::regex_match(line, m, kLine)) << "unexpected start-up line: " << line;
  if (m.size() != 5) return {};
  return {m[1], m[2], m[3]};
}

HealthCheckResponse::ServingStatus Health(const std::shared_ptr<grpc::Channel>& channel,
                                          const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

void ExpectPromtoolAccepts(const std::string& exposition, const std::string& name) {
  const std::string path = ::testing::TempDir() + name + "_metrics.txt";
  std::ofstream(path) << exposition;
  const std::string command =
      absl::StrCat(::distill::testing::Promtool(), " check metrics < ", path, " > ", path, ".out 2>&1");
  EXPECT_EQ(std::system(command.c_str()), 0) << "promtool rejected " << name;
  std::ifstream out(path + ".out");
  std::string problems((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(problems, "") << name;
}

void ExpectCleanExit(testing::Subprocess& process) {
  process.Signal(SIGTERM);
  absl::StatusOr<int> status = process.Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 0) << process.Stderr();
  EXPECT_THAT(process.Stderr(), HasSubstr("shutdown complete"));
}

// Keeps test names and failure messages readable.
void PrintTo(const ServiceBinary& svc, std::ostream* os) { *os << svc.binary; }

// What each implemented method answers to one empty request message; every other method is
// UNIMPLEMENTED.
grpc::StatusCode ExpectedCodeForEmptyRequest(const std::string& method) {
  static const auto* expected = new std::map<std::string, grpc::StatusCode>{
      // Streams must start with a config message.
      {"distill.v1.TeacherGateway/GenerateRationales", grpc::StatusCode::FAILED_PRECONDITION},
      {"distill.v1.TeacherGateway/EstimateCost", grpc::StatusCode::FAILED_PRECONDITION},
      {"distill.v1.TeacherGateway/ListBackends", grpc::StatusCode::OK},
      {"distill.v1.Curator/Curate", grpc::StatusCode::FAILED_PRECONDITION},
      {"distill.v1.Curator/CurateDataset", grpc::StatusCode::INVALID_ARGUMENT},
      // Required ids are missing; listing nothing is fine.
      {"distill.v1.Trainer/StartRun", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.Trainer/WatchRun", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.Trainer/CancelRun", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.Trainer/GetRun", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.Trainer/ListRuns", grpc::StatusCode::OK},
      // No model named; listing nothing is fine.
      {"distill.v1.Inference/Predict", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.Inference/Generate", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.Inference/LoadModel", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.Inference/UnloadModel", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.Inference/ListModels", grpc::StatusCode::OK},
      // No request id, spec or job id; listing nothing is fine.
      {"distill.v1.DistillationJobs/SubmitJob", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.DistillationJobs/GetJob", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.DistillationJobs/ListJobs", grpc::StatusCode::OK},
      {"distill.v1.DistillationJobs/WatchJob", grpc::StatusCode::INVALID_ARGUMENT},
      {"distill.v1.DistillationJobs/CancelJob", grpc::StatusCode::INVALID_ARGUMENT},
  };
  auto it = expected->find(method);
  return it == expected->end() ? grpc::StatusCode::UNIMPLEMENTED : it->second;
}

class ServiceBinaryTest : public ::testing::TestWithParam<ServiceBinary> {};

TEST_P(ServiceBinaryTest, ServesHealthMetricsAndAnswersEveryMethod) {
  const ServiceBinary& svc = GetParam();
  ASSERT_NE(svc.service, nullptr);
  std::vector<std::string> argv = {BinaryPath(svc.binary), "--grpc_address", "127.0.0.1:0",
                                   "--metrics_address=127.0.0.1:0"};
  if (!svc.loopback_config.empty()) {
    const std::string config = ::testing::TempDir() + svc.name + "_loopback.yaml";
    std::ofstream(config) << svc.loopback_config;
    argv.push_back("--config=" + config);
  }
  auto process = testing::Subprocess::Start(argv);
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<std::string> line = (*process)->ReadLine(kStartTimeout);
  ASSERT_TRUE(line.ok()) << line.status();
  const Listening listening = ParseListening(*line);
  EXPECT_EQ(listening.service, svc.name);

  auto channel = grpc::CreateChannel(listening.grpc, grpc::InsecureChannelCredentials());
  EXPECT_EQ(Health(channel, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(channel, svc.service->full_name()), HealthCheckResponse::SERVING);

  // Every method answers an empty request, and none pretends to work: methods not built yet say
  // UNIMPLEMENTED naming themselves; built ones validate the request.
  for (int i = 0; i < svc.service->method_count(); ++i) {
    const std::string method = absl::StrCat(svc.service->full_name(), "/", svc.service->method(i)->name());
    testing::GenericResult result = testing::GenericCall(channel, "/" + method, "");
    const grpc::StatusCode expected = ExpectedCodeForEmptyRequest(method);
    EXPECT_EQ(result.status.error_code(), expected) << method << ": " << result.status.error_message();
    if (expected == grpc::StatusCode::UNIMPLEMENTED) {
      EXPECT_THAT(result.status.error_message(), HasSubstr(method));
    }
  }

  auto metrics = testing::HttpGet(listening.metrics, "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr(absl::StrCat("distill_", svc.name, "_grpc_requests_total{code=")));
  ExpectPromtoolAccepts(metrics->body, svc.name);
  auto ready = testing::HttpGet(listening.metrics, "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  auto live = testing::HttpGet(listening.metrics, "/healthz");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);

  channel.reset();  // see Server::Shutdown(): an idle 1.51 client channel delays GOAWAY by seconds
  ExpectCleanExit(**process);
}

TEST_P(ServiceBinaryTest, RequiresTheBearerTokenFromItsConfig) {
  const ServiceBinary& svc = GetParam();
  const std::string dir = ::testing::TempDir();
  const std::string token_file = dir + svc.name + "_token";
  std::ofstream(token_file) << "integration-token\n";
  const std::string config = dir + svc.name + "_auth.yaml";
  std::ofstream(config) << "server:\n  grpc_address: 127.0.0.1:0\n  metrics_address: 127.0.0.1:0\n"
                        << "  auth:\n    token_file: " << token_file << "\nlog:\n  format: json\n"
                        << svc.loopback_config;
  auto process = testing::Subprocess::Start({BinaryPath(svc.binary), "--config", config});
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<std::string> line = (*process)->ReadLine(kStartTimeout);
  ASSERT_TRUE(line.ok()) << line.status();
  const Listening listening = ParseListening(*line);
  auto channel = grpc::CreateChannel(listening.grpc, grpc::InsecureChannelCredentials());

  for (int i = 0; i < svc.service->method_count(); ++i) {
    const std::string method =
        absl::StrCat("/", svc.service->full_name(), "/", svc.service->method(i)->name());
    EXPECT_EQ(testing::GenericCall(channel, method, "").status.error_code(),
              grpc::StatusCode::UNAUTHENTICATED)
        << method;
    EXPECT_EQ(testing::GenericCall(channel, method, "", "wrong-token").status.error_code(),
              grpc::StatusCode::UNAUTHENTICATED)
        << method;
    EXPECT_EQ(testing::GenericCall(channel, method, "", "integration-token").status.error_code(),
              ExpectedCodeForEmptyRequest(method.substr(1)))
        << method;
  }
  channel.reset();
  ExpectCleanExit(**process);
  // JSON logs as configured, and the token never reaches them.
  EXPECT_THAT((*process)->Stderr(), HasSubstr("{\"ts\":"));
  EXPECT_THAT((*process)->Stderr(), ::testing::Not(HasSubstr("integration-token")));
}

TEST_P(ServiceBinaryTest, BadConfigExitsBeforeListening) {
  const ServiceBinary& svc = GetParam();
  const std::string config = ::testing::TempDir() + svc.name + "_bad.yaml";
  std::ofstream(config) << "server:\n  grpc_address: 127.0.0.1:0\n  max_mesage_bytes: 10\n";
  auto process = testing::Subprocess::Start({BinaryPath(svc.binary), "--config", config});
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> status = (*process)->Wait(kStartTimeout);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  EXPECT_THAT((*process)->Stderr(),
              HasSubstr(absl::StrCat(svc.name, "_bad.yaml:3: server.max_mesage_bytes: unknown key")));
  EXPECT_EQ((*process)->PendingStdout(), "");
}

INSTANTIATE_TEST_SUITE_P(AllServices, ServiceBinaryTest, ::testing::ValuesIn(AllBinaries()),
                         [](const ::testing::TestParamInfo<ServiceBinary>& info) { return info.param.name; });

TEST(ServiceFlagsTest, BadFlagsExitWithUsageError) {
  auto process = testing::Subprocess::Start({BinaryPath("distill-curator"), "--grpc_address", "nohost"});
  ASSERT_TRUE(process.ok());
  absl::StatusOr<int> status = (*process)->Wait(kStartTimeout);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  EXPECT_THAT((*process)->Stderr(), HasSubstr("--grpc_address: expected host:port"));
}

TEST(DistillUpTest, RunsAllFiveServicesInOneProcess) {
  auto process = testing::Subprocess::Start({BinaryPath("distill"), "up"});
  ASSERT_TRUE(process.ok()) << process.status();
  std::vector<std::string> names;
  for (const ServiceBinary& svc : AllBinaries()) {
    absl::StatusOr<std::string> line = (*process)->ReadLine(kStartTimeout);
    ASSERT_TRUE(line.ok()) << line.status();
    const Listening listening = ParseListening(*line);
    names.push_back(listening.service);
    auto channel = grpc::CreateChannel(listening.grpc, grpc::InsecureChannelCredentials());
    EXPECT_EQ(Health(channel, svc.service->full_name()), HealthCheckResponse::SERVING) << svc.name;
    auto metrics = testing::HttpGet(listening.metrics, "/metrics");
    ASSERT_TRUE(metrics);
    ExpectPromtoolAccepts(metrics->body, "up_" + listening.service);
  }
  EXPECT_THAT(names,
              ::testing::ElementsAre("teacher_gateway", "curator", "trainer", "inference", "coordinator"));
  ExpectCleanExit(**process);
}

TEST(DistillUpTest, UnknownCommandIsAUsageError) {
  auto process = testing::Subprocess::Start({BinaryPath("distill"), "frobnicate"});
  ASSERT_TRUE(process.ok());
  absl::StatusOr<int> status = (*process)->Wait(kStartTimeout);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  EXPECT_THAT((*process)->Stderr(), HasSubstr("unknown command \"frobnicate\""));
}

}  // namespace
}  // namespace distill
