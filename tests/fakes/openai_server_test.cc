#include "tests/fakes/openai_server.h"

#include <atomic>
#include <cmath>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/support/paths.h"

namespace distill::fakes {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

const std::string kDataDir = ::distill::testing::SourceDir() + "/../shared/data";

// A small corpus that needs no data files: question i is answered "... The answer is (i)."
std::vector<RecordedAnswer> SyntheticCorpus(int size) {
  std::vector<RecordedAnswer> corpus;
  for (int i = 0; i < size; ++i) {
    corpus.push_back({absl::StrCat("Tom has ", i, " apples.\nHow many apples does Tom have?"),
                      {absl::StrCat("Tom has ", i, " apples. The answer is (", i, ").\n\nQ: Next question")},
                      absl::StrCat(i)});
  }
  return corpus;
}

// A few-shot CoT prompt in the paper's style whose examples are themselves corpus questions, ending
// with `question`.
std::string FewShotPrompt(const std::vector<RecordedAnswer>& corpus, const std::string& question) {
  std::string prompt;
  for (int i = 0; i < 2; ++i) {
    absl::StrAppend(&prompt, "Q: ", corpus[i].question, "\nA: Some reasoning. The answer is 1.\n\n");
  }
  absl::StrAppend(&prompt, "Q: ", question, "\nA:");
  return prompt;
}

std::string CompletionBody(const std::string& prompt, const std::string& extra = "") {
  Json body = Json::parse(extra.empty() ? "{}" : extra);
  body["model"] = "fake-teacher";
  body["prompt"] = prompt;
  return body.dump();
}

class FakeOpenAiServerTest : public ::testing::Test {
 protected:
  void StartServer(FakeOpenAiOptions options) {
    absl::StatusOr<std::unique_ptr<FakeOpenAiServer>> server = FakeOpenAiServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(5, 0);
  }

  void StartSynthetic(FaultOptions faults = {}, int size = 20) {
    FakeOpenAiOptions options;
    options.corpus = SyntheticCorpus(size);
    options.faults = faults;
    corpus_ = options.corpus;
    StartServer(std::move(options));
  }

  // Posts a completions request for corpus question `i`.
  httplib::Result Ask(int i, const std::string& extra = "") {
    return client_->Post("/v1/completions", CompletionBody(FewShotPrompt(corpus_, corpus_[i].question), extra),
                         "application/json");
  }

  void TearDown() override {
    // Clients go first: the server waits for connections they leave open.
    client_.reset();
    server_.reset();
  }

  std::vector<RecordedAnswer> corpus_;
  std::unique_ptr<FakeOpenAiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

// Tests on the real SVAMP corpus; skipped where the shared data is absent.
class SvampTest : public FakeOpenAiServerTest {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kDataDir + "/svamp")) GTEST_SKIP() << "no shared data at " << kDataDir;
    absl::StatusOr<std::vector<RecordedAnswer>> corpus = LoadSvampCorpus(kDataDir);
    ASSERT_TRUE(corpus.ok()) << corpus.status();
    corpus_ = *corpus;
    FakeOpenAiOptions options;
    options.corpus = corpus_;
    options.api_key = "sk-test-key";
    StartServer(std::move(options));
    client_->set_bearer_token_auth("sk-test-key");
  }
};

TEST_F(SvampTest, CorpusHasAllThousandQuestionsWithCompletions) {
  ASSERT_EQ(corpus_.size(), 1000u);
  std::set<std::string> distinct;
  for (const RecordedAnswer& answer : corpus_) {
    EXPECT_FALSE(answer.question.empty());
    ASSERT_EQ(answer.completions.size(), 1u);
    EXPECT_FALSE(answer.completions[0].empty());
    EXPECT_FALSE(answer.gold_label.empty());
    distinct.insert(NormalizeQuestion(answer.question));
  }
  EXPECT_EQ(distinct.size(), 1000u);
  EXPECT_THAT(corpus_[0].question, StartsWith("Luke scored 84 points"));
  EXPECT_THAT(corpus_[0].completions[0], StartsWith("Luke scored 84 points after 2 rounds."));
  EXPECT_EQ(corpus_[0].gold_label, "( 84.0 / 2.0 )");
}

