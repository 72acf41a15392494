// The config files the Helm chart (helm/distill) writes into its ConfigMaps load with the services' own
// config readers, for every values variant the chart checks render (tests/deploy/helm/helmcheck): no
// unknown key, no bad value, and the listen addresses the chart's containers declare. helmcheck renders
// the chart as `helm template` would and writes each variant's files as <dir>/<variant>/<component>.yaml.

#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "common/rpc/service_main.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/coordinator/coordinator_service.h"
#include "services/curator/curator_service.h"
#include "services/inference/inference_service.h"
#include "services/teacher_gateway/teacher_gateway_service.h"
#include "services/trainer/trainer_service.h"
#include "tests/support/paths.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace distill {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct Component {
  // The chart's component name (the file name helmcheck writes).
  std::string name;
  // The service's own config section.
  std::string section;
  // The chart's gRPC and metrics ports for it.
  std::string grpc_address;
  std::string metrics_address;
  rpc::ServiceDefinition (*definition)();
};

const std::map<std::string, Component>& Components() {
  static const auto* components = new std::map<std::string, Component>{
      {"coordinator",
       {"coordinator", "coordinator", "0.0.0.0:50050", "0.0.0.0:9400", &services::CoordinatorDefinition}},
      {"teacher-gateway",
       {"teacher-gateway", "teacher_gateway", "0.0.0.0:50051", "0.0.0.0:9401",
        &services::TeacherGatewayDefinition}},
      {"curator", {"curator", "curator", "0.0.0.0:50052", "0.0.0.0:9402", &services::CuratorDefinition}},
      {"trainer", {"trainer", "trainer", "0.0.0.0:50053", "0.0.0.0:9403", &services::TrainerDefinition}},
      {"inference",
       {"inference", "inference", "0.0.0.0:50054", "0.0.0.0:9404", &services::InferenceDefinition}},
  };
  return *components;
}

class ChartConfigTest : public ::testing::TestWithParam<std::string> {
 protected:
  // Renders every variant once per test process.
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir("helm_configs");
    const std::string source = ::distill::testing::SourceDir();
    absl::StatusOr<std::unique_ptr<testing::Subprocess>> helmcheck = testing::Subprocess::Start(
        {DISTILL_HELMCHECK, "configs", "--out", dir_->path(), "--testdata", source + "/tests/deploy/helm/testdata",
         source + "/helm/distill"});
    ASSERT_TRUE(helmcheck.ok()) << helmcheck.status();
    absl::StatusOr<int> status = (*helmcheck)->Wait(absl::Seconds(60));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "helmcheck configs failed:\n"
        << (*helmcheck)->PendingStdout() << (*helmcheck)->Stderr();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // The variant directories helmcheck wrote.
  static std::vector<fs::path> Variants() {
    std::vector<fs::path> variants;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir_->path())) {
      if (entry.is_directory()) variants.push_back(entry.path());
    }
    return variants;
  }

  const Component& component() const { return Components().at(GetParam()); }

  static testing::TempDir* dir_;
};

testing::TempDir* ChartConfigTest::dir_ = nullptr;

TEST_P(ChartConfigTest, EveryVariantsConfigLoadsWithTheServicesReader) {
  const std::vector<fs::path> variants = Variants();
  // default, gpu, distributed, monitoring, ... (tests/deploy/helm/helmcheck/variants.go).
  ASSERT_GE(variants.size(), 10u);
  for (const fs::path& variant : variants) {
    SCOPED_TRACE(variant.filename().string());
    const fs::path file = variant / (component().name + ".yaml");
    ASSERT_TRUE(fs::exists(file)) << file;
    absl::StatusOr<rpc::ServiceConfig> config = rpc::LoadServiceConfig(file.string(), component().definition());
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->server.grpc_address, component().grpc_address);
    EXPECT_EQ(config->server.metrics_address, component().metrics_address);
  }
}

// The reader is strict, so the test above would catch a key the chart misspells or puts in the wrong
// section.
TEST_P(ChartConfigTest, TheServicesReaderRefusesAnUnknownKey) {
  testing::TempDir dir;
  const std::string path = dir.File("config.yaml");
  std::ofstream(path) << "server:\n  grpc_address: 0.0.0.0:1\n" << component().section << ":\n  not_a_key: 1\n";
  absl::StatusOr<rpc::ServiceConfig> config = rpc::LoadServiceConfig(path, component().definition());
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr(component().section + ".not_a_key: unknown key"));
}

// The instance name puts "helm" into every CTest name (ctest -R helm).
INSTANTIATE_TEST_SUITE_P(helm, ChartConfigTest,
                         ::testing::Values("coordinator", "teacher-gateway", "curator", "trainer", "inference"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return absl::StrReplaceAll(info.param, {{"-", "_"}});
                         });

}  // namespace
}  // namespace distill
