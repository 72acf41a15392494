// The `teacher_gateway:` config section: defaults, a full file, and every class of bad value with its
// file, line and key path.

#include "services/teacher_gateway/gateway_config.h"

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace distill::teacher {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<TeacherGatewayConfig> Read(const std::string& yaml) {
  auto doc = config::Document::Parse(yaml, "gw.yaml");
  if (!doc.ok()) return doc.status();
  TeacherGatewayConfig config = DefaultTeacherGatewayConfig();
  config::Node root = doc->Root();
  ReadTeacherGatewayConfig(root, &config);
  if (absl::Status s = doc->Finish(); !s.ok()) return s;
  return config;
}

TEST(GatewayConfigTest, OpenAiEnvironmentVariablesAddAnOpenAiBackend) {
  setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1", 1);
  unsetenv("OPENAI_API_KEY");
  setenv("OPENAI_MODEL", "student", 1);
  TeacherGatewayConfig config = DefaultTeacherGatewayConfig();
  unsetenv("OPENAI_BASE_URL");
  unsetenv("OPENAI_MODEL");
  ASSERT_EQ(config.backends.size(), 2u);
  EXPECT_EQ(config.backends[1].name, "openai");
  EXPECT_EQ(config.backends[1].kind, v1::BACKEND_KIND_OPENAI);
  EXPECT_EQ(config.backends[1].base_url, "http://127.0.0.1:8000/v1");
  EXPECT_EQ(config.backends[1].model, "student");
  EXPECT_EQ(config.backends[1].api_key_env, "");  // a local server without a key

  setenv("OPENAI_API_KEY", "sk-test", 1);
  config = DefaultTeacherGatewayConfig();
  unsetenv("OPENAI_API_KEY");
  ASSERT_EQ(config.backends.size(), 2u);
  EXPECT_EQ(config.backends[1].base_url, "https://api.openai.com/v1");
  EXPECT_EQ(config.backends[1].api_key_env, "OPENAI_API_KEY");  // the key itself is read when used
  EXPECT_EQ(config.tasks.count("svamp"), 1u);
}

std::string Error(const std::string& yaml) {
  auto config = Read(yaml);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
  return std::string(config.status().message());
}

TEST(GatewayConfigTest, DefaultsNeedNoNetwork) {
  unsetenv("OPENAI_BASE_URL");
  unsetenv("OPENAI_API_KEY");
  auto config = Read("");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->backends.size(), 1u);
  EXPECT_EQ(config->backends[0].name, "synthetic");
  EXPECT_EQ(config->backends[0].kind, v1::BACKEND_KIND_SYNTHETIC);
  EXPECT_EQ(config->tasks.count("arith"), 1u);
}

TEST(GatewayConfigTest, ReadsAFullBackend) {
  auto config = Read(R"(teacher_gateway:
  cache_path: /tmp/c.sqlite
  backends:
    - name: openai
      kind: openai
      base_url: https://api.openai.com/v1
      endpoint: completions
      api_key_env: OPENAI_API_KEY
      model: gpt-4o-mini
      max_concurrency: 32
      requests_per_minute: 500
      timeout: 30s
      prices:
        gpt-4o-mini: {prompt: 0.15, completion: 0.6}
      retry: {initial: 100ms, max: 10s, max_attempts: 4}
  tasks:
    svamp:
      exemplars:
        - {question: "Q1", rationale: "R1", answer: "1"}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const BackendConfig& b = config->backends[0];
  EXPECT_EQ(b.endpoint, v1::OPENAI_ENDPOINT_COMPLETIONS);
  EXPECT_EQ(b.max_concurrency, 32);
  EXPECT_EQ(b.timeout, absl::Seconds(30));
  EXPECT_DOUBLE_EQ(b.prices.at("gpt-4o-mini").completion, 0.6);
  EXPECT_EQ(b.retry.max_attempts, 4);
  ASSERT_EQ(config->tasks.at("svamp").exemplars.size(), 1u);
}

TEST(GatewayConfigTest, BadValuesNameFileLineAndKey) {
  EXPECT_THAT(Error("teacher_gateway:\n  backends:\n    - name: x\n      kind: gpt\n"),
              HasSubstr("gw.yaml:4: teacher_gateway.backends[0].kind: expected one of: openai, synthetic"));
  EXPECT_THAT(Error("teacher_gateway:\n  backends:\n    - name: x\n      kind: openai\n"),
              HasSubstr("teacher_gateway.backends[0].base_url: is required for kind openai"));
  EXPECT_THAT(
      Error("teacher_gateway:\n  backends:\n    - {name: x, kind: openai, base_url: ftp://x, model: m}\n"),
      HasSubstr("base_url: must start with http:// or https://"));
  EXPECT_THAT(Error("teacher_gateway:\n  backends:\n    - {name: x, max_concurrency: 0}\n"),
              HasSubstr("teacher_gateway.backends[0].max_concurrency: must be >= 1, got 0"));
  EXPECT_THAT(Error("teacher_gateway:\n  backends:\n    - {name: x}\n    - {name: x}\n"),
              HasSubstr("gw.yaml:4: teacher_gateway.backends[1].name: duplicate backend name \"x\""));
  EXPECT_THAT(Error("teacher_gateway:\n  backends:\n    - {name: x, error_rate: 2}\n"),
              HasSubstr("error_rate: must be in [0, 1], got 2"));
  EXPECT_THAT(Error("teacher_gateway:\n  backends:\n    - {name: x, latency: -5ms}\n"),
              HasSubstr("teacher_gateway.backends[0].latency: must be >= 0"));
  EXPECT_THAT(Error("teacher_gateway:\n  backends:\n    - {name: x, prices: {m: {prompt: -1}}}\n"),
              HasSubstr("teacher_gateway.backends[0].prices.m.prompt: must be >= 0"));
  EXPECT_THAT(Error("teacher_gateway:\n  backends:\n    - {name: x, retry: {max_attempts: 0}}\n"),
              HasSubstr("teacher_gateway.backends[0].retry.max_attempts: must be >= 1, got 0"));
  EXPECT_THAT(
      Error("teacher_gateway:\n  backends:\n    - {name: x, temprature: 0.5}\n"),
      HasSubstr("teacher_gateway.backends[0].temprature: unknown key (did you mean \"temperature\"?)"));
  EXPECT_THAT(Error("teacher_gateway:\n  backends: []\n"), HasSubstr("must list at least one backend"));
  EXPECT_THAT(Error("teacher_gateway:\n  tasks:\n    svamp:\n      exemplars:\n        - {question: q}\n"),
              HasSubstr("teacher_gateway.tasks.svamp.exemplars[0].rationale: is required"));
  EXPECT_THAT(Error("teacher_gateway:\n  backends:\n    - {name: x, api_key_env: A, api_key_file: f}\n"),
              HasSubstr("api_key_file: set api_key_env or api_key_file, not both"));
}

}  // namespace
}  // namespace distill::teacher