TEST(LoadSvampCorpusTest, MissingDirectoryIsNotFound) {
  absl::StatusOr<std::vector<RecordedAnswer>> corpus = LoadSvampCorpus("/nonexistent-distill-data");
  EXPECT_EQ(corpus.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(corpus.status().message(), HasSubstr("/nonexistent-distill-data/svamp/svamp_train.json"));
}

TEST_F(SvampTest, CompletionsAnswersFewShotPromptWithRecordedCompletion) {
  // A test question, so the few-shot examples (train questions) are corpus questions too.
  const RecordedAnswer& asked = corpus_[900];
  const std::string prompt = FewShotPrompt(corpus_, asked.question);
  httplib::Result result = client_->Post("/v1/completions", CompletionBody(prompt), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const Json body = Json::parse(result->body);
  EXPECT_THAT(body["id"].get<std::string>(), StartsWith("cmpl-"));
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_TRUE(body["created"].is_number_integer());
  EXPECT_EQ(body["model"], "fake-teacher");
  ASSERT_EQ(body["choices"].size(), 1u);
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["text"], asked.completions[0]);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  const int64_t prompt_tokens = (prompt.size() + 3) / 4;
  const int64_t completion_tokens = (asked.completions[0].size() + 3) / 4;
  EXPECT_EQ(body["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(body["usage"]["completion_tokens"], completion_tokens);
  EXPECT_EQ(body["usage"]["total_tokens"], prompt_tokens + completion_tokens);
  EXPECT_EQ(server_->RequestsForQuestion(asked.question), 1);
  EXPECT_EQ(server_->RequestsForQuestion(corpus_[0].question), 0);
}

TEST_F(SvampTest, ChatAnswersLastUserMessageWithRecordedCompletion) {
  const RecordedAnswer& asked = corpus_[10];
  Json request = {
      {"model", "gpt-4o-mini"},
      {"messages",
       {{{"role", "system"}, {"content", "Answer step by step."}},
        {{"role", "user"}, {"content", absl::StrCat("Q: ", corpus_[0].question)}},
        {{"role", "assistant"}, {"content", "The answer is (84 / 2)."}},
        {{"role", "user"}, {"content", absl::StrCat("Q: ", asked.question, "\nA:")}}}}};
  httplib::Result result = client_->Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const Json body = Json::parse(result->body);
  EXPECT_THAT(body["id"].get<std::string>(), StartsWith("chatcmpl-"));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["model"], "gpt-4o-mini");
  ASSERT_EQ(body["choices"].size(), 1u);
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], asked.completions[0]);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  size_t prompt_bytes = 0;
  for (const Json& message : request["messages"]) prompt_bytes += message["content"].get<std::string>().size();
  EXPECT_EQ(body["usage"]["prompt_tokens"], (prompt_bytes + 3) / 4);
}

TEST_F(SvampTest, ChatMatchesBareQuestionWithoutQMarker) {
  const RecordedAnswer& asked = corpus_[123];
  Json request = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", asked.question}}}}};
  httplib::Result result = client_->Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_EQ(Json::parse(result->body)["choices"][0]["message"]["content"], asked.completions[0]);
}

TEST_F(SvampTest, ThreeSamplesAreDistinctAndStable) {
  const RecordedAnswer& asked = corpus_[42];
  httplib::Result result = client_->Post(
      "/v1/completions", CompletionBody(FewShotPrompt(corpus_, asked.question), R"({"n": 3, "temperature": 0.7})"),
      "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const Json body = Json::parse(result->body);
  ASSERT_EQ(body["choices"].size(), 3u);
  std::set<std::string> texts;
  int64_t completion_tokens = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string text = body["choices"][i]["text"];
    EXPECT_EQ(body["choices"][i]["index"], i);
    EXPECT_EQ(text, *server_->CompletionFor(asked.question, i));
    EXPECT_THAT(text, HasSubstr(asked.completions[0]));
    texts.insert(text);
    completion_tokens += (text.size() + 3) / 4;
  }
  EXPECT_EQ(texts.size(), 3u);
  EXPECT_EQ(body["choices"][0]["text"], asked.completions[0]);
  EXPECT_EQ(body["usage"]["completion_tokens"], completion_tokens);
}

