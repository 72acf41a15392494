// Feeds Registry::Serialize() output to Prometheus' own parser and linter (`promtool check metrics`),
// and shows on hand-written text that the check does reject bad exposition, so passing means
// something.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/metrics/builder.h"
#include "common/metrics/registry.h"
#include "gtest/gtest.h"
#include "tests/support/paths.h"

namespace distill::metrics {
namespace {

struct PromtoolResult {
  int exit_code = -1;
  // stdout and stderr together: promtool reports lint problems on stderr.
  std::string output;
};

// Runs `promtool check metrics` with `text` on stdin.
PromtoolResult CheckMetrics(const std::string& text) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string path =
      absl::StrCat(::testing::TempDir(), "promtool_", test->name(), "_", getpid(), ".prom");
  {
    std::ofstream file(path, std::ios::binary);
    file << text;
  }
  PromtoolResult result;
  const std::string command =
      absl::StrCat("'", ::distill::testing::Promtool(), "' check metrics < '", path, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  std::remove(path.c_str());
  return result;
}

// A registry using every feature: all three types, constant and variable labels, escaping, special
// values, default and custom buckets, and empty families.
void FillRichRegistry(Registry& registry) {
  Family<Counter>& requests = BuildCounter()
                                  .Name("distill_gateway_requests_total")
                                  .Help("RPCs handled, by method and status code.")
                                  .Labels({{"service", "gateway"}})
                                  .Register(registry);
  requests.Add({{"method", "Generate"}, {"code", "OK"}}).Increment(41);
  requests.Add({{"method", "Generate"}, {"code", "RESOURCE_EXHAUSTED"}}).Increment(0.5);
  requests.Add({{"method", "weird \"name\" with \\ and\nnewline"}, {"code", "OK"}}).Increment();

  BuildCounter().Name("distill_gateway_dropped_total").Help("Never incremented.").Register(registry);

  Family<Gauge>& queue = BuildGauge()
                             .Name("distill_gateway_queue_depth")
                             .Help("Requests waiting.\nSecond line with a \\ backslash.")
                             .Register(registry);
  queue.Add({{"queue", "a"}}).Set(12);
  queue.Add({{"queue", "b"}}).Set(-3.25);
  queue.Add({{"queue", "nan"}}).Set(std::numeric_limits<double>::quiet_NaN());
  queue.Add({{"queue", "pinf"}}).Set(std::numeric_limits<double>::infinity());
  queue.Add({{"queue", "ninf"}}).Set(-std::numeric_limits<double>::infinity());
  queue.Add({{"queue", "tiny"}}).Set(1.5e-300);
  queue.Add({{"queue", "huge"}}).Set(6.02e23);
  BuildGauge().Name("distill_gateway_up").Help("1 when serving.").Register(registry).Add({}).Set(1);
  BuildGauge()
      .Name("distill_gateway_last_reload_timestamp_seconds")
      .Help("Last config reload.")
      .Register(registry)
      .Add({})
      .SetToCurrentTime();

  Family<Histogram>& latency = BuildHistogram()
                                   .Name("distill_gateway_request_duration_seconds")
                                   .Help("Time to answer an RPC, in seconds.")
                                   .Labels({{"service", "gateway"}})
                                   .Register(registry);
  Histogram& generate = latency.Add({{"method", "Generate"}}, DefaultLatencyBuckets());
  for (const double seconds : {0.00005, 0.0001, 0.003, 0.2, 1.0, 7.5, 30.0}) generate.Observe(seconds);
  latency.Add({{"method", "Health"}}, DefaultLatencyBuckets());
  BuildHistogram()
      .Name("distill_gateway_response_size_bytes")
      .Help("Response sizes.")
      .Register(registry)
      .Add({}, ExponentialBuckets(64, 4, 6))
      .ObserveMultiple({1, 2, 3, 0, 0, 0, 1}, 1e6);
  BuildHistogram()
      .Name("distill_gateway_score_ratio")
      .Help("Linear buckets with fractional bounds.")
      .Register(registry)
      .Add({}, LinearBuckets(0.1, 0.1, 9))
      .Observe(0.35);
  BuildHistogram().Name("distill_gateway_unused_seconds").Help("No children.").Register(registry);
}

TEST(PromtoolTest, PromtoolIsAvailable) {
  ASSERT_NE(::distill::testing::Promtool(), "");
  EXPECT_EQ(access(::distill::testing::Promtool().c_str(), X_OK), 0) << ::distill::testing::Promtool();
}

TEST(PromtoolTest, AcceptsRichRegistry) {
  Registry registry;
  FillRichRegistry(registry);
  const std::string text = registry.Serialize();
  const PromtoolResult result = CheckMetrics(text);
  EXPECT_EQ(result.exit_code, 0) << result.output << "\n--- input ---\n" << text;
  EXPECT_EQ(result.output, "") << "\n--- input ---\n" << text;
}

TEST(PromtoolTest, AcceptsEmptyRegistry) {
  const PromtoolResult result = CheckMetrics(Registry().Serialize());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "");
}

// The negative checks: if these pass, promtool really parses and lints its input.

TEST(PromtoolTest, FlagsCounterWithoutTotalSuffix) {
  const PromtoolResult result = CheckMetrics(
      "# HELP distill_gateway_requests RPCs handled.\n"
      "# TYPE distill_gateway_requests counter\n"
      "distill_gateway_requests 1\n");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("_total"), std::string::npos) << result.output;
}

TEST(PromtoolTest, RejectsDuplicatedFamilies) {
  Registry registry;
  FillRichRegistry(registry);
  const std::string text = registry.Serialize();
  const PromtoolResult result = CheckMetrics(text + text);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("second HELP line"), std::string::npos) << result.output;
}

TEST(PromtoolTest, RejectsUnescapedLabelValue) {
  Registry registry;
  FillRichRegistry(registry);
  // Undo the escaping of a newline inside a label value.
  const std::string broken = absl::StrReplaceAll(registry.Serialize(), {{"\\n", "\n"}});
  const PromtoolResult result = CheckMetrics(broken);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("parsing error"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace distill::metrics
