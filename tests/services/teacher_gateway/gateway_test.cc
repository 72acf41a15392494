// The teacher gateway's core against a faithful fake of an OpenAI-compatible API on loopback (real
// HTTP, real PaLM-540B completions for SVAMP, injected faults) and against the synthetic teacher.

#include "services/teacher_gateway/gateway.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/http/curl_client.h"
#include "common/metrics/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/teacher_gateway/cache/response_cache.h"
#include "tests/fakes/openai_server.h"
#include "tests/support/paths.h"

namespace distill::teacher {
namespace {

using fakes::FaultOptions;
using ::testing::HasSubstr;

std::string DataDir() { return ::distill::testing::SourceDir() + "/../shared/data"; }

// Collects everything a stream emits.
class Collector {
 public:
  Gateway::Emit Emit() {
    return [this](v1::GenerateRationalesResponse r) {
      absl::MutexLock lock(&mu_);
      responses_.push_back(std::move(r));
    };
  }
  std::vector<v1::GenerateRationalesResponse> responses() {
    absl::MutexLock lock(&mu_);
    return responses_;
  }
  std::vector<v1::TeacherSample> samples() {
    std::vector<v1::TeacherSample> out;
    for (const auto& r : responses()) {
      if (r.has_sample()) out.push_back(r.sample());
    }
    return out;
  }
  std::vector<v1::ExampleError> errors() {
    std::vector<v1::ExampleError> out;
    for (const auto& r : responses()) {
      if (r.has_error()) out.push_back(r.error());
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::GenerateRationalesResponse> responses_;
};

BackendConfig FakeBackend(const std::string& base_url) {
  BackendConfig b;
  b.name = "fake";
  b.kind = v1::BACKEND_KIND_OPENAI;
  b.base_url = base_url;
  b.endpoint = v1::OPENAI_ENDPOINT_COMPLETIONS;
  b.model = "palm-540b";
  b.max_concurrency = 64;
  b.timeout = absl::Seconds(2);
  b.retry = RetryConfig{
      .initial = absl::Milliseconds(1), .multiplier = 2, .max = absl::Milliseconds(5), .max_attempts = 6};
  return b;
}

v1::TeacherStreamConfig StreamConfig(const std::string& backend, int n) {
  v1::TeacherStreamConfig c;
  c.mutable_task()->set_type(v1::TASK_TYPE_NUMERIC);
  c.mutable_options()->set_backend(backend);
  c.mutable_options()->set_samples_per_example(n);
  return c;
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto client = http::NewCurlClient(http::CurlClientOptions{});
    ASSERT_TRUE(client.ok()) << client.status();
    http_ = std::move(*client);
  }

  void StartFake(FaultOptions faults = {}) {
    auto corpus = fakes::LoadSvampCorpus(DataDir());
    if (!corpus.ok()) GTEST_SKIP() << "no SVAMP data at " << DataDir() << ": " << corpus.status();
    corpus_ = *corpus;
    fakes::FakeOpenAiOptions options;
    options.corpus = corpus_;
    options.worker_threads = 96;
    options.keep_alive_timeout = absl::Seconds(1);  // the minimum: Stop() waits on idle keep-alive clients
    options.faults = faults;
    auto fake = fakes::FakeOpenAiServer::Start(options);
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
  }

  std::unique_ptr<Gateway> MakeGateway(const TeacherGatewayConfig& config, ResponseCache* cache) {
    auto gateway =
        Gateway::Create(config, GatewayDeps{.registry = &registry_, .cache = cache, .http = http_.get()});
    EXPECT_TRUE(gateway.ok()) << gateway.status();
    return gateway.ok() ? std::move(*gateway) : nullptr;
  }

  TeacherGatewayConfig FakeConfig() {
    TeacherGatewayConfig config = DefaultTeacherGatewayConfig();
    config.backends.push_back(FakeBackend(fake_->base_url()));
    return config;
  }

  std::unique_ptr<ResponseCache> MemoryCache() {
    auto cache = ResponseCache::Open(":memory:");
    EXPECT_TRUE(cache.ok()) << cache.status();
    return std::move(*cache);
  }

  v1::Example Question(size_t i) {
    v1::Example ex;
    ex.set_id(std::to_string(i));
    ex.set_input(corpus_[i].question);
    ex.set_gold(corpus_[i].gold_label);
    return ex;
  }

  metrics::Registry registry_;
  std::unique_ptr<http::Client> http_;
  std::vector<fakes::RecordedAnswer> corpus_;
  std::unique_ptr<fakes::FakeOpenAiServer> fake_;
};

TEST_F(GatewayTest, EverySvampQuestionComesBackOnceDespiteFaultsAndTheRerunIsFree) {
  FaultOptions faults;
  faults.rate_limit_every = 7;
  faults.retry_after = absl::ZeroDuration();
  faults.server_error_every = 11;
  faults.truncate_every = 13;
  faults.malformed_every = 17;
  faults.stall_every = 97;
  faults.stall_duration = absl::Seconds(4);
  faults.faults_first_attempt_only = true;
  StartFake(faults);
  if (fake_ == nullptr) return;
  ASSERT_EQ(corpus_.size(), 1000u);
  const std::string cache_path = ::testing::TempDir() + "gateway_svamp_cache.sqlite";
  std::remove(cache_path.c_str());
  constexpr int kSamples = 2;

  {
    auto cache = ResponseCache::Open(cache_path);
    ASSERT_TRUE(cache.ok()) << cache.status();
    auto gateway = MakeGateway(FakeConfig(), cache->get());
    Collector collector;
    auto stream = gateway->OpenStream(StreamConfig("fake", kSamples), collector.Emit());
    ASSERT_TRUE(stream.ok()) << stream.status();
    for (size_t i = 0; i < corpus_.size(); ++i) (*stream)->Submit(Question(i));
    v1::TeacherStreamSummary summary = (*stream)->Finish();

    EXPECT_EQ(summary.examples_received(), 1000);
    EXPECT_EQ(summary.examples_completed(), 1000);
    EXPECT_EQ(summary.examples_failed(), 0);
    EXPECT_EQ(summary.samples_returned(), 1000 * kSamples);
    EXPECT_TRUE(collector.errors().empty()) << collector.errors()[0].DebugString();
    // None lost, none duplicated, each with the right recorded completion.
    std::set<std::pair<std::string, int>> seen;
    for (const v1::TeacherSample& s : collector.samples()) {
      EXPECT_TRUE(seen.insert({s.example_id(), s.sample_index()}).second) << "duplicate " << s.example_id();
      EXPECT_FALSE(s.from_cache());
      if (s.sample_index() == 0) {
        EXPECT_EQ(s.completion(), corpus_[std::stoul(s.example_id())].completions[0]) << s.example_id();
      }
    }
    EXPECT_EQ(seen.size(), 1000u * kSamples);
    // Every injected fault cost exactly one retry, and the summary counts them.
    const fakes::FakeOpenAiStats stats = fake_->stats();
    int64_t injected = 0;
    for (const auto& [kind, count] : stats.faults_by_kind) injected += count;
    EXPECT_GT(injected, 100);
    EXPECT_GT(stats.faults_by_kind.at(fakes::FaultKind::kStall), 0);
    EXPECT_EQ(summary.retries(), injected);
    EXPECT_EQ(summary.requests_sent(), stats.total_requests);
    EXPECT_EQ(summary.requests_sent(), 1000 + injected);
    EXPECT_GT(summary.usage().prompt_tokens(), 0);
    EXPECT_GT(summary.usage().completion_tokens(), 0);
    // The last response is the summary.
    EXPECT_TRUE(collector.responses().back().has_summary());
    ASSERT_TRUE((*cache)->Flush().ok());
  }

  // A second run of the same stream, by a new gateway over the same cache file, sends nothing.
  fake_->Reset();
  auto cache = ResponseCache::Open(cache_path);
  ASSERT_TRUE(cache.ok()) << cache.status();
  auto gateway = MakeGateway(FakeConfig(), cache->get());
  Collector collector;
  auto stream = gateway->OpenStream(StreamConfig("fake", kSamples), collector.Emit());
  ASSERT_TRUE(stream.ok());
  for (size_t i = 0; i < corpus_.size(); ++i) (*stream)->Submit(Question(i));
  v1::TeacherStreamSummary summary = (*stream)->Finish();
  EXPECT_EQ(summary.examples_completed(), 1000);
  EXPECT_EQ(summary.samples_from_cache(), 1000 * kSamples);
  EXPECT_EQ(summary.requests_sent(), 0);
  EXPECT_EQ(fake_->stats().total_requests, 0);
  for (const v1::TeacherSample& s : collector.samples()) {
    EXPECT_TRUE(s.from_cache());
    if (s.sample_index() == 0) {
      EXPECT_EQ(s.completion(), corpus_[std::stoul(s.example_id())].completions[0]);
    }
  }
  EXPECT_THAT(registry_.Serialize(), HasSubstr("distill_teacher_gateway_cache_hit_ratio"));
}

TEST_F(GatewayTest, ExhaustedRetriesEndEachExampleWithOneError) {
  StartFake();
  if (fake_ == nullptr) return;
  fake_->FailAll(503);
  auto cache = MemoryCache();
  TeacherGatewayConfig config = FakeConfig();
  config.backends.back().retry.max_attempts = 3;
  auto gateway = MakeGateway(config, cache.get());
  Collector collector;
  auto stream = gateway->OpenStream(StreamConfig("fake", 3), collector.Emit());
  ASSERT_TRUE(stream.ok());
  for (size_t i = 0; i < 20; ++i) (*stream)->Submit(Question(i));
  v1::TeacherStreamSummary summary = (*stream)->Finish();
  EXPECT_EQ(summary.examples_failed(), 20);
  EXPECT_EQ(summary.examples_completed(), 0);
  ASSERT_EQ(collector.errors().size(), 20u);
  std::set<std::string> ids;
  for (const v1::ExampleError& e : collector.errors()) {
    EXPECT_TRUE(ids.insert(e.example_id()).second);
    EXPECT_EQ(e.reason(), v1::EXAMPLE_ERROR_REASON_BACKEND_ERROR);
    EXPECT_EQ(e.code(), 14);  // UNAVAILABLE
    EXPECT_EQ(e.attempts(), 3);
    EXPECT_THAT(e.message(), HasSubstr("HTTP 503"));
  }
  EXPECT_EQ(summary.retries(), 20 * 2);
}

TEST_F(GatewayTest, PersistentRateLimitingIsReportedAsSuch) {
  FaultOptions faults;
  faults.rate_limit_every = 1;
  faults.retry_after = absl::ZeroDuration();
  StartFake(faults);
  if (fake_ == nullptr) return;
  auto cache = MemoryCache();
  TeacherGatewayConfig config = FakeConfig();
  config.backends.back().retry.max_attempts = 2;
  auto gateway = MakeGateway(config, cache.get());
  Collector collector;
  auto stream = gateway->OpenStream(StreamConfig("fake", 1), collector.Emit());
  ASSERT_TRUE(stream.ok());
  (*stream)->Submit(Question(0));
  (*stream)->Finish();
  ASSERT_EQ(collector.errors().size(), 1u);
  EXPECT_EQ(collector.errors()[0].reason(), v1::EXAMPLE_ERROR_REASON_RATE_LIMITED);
  EXPECT_EQ(collector.errors()[0].code(), 14);  // UNAVAILABLE: the reason's canonical code
}

TEST_F(GatewayTest, StopsSendingAtTheBudgetAndAccountsForEveryExample) {
  StartFake();
  if (fake_ == nullptr) return;
  auto cache = MemoryCache();
  TeacherGatewayConfig config = FakeConfig();
  config.backends.back().max_concurrency = 1;
  config.backends.back().prices["palm-540b"] = ModelPriceConfig{.prompt = 1000, .completion = 1000};
  auto gateway = MakeGateway(config, cache.get());
  v1::TeacherStreamConfig stream_config = StreamConfig("fake", 1);
  stream_config.mutable_options()->mutable_sampling()->set_max_new_tokens(128);
  stream_config.mutable_options()->set_budget_usd(2.0);
  Collector collector;
  auto stream = gateway->OpenStream(stream_config, collector.Emit());
  ASSERT_TRUE(stream.ok());
  for (size_t i = 0; i < 40; ++i) (*stream)->Submit(Question(i));
  v1::TeacherStreamSummary summary = (*stream)->Finish();
  EXPECT_TRUE(summary.budget_exhausted());
  EXPECT_GT(summary.examples_completed(), 0);
  EXPECT_GT(summary.examples_failed(), 0);
  EXPECT_EQ(summary.examples_completed() + summary.examples_failed(), 40);
  EXPECT_LE(summary.usage().cost_usd(), 2.0);
  for (const v1::ExampleError& e : collector.errors()) {
    EXPECT_EQ(e.reason(), v1::EXAMPLE_ERROR_REASON_BUDGET_EXCEEDED);
    EXPECT_EQ(e.code(), 8);
  }
  EXPECT_EQ(fake_->stats().total_requests, summary.examples_completed());
}

TEST_F(GatewayTest, CancelEndsEveryOutstandingExample) {
  FaultOptions faults;
  faults.latency = absl::Milliseconds(300);
  StartFake(faults);
  if (fake_ == nullptr) return;
  auto cache = MemoryCache();
  auto gateway = MakeGateway(FakeConfig(), cache.get());
  Collector collector;
  auto stream = gateway->OpenStream(StreamConfig("fake", 1), collector.Emit());
  ASSERT_TRUE(stream.ok());
  for (size_t i = 0; i < 10; ++i) (*stream)->Submit(Question(i));
  (*stream)->Cancel();
  v1::TeacherStreamSummary summary = (*stream)->Finish();
  EXPECT_EQ(summary.examples_completed() + summary.examples_failed(), 10);
  EXPECT_GT(summary.examples_failed(), 0);
  for (const v1::ExampleError& e : collector.errors())
    EXPECT_EQ(e.reason(), v1::EXAMPLE_ERROR_REASON_CANCELLED);
}

TEST_F(GatewayTest, BadExamplesGetAnErrorNamingTheFieldAndTheStreamGoesOn) {
  auto cache = MemoryCache();
  TeacherGatewayConfig config = DefaultTeacherGatewayConfig();
  config.backends[0].max_prompt_tokens = 200;
  auto gateway = MakeGateway(config, cache.get());
  Collector collector;
  auto stream = gateway->OpenStream(StreamConfig("synthetic", 1), collector.Emit());
  ASSERT_TRUE(stream.ok());
  v1::Example empty;
  empty.set_id("empty");
  empty.set_input("   ");
  (*stream)->Submit(empty);
  v1::Example good;
  good.set_id("good");
  good.set_input("Sam has 3 apples. He buys 4 more apples. How many apples does Sam have now?");
  (*stream)->Submit(good);
  (*stream)->Submit(good);  // duplicate id
  v1::Example long_one;
  long_one.set_id("long");
  long_one.set_input(std::string(2000, 'x'));
  (*stream)->Submit(long_one);
  v1::Example with_choices = good;
  with_choices.set_id("choices");
  with_choices.add_choices()->set_text("7");
  (*stream)->Submit(with_choices);
  v1::TeacherStreamSummary summary = (*stream)->Finish();

  EXPECT_EQ(summary.examples_received(), 5);
  EXPECT_EQ(summary.examples_completed(), 1);
  EXPECT_EQ(summary.examples_failed(), 4);
  std::map<std::string, v1::ExampleError> errors;
  for (const auto& e : collector.errors()) errors[e.example_id() + "/" + e.field()] = e;
  ASSERT_EQ(errors.count("empty/input"), 1u);
  EXPECT_EQ(errors["empty/input"].reason(), v1::EXAMPLE_ERROR_REASON_INVALID_EXAMPLE);
  EXPECT_EQ(errors["empty/input"].code(), 3);
  EXPECT_THAT(errors["empty/input"].message(), HasSubstr("input: must not be empty"));
  ASSERT_EQ(errors.count("good/id"), 1u);
  EXPECT_THAT(errors["good/id"].message(), HasSubstr("duplicate id"));
  ASSERT_EQ(errors.count("long/input"), 1u);
  EXPECT_EQ(errors["long/input"].reason(), v1::EXAMPLE_ERROR_REASON_PROMPT_TOO_LONG);
  EXPECT_EQ(errors["long/input"].code(), 3);
  ASSERT_EQ(errors.count("choices/choices"), 1u);
  ASSERT_EQ(collector.samples().size(), 1u);
  EXPECT_EQ(collector.samples()[0].answer(), "7");
}

TEST_F(GatewayTest, BadStreamConfigsAreRejectedNamingTheField) {
  auto cache = MemoryCache();
  auto gateway = MakeGateway(DefaultTeacherGatewayConfig(), cache.get());
  auto expect_bad = [&](v1::TeacherStreamConfig c, const std::string& fragment) {
    auto stream = gateway->OpenStream(c, [](v1::GenerateRationalesResponse) {});
    EXPECT_EQ(stream.status().code(), absl::StatusCode::kInvalidArgument) << fragment;
    EXPECT_THAT(std::string(stream.status().message()), HasSubstr(fragment));
  };
  expect_bad(StreamConfig("nope", 1),
             "config.options.backend: unknown backend \"nope\"; configured: synthetic");
  expect_bad(StreamConfig("synthetic", 0), "config.options.samples_per_example: must be in [1, 64], got 0");
  v1::TeacherStreamConfig hot = StreamConfig("synthetic", 1);
  hot.mutable_options()->mutable_sampling()->set_temperature(3);
  expect_bad(hot, "config.options.sampling.temperature");
  v1::TeacherStreamConfig logprobs = StreamConfig("synthetic", 1);
  logprobs.mutable_options()->set_logprobs(true);
  expect_bad(logprobs, "config.options.logprobs");
  v1::TeacherStreamConfig no_type = StreamConfig("synthetic", 1);
  no_type.mutable_task()->set_type(v1::TASK_TYPE_UNSPECIFIED);
  expect_bad(no_type, "config.task.type: is required");
  v1::TeacherStreamConfig template_name = StreamConfig("synthetic", 1);
  template_name.mutable_task()->set_name("anli");
  expect_bad(template_name, "config.task.name: no prompt template \"anli\"");
}

TEST_F(GatewayTest, SyntheticTeacherZeroShotAnswersInTwoStages) {
  auto cache = MemoryCache();
  TeacherGatewayConfig config = DefaultTeacherGatewayConfig();
  config.backends[0].error_rate = 0;
  auto gateway = MakeGateway(config, cache.get());
  v1::TeacherStreamConfig c = StreamConfig("synthetic", 3);
  c.mutable_options()->set_prompt_strategy(v1::PROMPT_STRATEGY_ZERO_SHOT_COT);
  Collector collector;
  auto stream = gateway->OpenStream(c, collector.Emit());
  ASSERT_TRUE(stream.ok());
  v1::Example ex;
  ex.set_id("q");
  ex.set_input("Sam has 3 apples. He buys 4 more apples. How many apples does Sam have now?");
  (*stream)->Submit(ex);
  v1::TeacherStreamSummary summary = (*stream)->Finish();
  EXPECT_EQ(summary.examples_completed(), 1);
  EXPECT_EQ(summary.requests_sent(), 4);  // one reasoning request with n = 3, then 3 answer extractions
  ASSERT_EQ(collector.samples().size(), 3u);
  for (const auto& s : collector.samples()) {
    EXPECT_EQ(s.prompt_strategy(), v1::PROMPT_STRATEGY_ZERO_SHOT_COT);
    EXPECT_FALSE(s.answer_completion().empty());
    EXPECT_EQ(s.answer(), "7") << s.answer_completion();
  }
}

TEST_F(GatewayTest, EstimateCountsCachedSamplesAsFree) {
  StartFake();
  if (fake_ == nullptr) return;
  auto cache = MemoryCache();
  TeacherGatewayConfig config = FakeConfig();
  config.backends.back().prices["palm-540b"] = ModelPriceConfig{.prompt = 1, .completion = 2};
  auto gateway = MakeGateway(config, cache.get());
  Collector collector;
  auto stream = gateway->OpenStream(StreamConfig("fake", 1), collector.Emit());
  ASSERT_TRUE(stream.ok());
  for (size_t i = 0; i < 5; ++i) (*stream)->Submit(Question(i));
  (*stream)->Finish();
  fake_->Reset();

  auto estimator = gateway->OpenEstimate(StreamConfig("fake", 1));
  ASSERT_TRUE(estimator.ok()) << estimator.status();
  for (size_t i = 0; i < 10; ++i) (*estimator)->Add(Question(i));
  v1::EstimateCostResponse estimate = (*estimator)->Finish();
  EXPECT_EQ(estimate.examples(), 10);
  EXPECT_EQ(estimate.samples_cached(), 5);
  EXPECT_EQ(estimate.samples_to_send(), 5);
  EXPECT_GT(estimate.expected().cost_usd(), 0);
  EXPECT_GE(estimate.maximum().cost_usd(), estimate.expected().cost_usd());
  EXPECT_EQ(fake_->stats().total_requests, 0);
}

TEST_F(GatewayTest, ListsBackendsWithoutSecrets) {
  StartFake();
  if (fake_ == nullptr) return;
  ::setenv("DISTILL_TEST_OPENAI_KEY", "sk-very-secret", 1);
  TeacherGatewayConfig config = FakeConfig();
  config.backends.back().api_key_env = "DISTILL_TEST_OPENAI_KEY";
  auto cache = MemoryCache();
  auto gateway = MakeGateway(config, cache.get());
  v1::ListBackendsResponse list = gateway->ListBackends();
  ASSERT_EQ(list.backends_size(), 2);
  EXPECT_EQ(list.backends(0).name(), "fake");
  EXPECT_EQ(list.backends(0).kind(), v1::BACKEND_KIND_OPENAI);
  EXPECT_EQ(list.backends(1).name(), "synthetic");
  EXPECT_THAT(list.DebugString(), ::testing::Not(HasSubstr("sk-very-secret")));

  config.backends.back().api_key_env = "DISTILL_TEST_UNSET_KEY";
  auto bad =
      Gateway::Create(config, GatewayDeps{.registry = &registry_, .cache = cache.get(), .http = http_.get()});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(bad.status().message()),
      HasSubstr("teacher_gateway.backends[1].api_key_env: environment variable DISTILL_TEST_UNSET_KEY"));
}

}  // namespace
}  // namespace distill::teacher