TEST_F(SvampTest, RequiresApiKey) {
  httplib::Client anonymous("127.0.0.1", server_->port());
  const std::string body = CompletionBody(FewShotPrompt(corpus_, corpus_[5].question));
  httplib::Result result = anonymous.Post("/v1/completions", body, "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
  Json error = Json::parse(result->body)["error"];
  EXPECT_THAT(error["message"].get<std::string>(), HasSubstr("didn't provide an API key"));
  EXPECT_EQ(error["type"], "invalid_request_error");

  anonymous.set_bearer_token_auth("sk-wrong");
  result = anonymous.Post("/v1/completions", body, "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
  error = Json::parse(result->body)["error"];
  EXPECT_EQ(error["code"], "invalid_api_key");
  EXPECT_THAT(error["message"].get<std::string>(), ::testing::Not(HasSubstr("sk-wrong")));

  result = anonymous.Get("/v1/models");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
  result = client_->Get("/v1/models");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

TEST_F(SvampTest, UnknownQuestionIs400EvenAfterCorpusExamples) {
  httplib::Result result = client_->Post(
      "/v1/completions",
      CompletionBody(FewShotPrompt(corpus_, "Alice has 3 unicorns. How many unicorns does Alice have?")),
      "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  const Json error = Json::parse(result->body)["error"];
  EXPECT_EQ(error["type"], "invalid_request_error");
  EXPECT_EQ(error["param"], "prompt");
  EXPECT_EQ(error["code"], "question_not_in_corpus");
  EXPECT_THAT(error["message"].get<std::string>(), HasSubstr("Alice has 3 unicorns."));
  EXPECT_EQ(server_->RequestsForQuestion(corpus_[0].question), 0);
}

TEST_F(SvampTest, MaxTokensTruncatesAndStopCuts) {
  const RecordedAnswer& asked = corpus_[0];
  const std::string prompt = FewShotPrompt(corpus_, asked.question);
  httplib::Result result =
      client_->Post("/v1/completions", CompletionBody(prompt, R"({"max_tokens": 10})"), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  Json body = Json::parse(result->body);
  EXPECT_EQ(body["choices"][0]["text"], asked.completions[0].substr(0, 40));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["completion_tokens"], 10);

  // The recorded completion runs on into a new few-shot block; a stop sequence cuts it there.
  const size_t runaway = asked.completions[0].find("\n\nQ:");
  ASSERT_NE(runaway, std::string::npos);
  result = client_->Post("/v1/completions", CompletionBody(prompt, R"({"stop": ["\n\nQ:"], "max_tokens": 1000})"),
                         "application/json");
  ASSERT_TRUE(result);
  body = Json::parse(result->body);
  EXPECT_EQ(body["choices"][0]["text"], asked.completions[0].substr(0, runaway));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
}

TEST_F(SvampTest, CompletionsLogprobs) {
  const RecordedAnswer& asked = corpus_[7];
  httplib::Result result = client_->Post(
      "/v1/completions", CompletionBody(FewShotPrompt(corpus_, asked.question), R"({"logprobs": 2})"),
      "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const Json choice = Json::parse(result->body)["choices"][0];
  const Json& logprobs = choice["logprobs"];
  const size_t count = logprobs["tokens"].size();
  ASSERT_GT(count, 5u);
  ASSERT_EQ(logprobs["token_logprobs"].size(), count);
  ASSERT_EQ(logprobs["top_logprobs"].size(), count);
  ASSERT_EQ(logprobs["text_offset"].size(), count);
  std::string joined;
  for (size_t t = 0; t < count; ++t) {
    const std::string token = logprobs["tokens"][t];
    EXPECT_EQ(logprobs["text_offset"][t], joined.size());
    joined += token;
    const double lp = logprobs["token_logprobs"][t];
    EXPECT_LT(lp, 0);
    EXPECT_GT(lp, -3);
    ASSERT_EQ(logprobs["top_logprobs"][t].size(), 2u);
    EXPECT_TRUE(logprobs["top_logprobs"][t].contains(token));
  }
  EXPECT_EQ(joined, choice["text"]);
}

TEST_F(SvampTest, ChatLogprobs) {
  const RecordedAnswer& asked = corpus_[8];
  Json request = {{"model", "m"},
                  {"logprobs", true},
                  {"top_logprobs", 3},
                  {"messages", {{{"role", "user"}, {"content", absl::StrCat("Q: ", asked.question, "\nA:")}}}}};
  httplib::Result result = client_->Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const Json choice = Json::parse(result->body)["choices"][0];
  const Json& content = choice["logprobs"]["content"];
  ASSERT_GT(content.size(), 5u);
  std::string joined;
  for (const Json& entry : content) {
    const std::string token = entry["token"];
    joined += token;
    EXPECT_LT(entry["logprob"].get<double>(), 0);
    EXPECT_EQ(entry["bytes"].size(), token.size());
    ASSERT_EQ(entry["top_logprobs"].size(), 3u);
    double sum = 0;
    double previous = 0;
    for (const Json& alternative : entry["top_logprobs"]) {
      EXPECT_LE(alternative["logprob"].get<double>(), previous);
      previous = alternative["logprob"];
      sum += std::exp(previous);
    }
    EXPECT_LE(sum, 1.0);
  }
  EXPECT_EQ(joined, choice["message"]["content"]);

  request.erase("logprobs");
  result = client_->Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_EQ(Json::parse(result->body)["error"]["param"], "top_logprobs");
}

TEST_F(FakeOpenAiServerTest, InvalidRequestsAre400WithParam) {
  StartSynthetic();
  httplib::Result result = Ask(0, R"({"n": 0})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_EQ(Json::parse(result->body)["error"]["param"], "n");

  result = Ask(0, R"({"max_tokens": "many"})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_EQ(Json::parse(result->body)["error"]["code"], "invalid_type");

  result = client_->Post("/v1/completions", "{not json", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_THAT(Json::parse(result->body)["error"]["message"].get<std::string>(), HasSubstr("could not parse"));

  result = client_->Post("/v1/completions", R"({"prompt": "Q: x"})", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_THAT(Json::parse(result->body)["error"]["message"].get<std::string>(), HasSubstr("model"));

  result = client_->Post("/v1/nothing", "{}", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_THAT(Json::parse(result->body)["error"]["message"].get<std::string>(), HasSubstr("/v1/nothing"));

  const FakeOpenAiStats stats = server_->stats();
  EXPECT_EQ(stats.total_requests, 5);
  EXPECT_EQ(stats.responses_by_status.at(400), 4);
  EXPECT_EQ(stats.responses_by_status.at(404), 1);
  EXPECT_EQ(stats.requests_by_endpoint.at("POST /v1/completions"), 4);
  EXPECT_TRUE(stats.faults_by_kind.empty());
}

TEST_F(FakeOpenAiServerTest, ModelsListAndUnknownModel) {
  FakeOpenAiOptions options;
  options.corpus = SyntheticCorpus(3);
  options.models = {"teacher-a", "teacher-b"};
  corpus_ = options.corpus;
  StartServer(std::move(options));
  httplib::Result result = client_->Get("/v1/models");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200);
  const Json body = Json::parse(result->body);
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 2u);
  EXPECT_EQ(body["data"][1]["id"], "teacher-b");
  EXPECT_EQ(body["data"][1]["object"], "model");

  result = Ask(0);  // model "fake-teacher"
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_EQ(Json::parse(result->body)["error"]["code"], "model_not_found");
}

TEST_F(FakeOpenAiServerTest, RateLimitEveryThirdRequestWithRetryAfter) {
  FaultOptions faults;
  faults.rate_limit_every = 3;
  faults.retry_after = absl::Milliseconds(1500);
  StartSynthetic(faults);
  std::vector<int> statuses;
  for (int i = 0; i < 9; ++i) {
    httplib::Result result = Ask(i);
    ASSERT_TRUE(result);
    statuses.push_back(result->status);
    if (result->status == 429) {
      EXPECT_EQ(result->get_header_value("Retry-After"), "2");
      EXPECT_EQ(result->get_header_value("retry-after-ms"), "1500");
      const Json error = Json::parse(result->body)["error"];
      EXPECT_EQ(error["code"], "rate_limit_exceeded");
      EXPECT_EQ(error["type"], "requests");
    }
  }
  EXPECT_THAT(statuses, ElementsAre(200, 200, 429, 200, 200, 429, 200, 200, 429));
  const FakeOpenAiStats stats = server_->stats();
  EXPECT_EQ(stats.faults_by_kind.at(FaultKind::kRateLimit), 3);
  EXPECT_EQ(stats.responses_by_status.at(429), 3);
  EXPECT_EQ(stats.responses_by_status.at(200), 6);
}

TEST_F(FakeOpenAiServerTest, RetryAfterZero) {
  FaultOptions faults;
  faults.rate_limit_every = 1;
  StartSynthetic(faults);
  httplib::Result result = Ask(0);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 429);
  EXPECT_EQ(result->get_header_value("Retry-After"), "0");
}

TEST_F(FakeOpenAiServerTest, FaultsRepeatOnRetriesUnlessFirstAttemptOnly) {
  FaultOptions faults;
  faults.server_error_every = 2;
  StartSynthetic(faults);
  // Every valid request counts, retries of one question included; statuses alternate 500, 503.
  std::vector<int> statuses;
  for (int i = 0; i < 6; ++i) {
    httplib::Result result = Ask(0);
    ASSERT_TRUE(result);
    statuses.push_back(result->status);
    if (result->status >= 500) {
      EXPECT_EQ(Json::parse(result->body)["error"]["type"], "server_error");
    }
  }
  EXPECT_THAT(statuses, ElementsAre(200, 500, 200, 503, 200, 500));
  EXPECT_EQ(server_->RequestsForQuestion(corpus_[0].question), 6);
}

TEST_F(FakeOpenAiServerTest, FirstAttemptOnlyLetsEveryQuestionSucceedOnRetry) {
  FaultOptions faults;
  faults.rate_limit_every = 2;
  faults.server_error_every = 3;
  faults.faults_first_attempt_only = true;
  StartSynthetic(faults);
  std::vector<int> first_statuses;
  for (int i = 0; i < 12; ++i) {
    int attempts = 0;
    int status = 0;
    while (status != 200 && attempts < 5) {
      httplib::Result result = Ask(i);
      ASSERT_TRUE(result);
      status = result->status;
      if (attempts == 0) first_statuses.push_back(status);
      ++attempts;
    }
    EXPECT_EQ(status, 200) << "question " << i;
    EXPECT_LE(attempts, 2) << "question " << i;
    EXPECT_EQ(server_->RequestsForQuestion(corpus_[i].question), attempts);
  }
  // First attempts are numbered 1..12; retries are not eligible and do not advance the count. The
  // rate limit wins where both cadences hit (6, 12).
  EXPECT_THAT(first_statuses, ElementsAre(200, 429, 500, 429, 200, 429, 200, 429, 503, 429, 200, 429));
  const FakeOpenAiStats stats = server_->stats();
  EXPECT_EQ(stats.faults_by_kind.at(FaultKind::kRateLimit), 6);
  EXPECT_EQ(stats.faults_by_kind.at(FaultKind::kServerError), 2);
  EXPECT_EQ(stats.total_requests, 20);
}

TEST_F(FakeOpenAiServerTest, FaultAttemptsAllowsSeveralFaultedAttempts) {
  FaultOptions faults;
  faults.rate_limit_every = 1;
  faults.faults_first_attempt_only = true;
  faults.fault_attempts = 2;
  StartSynthetic(faults);
  std::vector<int> statuses;
  for (int attempt = 0; attempt < 3; ++attempt) statuses.push_back(Ask(0)->status);
  EXPECT_THAT(statuses, ElementsAre(429, 429, 200));
}

TEST_F(FakeOpenAiServerTest, AttemptsAreTrackedPerChoiceAndSeed) {
  FaultOptions faults;
  faults.rate_limit_every = 1;
  faults.faults_first_attempt_only = true;
  StartSynthetic(faults);
  EXPECT_EQ(Ask(0, R"({"n": 2})")->status, 429);
  // Choice 2 is new, but choices 0 and 1 are retries: not eligible.
  EXPECT_EQ(Ask(0, R"({"n": 3})")->status, 200);
  // Another seed is another sample.
  EXPECT_EQ(Ask(0, R"({"seed": 7})")->status, 429);
  EXPECT_EQ(Ask(0, R"({"seed": 7})")->status, 200);
}

TEST_F(FakeOpenAiServerTest, StallOutlastsClientTimeoutThenRetrySucceeds) {
  FaultOptions faults;
  faults.stall_every = 2;
  faults.stall_duration = absl::Milliseconds(200);
  faults.faults_first_attempt_only = true;
  StartSynthetic(faults);
  client_->set_read_timeout(0, 50'000);
  EXPECT_EQ(Ask(0)->status, 200);
  httplib::Result stalled = Ask(1);
  EXPECT_FALSE(stalled);
  EXPECT_EQ(stalled.error(), httplib::Error::Read);
  httplib::Result retried = Ask(1);
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->status, 200);
  EXPECT_EQ(server_->stats().faults_by_kind.at(FaultKind::kStall), 1);
}

TEST_F(FakeOpenAiServerTest, TruncatedAndMalformedBodiesFailJsonParsing) {
  FaultOptions faults;
  faults.truncate_every = 2;
  faults.malformed_every = 3;
  StartSynthetic(faults);
  std::vector<std::string> kinds;
  for (int i = 0; i < 6; ++i) {
    httplib::Result result = Ask(i);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
    EXPECT_FALSE(result->body.empty());
    if (Json::accept(result->body)) {
      kinds.push_back("ok");
    } else if (result->body.front() == '{') {
      kinds.push_back("truncated");
      EXPECT_THAT(result->body, HasSubstr("\"id\":\"cmpl-"));
    } else {
      kinds.push_back("garbage");
    }
  }
  EXPECT_THAT(kinds, ElementsAre("ok", "truncated", "garbage", "truncated", "ok", "truncated"));
  const FakeOpenAiStats stats = server_->stats();
  EXPECT_EQ(stats.faults_by_kind.at(FaultKind::kTruncate), 3);
  EXPECT_EQ(stats.faults_by_kind.at(FaultKind::kMalformed), 1);
  EXPECT_EQ(stats.responses_by_status.at(200), 6);
}

TEST_F(FakeOpenAiServerTest, SetFaultsAtRuntimeRestartsTheCadence) {
  StartSynthetic();
  EXPECT_EQ(Ask(0)->status, 200);
  FaultOptions faults;
  faults.server_error_every = 2;
  faults.server_error_statuses = {503};
  ASSERT_TRUE(server_->SetFaults(faults).ok());
  EXPECT_EQ(Ask(1)->status, 200);
  EXPECT_EQ(Ask(2)->status, 503);
  faults.server_error_every = -1;
  EXPECT_EQ(server_->SetFaults(faults).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server_->faults().server_error_every, 2);
  ASSERT_TRUE(server_->SetFaults(FaultOptions()).ok());
  EXPECT_EQ(Ask(3)->status, 200);
}

TEST_F(FakeOpenAiServerTest, FailAllAndReset) {
  StartSynthetic();
  server_->FailAll(503);
  EXPECT_EQ(Ask(0)->status, 503);
  EXPECT_EQ(client_->Get("/v1/models")->status, 503);
  server_->FailAll(0);
  EXPECT_EQ(Ask(0)->status, 200);
  FakeOpenAiStats stats = server_->stats();
  EXPECT_EQ(stats.total_requests, 3);
  EXPECT_EQ(stats.faults_by_kind.at(FaultKind::kFailAll), 2);
  EXPECT_EQ(stats.responses_by_status.at(503), 2);
  EXPECT_EQ(stats.requests_by_endpoint.at("GET /v1/models"), 1);
  EXPECT_EQ(stats.requests_per_question[0], 1);

  server_->Reset();
  stats = server_->stats();
  EXPECT_EQ(stats.total_requests, 0);
  EXPECT_TRUE(stats.responses_by_status.empty());
  EXPECT_TRUE(stats.faults_by_kind.empty());
  EXPECT_EQ(stats.requests_per_question.size(), corpus_.size());
  EXPECT_EQ(server_->RequestsForQuestion(corpus_[0].question), 0);
}

TEST_F(FakeOpenAiServerTest, LatencyDelaysEveryResponse) {
  FaultOptions faults;
  faults.latency = absl::Milliseconds(100);
  StartSynthetic(faults);
  const absl::Time start = absl::Now();
  EXPECT_EQ(Ask(0)->status, 200);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
}

TEST_F(FakeOpenAiServerTest, ConcurrentKeepAliveClients) {
  StartSynthetic({}, 50);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client client("127.0.0.1", server_->port());
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      for (int i = 0; i < 25; ++i) {
        const int q = (t * 25 + i) % 50;
        httplib::Result result = client.Post(
            "/v1/completions", CompletionBody(FewShotPrompt(corpus_, corpus_[q].question)), "application/json");
        if (result && result->status == 200 &&
            Json::parse(result->body)["choices"][0]["text"] == corpus_[q].completions[0]) {
          ++ok;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 200);
  const FakeOpenAiStats stats = server_->stats();
  EXPECT_EQ(stats.total_requests, 200);
  for (int64_t count : stats.requests_per_question) EXPECT_EQ(count, 4);
}

TEST(FakeOpenAiServerStartTest, RejectsBadCorpus) {
  FakeOpenAiOptions options;
  options.corpus = SyntheticCorpus(2);
  options.corpus.push_back({"Tom has 1 apples.   How many apples  does Tom have?", {"x"}, ""});
  absl::StatusOr<std::unique_ptr<FakeOpenAiServer>> server = FakeOpenAiServer::Start(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("corpus[2].question: same question as corpus[1]"));

  options.corpus = {{"A question?", {}, ""}};
  server = FakeOpenAiServer::Start(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("corpus[0].completions"));
}

TEST(FakeOpenAiServerStartTest, BaseUrlAndStopIsIdempotent) {
  FakeOpenAiOptions options;
  options.corpus = SyntheticCorpus(1);
  absl::StatusOr<std::unique_ptr<FakeOpenAiServer>> server = FakeOpenAiServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->base_url(), absl::StrCat("http://127.0.0.1:", (*server)->port(), "/v1"));
  EXPECT_GT((*server)->port(), 0);
  (*server)->Stop();
  (*server)->Stop();
  httplib::Client client("127.0.0.1", (*server)->port());
  EXPECT_FALSE(client.Get("/v1/models"));
}

TEST(NormalizeQuestionTest, CollapsesWhitespace) {
  EXPECT_EQ(NormalizeQuestion("  a\n b\t\tc  "), "a b c");
  EXPECT_EQ(NormalizeQuestion(""), "");
}

}  // namespace
}  // namespace distill::fakes
