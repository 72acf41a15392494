// The `coordinator:` config section: defaults, every key, and bad values named with file, line and key.

#include "services/coordinator/coordinator_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace distill::coordinator {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<CoordinatorConfig> Read(const std::string& yaml) {
  absl::StatusOr<config::Document> doc = config::Document::Parse(yaml, "coordinator.yaml");
  if (!doc.ok()) return doc.status();
  CoordinatorConfig config;
  config::Node root = doc->Root();
  ReadCoordinatorConfig(root, &config);
  if (absl::Status finished = doc->Finish(); !finished.ok()) return finished;
  return config;
}

TEST(CoordinatorConfigTest, DefaultsPointAtTheServicesDefaultPorts) {
  absl::StatusOr<CoordinatorConfig> config = Read("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->teacher_gateway_address, "127.0.0.1:50051");
  EXPECT_EQ(config->inference_address, "127.0.0.1:50054");
  EXPECT_EQ(config->max_running_jobs, 1);
}

TEST(CoordinatorConfigTest, ReadsEveryKey) {
  absl::StatusOr<CoordinatorConfig> config = Read(
      "coordinator:\n  database: /data/jobs.db\n  artifact_root: /data/artifacts\n"
      "  teacher_gateway_address: gw:1\n  curator_address: cu:2\n  trainer_address: tr:3\n"
      "  inference_address: in:4\n  service_token_env: TOKEN\n  max_running_jobs: 3\n  rpc_timeout: 5s\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->database, "/data/jobs.db");
  EXPECT_EQ(config->trainer_address, "tr:3");
  EXPECT_EQ(config->service_token_env, "TOKEN");
  EXPECT_EQ(config->max_running_jobs, 3);
  EXPECT_EQ(config->rpc_timeout, absl::Seconds(5));
}

TEST(CoordinatorConfigTest, BadValuesNameFileLineAndKey) {
  absl::StatusOr<CoordinatorConfig> config =
      Read("coordinator:\n  max_running_jobs: 0\n  database: \"\"\n  curator_address: \"\"\n  rpc_timeout: 0s\n"
           "  databse: x\n");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("coordinator.yaml:2: coordinator.max_running_jobs: must be >= 1, got 0"));
  EXPECT_THAT(message, HasSubstr("coordinator.database: must not be empty"));
  EXPECT_THAT(message, HasSubstr("coordinator.curator_address: must not be empty"));
  EXPECT_THAT(message, HasSubstr("coordinator.rpc_timeout: must be > 0"));
  EXPECT_THAT(message, HasSubstr("coordinator.yaml:6: coordinator.databse: unknown key"));
}

}  // namespace
}  // namespace distill::coordinator
