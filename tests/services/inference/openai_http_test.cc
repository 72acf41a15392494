// The OpenAI-compatible HTTP API over real HTTP on loopback, serving tiny random students: response shapes,
// agreement with RunGeneration, sampling options, streaming, errors, auth, and the teacher gateway's OpenAI
// backend as a client (a distilled student can teach the next one).

#include "services/inference/openai_http.h"

#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ATen/Parallel.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/http/curl_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "services/inference/serving/runner.h"
#include "services/teacher_gateway/backend/openai_backend.h"
#include "tests/services/inference/test_model.h"
#include "tests/support/temp_dir.h"

namespace distill::inference {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kModel[] = "tiny";                // STANDARD objective
constexpr char kStepByStepModel[] = "tiny-sbs";  // STEP_BY_STEP: has a rationale
constexpr char kPrompt[] = "What is 2 plus 3?";
// Few tokens keep each generation cheap; the random student rarely ends on its own before the limit.
constexpr int kDefaultMaxNewTokens = 12;

struct Reply {
  int status = 0;
  json body;
  std::string raw;
  std::string content_type;
  std::string retry_after;
};

// The models, the registry and the server, shared by every test (loading is the slow part).
class OpenAiHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    at::set_num_threads(1);
    dir_ = new distill::testing::TempDir("openai_http_test");
    ASSERT_TRUE(testing::WriteTinyModel(dir_->File("standard"), v1::OBJECTIVE_STANDARD).ok());
    ASSERT_TRUE(testing::WriteTinyModel(dir_->File("sbs"), v1::OBJECTIVE_STEP_BY_STEP, /*seed=*/11).ok());
    ServingOptions options;
    options.default_max_new_tokens = kDefaultMaxNewTokens;
    options.engine.max_wait = absl::ZeroDuration();
    registry_ = new ModelRegistry(dir_->path(), options, /*metrics=*/nullptr);
    for (const auto& [name, sub] : {std::pair{kModel, "standard"}, std::pair{kStepByStepModel, "sbs"}}) {
      v1::LoadModelRequest load;
      load.set_name(name);
      load.set_version("v1");
      load.mutable_artifact()->set_uri(dir_->File(sub));
      absl::StatusOr<v1::ModelInfo> info = registry_->Load(load);
      ASSERT_TRUE(info.ok()) << info.status();
    }
    absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> server =
        OpenAiHttpServer::Start("127.0.0.1:0", registry_, /*metrics=*/nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }

  static void TearDownTestSuite() {
    delete server_;
    delete registry_;
    delete dir_;
  }

  static Reply Send(const std::string& method, const std::string& path, const std::string& body = "",
                    const httplib::Headers& headers = {}, const std::string& address = server_->address()) {
    httplib::Client client(absl::StrCat("http://", address));
    client.set_read_timeout(30, 0);
    httplib::Result result = method == "GET" ? client.Get(path.c_str(), headers)
                                             : client.Post(path.c_str(), headers, body, "application/json");
    Reply reply;
    if (!result) {
      ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(result.error());
      return reply;
    }
    reply.status = result->status;
    reply.raw = result->body;
    reply.content_type = result->get_header_value("Content-Type");
    reply.retry_after = result->get_header_value("Retry-After");
    reply.body = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
    return reply;
  }

  static Reply Post(const std::string& path, const json& body) { return Send("POST", path, body.dump()); }

  static json Completion(json body) {
    body["model"] = body.value("model", kModel);
    Reply reply = Post("/v1/completions", body);
    EXPECT_EQ(reply.status, 200) << reply.raw;
    return reply.body;
  }

  // What the serving core gives for the same request, without HTTP.
  static v1::GenerateResult Direct(const std::string& model, const std::string& input,
                                   bool include_rationale = false) {
    GenerationAsk ask;
    ask.input = input;
    ask.include_rationale = include_rationale;
    absl::StatusOr<RunResult> run =
        RunGeneration(*registry_, nullptr, "Predict", model, "", ask, RunCallbacks());
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() ? run->result : v1::GenerateResult();
  }

  // The `data:` payloads of an event stream, in order.
  static std::vector<std::string> Events(const std::string& stream) {
    std::vector<std::string> events;
    size_t pos = 0;
    while (pos < stream.size()) {
      const size_t end = stream.find("\n\n", pos);
      EXPECT_NE(end, std::string::npos) << "unterminated event at " << pos;
      if (end == std::string::npos) break;
      const std::string event = stream.substr(pos, end - pos);
      EXPECT_THAT(event, StartsWith("data: "));
      events.push_back(event.substr(6));
      pos = end + 2;
    }
    return events;
  }

  // Streams `body` and returns each choice's concatenated text and finish reason.
  static std::vector<std::pair<std::string, std::string>> Streamed(const std::string& path, json body) {
    body["model"] = body.value("model", kModel);
    body["stream"] = true;
    Reply reply = Post(path, body);
    EXPECT_EQ(reply.status, 200) << reply.raw;
    EXPECT_THAT(reply.content_type, StartsWith("text/event-stream"));
    std::vector<std::string> events = Events(reply.raw);
    EXPECT_FALSE(events.empty());
    if (events.empty()) return {};
    EXPECT_EQ(events.back(), "[DONE]");
    events.pop_back();
    std::vector<std::pair<std::string, std::string>> choices(body.value("n", 1));
    std::vector<int> finished(choices.size(), 0);
    for (const std::string& event : events) {
      json chunk = json::parse(event);
      EXPECT_EQ(chunk["choices"].size(), 1u) << event;
      if (chunk["choices"].size() != 1) continue;
      const json& choice = chunk["choices"][0];
      const size_t index = choice["index"];
      EXPECT_EQ(finished[index], 0) << "a chunk after choice " << index << " finished: " << event;
      if (path == "/v1/completions") {
        EXPECT_EQ(chunk["object"], "text_completion");
        choices[index].first += choice["text"].get<std::string>();
      } else {
        EXPECT_EQ(chunk["object"], "chat.completion.chunk");
        choices[index].first += choice["delta"].value("content", "");
      }
      if (!choice["finish_reason"].is_null()) {
        choices[index].second = choice["finish_reason"];
        ++finished[index];
      }
    }
    for (int f : finished) EXPECT_EQ(f, 1);
    return choices;
  }

  static distill::testing::TempDir* dir_;
  static ModelRegistry* registry_;
  static OpenAiHttpServer* server_;
};

distill::testing::TempDir* OpenAiHttpTest::dir_ = nullptr;
ModelRegistry* OpenAiHttpTest::registry_ = nullptr;
OpenAiHttpServer* OpenAiHttpTest::server_ = nullptr;

TEST_F(OpenAiHttpTest, ListsReadyModels) {
  Reply reply = Send("GET", "/v1/models");
  ASSERT_EQ(reply.status, 200) << reply.raw;
  EXPECT_EQ(reply.body["object"], "list");
  ASSERT_EQ(reply.body["data"].size(), 2u);
  std::vector<std::string> ids;
  for (const json& model : reply.body["data"]) {
    ids.push_back(model["id"]);
    EXPECT_EQ(model["object"], "model");
    EXPECT_EQ(model["owned_by"], "distill");
    EXPECT_GT(model["created"].get<int64_t>(), 1'600'000'000);
  }
  EXPECT_THAT(ids, ::testing::UnorderedElementsAre(kModel, kStepByStepModel));
}

TEST_F(OpenAiHttpTest, GreedyCompletionIsWhatTheCoreGenerates) {
  const v1::GenerateResult direct = Direct(kModel, kPrompt);
  json body = Completion({{"prompt", kPrompt}});
  EXPECT_THAT(body["id"].get<std::string>(), StartsWith("cmpl-"));
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["model"], kModel);
  EXPECT_GT(body["created"].get<int64_t>(), 1'600'000'000);
  ASSERT_EQ(body["choices"].size(), 1u);
  const json& choice = body["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["text"], direct.text());
  EXPECT_EQ(choice["finish_reason"], direct.finish_reason() == v1::FINISH_REASON_LENGTH ? "length" : "stop");
  EXPECT_TRUE(choice["logprobs"].is_null());
  EXPECT_EQ(body["usage"]["prompt_tokens"], direct.input_tokens());
  EXPECT_EQ(body["usage"]["completion_tokens"], direct.output_tokens());
  EXPECT_EQ(body["usage"]["total_tokens"], direct.input_tokens() + direct.output_tokens());

  // A one-string array is the same prompt; unknown fields are ignored, null is "not set".
  json again =
      Completion({{"prompt", {kPrompt}}, {"user", "someone"}, {"frequency_penalty", 0}, {"seed", nullptr}});
  EXPECT_EQ(again["choices"][0]["text"], direct.text());
}

TEST_F(OpenAiHttpTest, SeededSamplesAreReproducibleAndOnePerChoice) {
  const json request = {{"prompt", kPrompt}, {"n", 3}, {"temperature", 1.0}, {"seed", 5}};
  json first = Completion(request);
  json second = Completion(request);
  ASSERT_EQ(first["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(first["choices"][i]["index"], i);
    EXPECT_EQ(first["choices"][i]["text"], second["choices"][i]["text"]);
    // Sample i of a seeded request is sampled with seed + i.
    json alone = Completion({{"prompt", kPrompt}, {"temperature", 1.0}, {"seed", 5 + i}});
    EXPECT_EQ(alone["choices"][0]["text"], first["choices"][i]["text"]) << "choice " << i;
  }
  // The prompt is counted once, the completions of all three.
  json single = Completion({{"prompt", kPrompt}, {"max_tokens", 1}});
  EXPECT_EQ(first["usage"]["prompt_tokens"], single["usage"]["prompt_tokens"]);
}

TEST_F(OpenAiHttpTest, MaxTokensEndsWithLength) {
  ASSERT_GT(Direct(kModel, kPrompt).output_tokens(), 2)
      << "the student must write more than 2 tokens unprompted";
  json body = Completion({{"prompt", kPrompt}, {"max_tokens", 2}});
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_LE(body["usage"]["completion_tokens"].get<int>(), 2);
}

TEST_F(OpenAiHttpTest, StopCutsTheTextStreamedOrNot) {
  const std::string text = Direct(kModel, kPrompt).text();
  // A stop string from the middle of the text, of whole ASCII characters.
  std::string stop;
  for (size_t i = 1; i + 2 <= text.size() && stop.empty(); ++i) {
    if (static_cast<unsigned char>(text[i]) < 0x80 && static_cast<unsigned char>(text[i + 1]) < 0x80 &&
        text[i] != ' ') {
      stop = text.substr(i, 2);
    }
  }
  ASSERT_FALSE(stop.empty()) << "no ASCII pair in \"" << text << "\"";
  const std::string expected = text.substr(0, text.find(stop));
  json body = Completion({{"prompt", kPrompt}, {"stop", {"never-in-the-output", stop}}});
  EXPECT_EQ(body["choices"][0]["text"], expected);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  json single = Completion({{"prompt", kPrompt}, {"stop", stop}});
  EXPECT_EQ(single["choices"][0]["text"], expected);

  auto streamed = Streamed("/v1/completions", {{"prompt", kPrompt}, {"stop", stop}});
  ASSERT_EQ(streamed.size(), 1u);
  EXPECT_EQ(streamed[0].first, expected);
  EXPECT_EQ(streamed[0].second, "stop");
}

TEST_F(OpenAiHttpTest, StreamConcatenatesToTheCompletion) {
  const json request = {{"prompt", kPrompt}, {"n", 2}, {"temperature", 0.8}, {"seed", 9}};
  json whole = Completion(request);
  auto streamed = Streamed("/v1/completions", request);
  ASSERT_EQ(streamed.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(streamed[i].first, whole["choices"][i]["text"]);
    EXPECT_EQ(streamed[i].second, whole["choices"][i]["finish_reason"]);
  }
}

TEST_F(OpenAiHttpTest, ChatAnswersTheLastUserMessage) {
  const std::string expected = Completion({{"prompt", kPrompt}})["choices"][0]["text"];
  const json messages = {{{"role", "system"}, {"content", "Answer briefly."}},
                         {{"role", "user"}, {"content", "an earlier question"}},
                         {{"role", "assistant"}, {"content", "an earlier answer"}},
                         {{"role", "user"}, {"content", kPrompt}}};
  Reply reply = Post("/v1/chat/completions", {{"model", kModel}, {"messages", messages}});
  ASSERT_EQ(reply.status, 200) << reply.raw;
  EXPECT_THAT(reply.body["id"].get<std::string>(), StartsWith("chatcmpl-"));
  EXPECT_EQ(reply.body["object"], "chat.completion");
  ASSERT_EQ(reply.body["choices"].size(), 1u);
  EXPECT_EQ(reply.body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(reply.body["choices"][0]["message"]["content"], expected);
  EXPECT_GT(reply.body["usage"]["prompt_tokens"].get<int>(), 0);

  // Content given as text parts, and streamed.
  const json parts = {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", kPrompt}}}}}};
  auto streamed = Streamed("/v1/chat/completions", {{"messages", parts}});
  ASSERT_EQ(streamed.size(), 1u);
  EXPECT_EQ(streamed[0].first, expected);
}

TEST_F(OpenAiHttpTest, IncludeRationaleGivesACotCompletion) {
  const v1::GenerateResult direct = Direct(kStepByStepModel, kPrompt, /*include_rationale=*/true);
  const std::string expected = absl::StrCat(direct.rationale(), "\nSo the answer is ", direct.text(), ".");
  json body = Completion({{"model", kStepByStepModel}, {"prompt", kPrompt}, {"include_rationale", true}});
  EXPECT_EQ(body["choices"][0]["text"], expected);
  auto streamed = Streamed("/v1/completions",
                           {{"model", kStepByStepModel}, {"prompt", kPrompt}, {"include_rationale", true}});
  ASSERT_EQ(streamed.size(), 1u);
  EXPECT_EQ(streamed[0].first, expected);
  // Without it, only the answer.
  EXPECT_EQ(Completion({{"model", kStepByStepModel}, {"prompt", kPrompt}})["choices"][0]["text"],
            Direct(kStepByStepModel, kPrompt).text());
  // A STANDARD student has no rationale: its answer alone.
  EXPECT_EQ(Completion({{"prompt", kPrompt}, {"include_rationale", true}})["choices"][0]["text"],
            Direct(kModel, kPrompt).text());
}

// Checks an error reply: HTTP status, OpenAI's error shape, the message fragment and the param.
void ExpectError(const Reply& reply, int status, const std::string& fragment, const json& param) {
  EXPECT_EQ(reply.status, status) << reply.raw;
  ASSERT_TRUE(reply.body.is_object()) << reply.raw;
  const json& error = reply.body["error"];
  ASSERT_TRUE(error.is_object()) << reply.raw;
  EXPECT_THAT(error["message"].get<std::string>(), HasSubstr(fragment));
  EXPECT_EQ(error["param"], param) << reply.raw;
  EXPECT_TRUE(error["type"].is_string());
  EXPECT_TRUE(error.contains("code"));
}

TEST_F(OpenAiHttpTest, RequestErrorsNameTheProblem) {
  ExpectError(Post("/v1/completions", {{"model", "no-such-model"}, {"prompt", kPrompt}}), 404,
              "no-such-model", "model");
  ExpectError(Post("/v1/completions", {{"prompt", kPrompt}}), 400, "model: required", "model");
  ExpectError(Post("/v1/completions", {{"model", kModel}}), 400, "prompt: required", "prompt");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", {"a", "b"}}}), 400, "array of 2",
              "prompt");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", ""}}), 400, "prompt: required",
              "prompt");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", kPrompt}, {"temperature", -1}}), 400,
              "temperature: must be >= 0", "temperature");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", kPrompt}, {"temperature", "hot"}}), 400,
              "temperature: must be a number", "temperature");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", kPrompt}, {"max_tokens", "x"}}), 400,
              "max_tokens: must be an integer", "max_tokens");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", kPrompt}, {"max_tokens", 100000}}), 400,
              "max_tokens: must be in", "max_tokens");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", kPrompt}, {"top_p", 0}}), 400, "top_p",
              "top_p");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", kPrompt}, {"n", 17}}), 400,
              "n: must be in [1, 16]", "n");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", kPrompt}, {"stop", 3}}), 400,
              "stop:", "stop");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", kPrompt}, {"logprobs", 2}}), 400,
              "logprobs: not supported", "logprobs");
  ExpectError(Post("/v1/completions", {{"model", kModel}, {"prompt", kPrompt}, {"stream", "yes"}}), 400,
              "stream: must be a boolean", "stream");
  ExpectError(Post("/v1/chat/completions",
                   {{"model", kModel}, {"messages", {{{"role", "system"}, {"content", "x"}}}}}),
              400, "no message with role \"user\"", "messages");
  ExpectError(Post("/v1/chat/completions", {{"model", kModel}, {"messages", "hi"}}), 400,
              "messages: must be an array", "messages");
  ExpectError(Post("/v1/completions", json::array({1, 2})), 400, "must be a JSON object", nullptr);
  // Streamed requests fail before the stream starts, with their status.
  ExpectError(Post("/v1/completions", {{"model", "no-such-model"}, {"prompt", kPrompt}, {"stream", true}}),
              404, "no-such-model", "model");
}

TEST_F(OpenAiHttpTest, MalformedBodiesAreRejectedNotCrashed) {
  ExpectError(Send("POST", "/v1/completions", R"({"model": "tiny", "prompt": )"), 400, "malformed JSON",
              nullptr);
  ExpectError(Send("POST", "/v1/completions", ""), 400, "malformed JSON", nullptr);
  ExpectError(Send("POST", "/v1/completions", "{\"model\": \"tiny\", \"prompt\": \"caf\xC3\x28\"}"), 400,
              "invalid UTF-8", nullptr);
  ExpectError(Send("POST", "/v1/completions", "{\"model\": \"tiny\", \"prompt\": \"\xFF\xFE\"}"), 400,
              "invalid UTF-8", nullptr);
  ExpectError(Send("GET", "/v1/nothing-here"), 404, "no route GET /v1/nothing-here", nullptr);
  // The server still answers.
  EXPECT_EQ(Send("GET", "/v1/models").status, 200);
}

TEST_F(OpenAiHttpTest, BearerTokenIsRequiredWhenConfigured) {
  const std::string token_file = dir_->File("token");
  std::ofstream(token_file) << "s3cret\n";
  rpc::AuthOptions options;
  options.token_file = token_file;
  absl::StatusOr<std::unique_ptr<rpc::Authenticator>> auth = rpc::Authenticator::Create(options);
  ASSERT_TRUE(auth.ok()) << auth.status();
  absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> server =
      OpenAiHttpServer::Start("127.0.0.1:0", registry_, nullptr, auth->get());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  const std::string body = json{{"model", kModel}, {"prompt", kPrompt}, {"max_tokens", 1}}.dump();
  ExpectError(Send("POST", "/v1/completions", body, {}, address), 401, "missing", nullptr);
  ExpectError(Send("GET", "/v1/models", "", {{"Authorization", "Bearer wrong"}}, address), 401,
              "invalid bearer token", nullptr);
  ExpectError(Send("GET", "/v1/models", "", {{"Authorization", "Basic s3cret"}}, address), 401,
              "not a bearer", nullptr);
  Reply reply = Send("POST", "/v1/completions", body, {{"Authorization", "Bearer s3cret"}}, address);
  EXPECT_EQ(reply.status, 200) << reply.raw;
  EXPECT_EQ(reply.raw.find("s3cret"), std::string::npos);
  (*server)->Stop();
  (*server)->Stop();  // idempotent
}

TEST_F(OpenAiHttpTest, BadAddressesAreRejected) {
  absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> bad =
      OpenAiHttpServer::Start("localhost", registry_, nullptr);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("http_address \"localhost\""));
  absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> busy =
      OpenAiHttpServer::Start(server_->address(), registry_, nullptr);
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kUnavailable);
}

// A full queue is 429 with a Retry-After hint, as the gateway's backend retries on.
TEST_F(OpenAiHttpTest, FullQueueIsTooManyRequestsWithRetryAfter) {
  ServingOptions options;
  options.engine.max_batch = 1;
  options.engine.max_queue = 1;
  options.engine.max_wait = absl::ZeroDuration();
  ModelRegistry registry(dir_->path(), options, /*metrics=*/nullptr);
  v1::LoadModelRequest load;
  load.set_name(kModel);
  load.set_version("v1");
  load.mutable_artifact()->set_uri(dir_->File("standard"));
  ASSERT_TRUE(registry.Load(load).ok());
  absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> server =
      OpenAiHttpServer::Start("127.0.0.1:0", &registry, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  // Sixteen long generations submitted together: one decodes, one waits, the rest find the queue full.
  const std::string body =
      json{{"model", kModel}, {"prompt", kPrompt}, {"n", 16}, {"max_tokens", 256}, {"temperature", 0}}.dump();
  Reply reply = Send("POST", "/v1/completions", body, {}, (*server)->address());
  ExpectError(reply, 429, "", nullptr);
  EXPECT_EQ(reply.body["error"]["type"], "rate_limit_error");
  int retry_after = 0;
  EXPECT_TRUE(absl::SimpleAtoi(reply.retry_after, &retry_after)) << reply.retry_after;
  EXPECT_GE(retry_after, 1);
}

// The teacher gateway's OpenAI backend, pointed at this server, gets completions from a student.
TEST_F(OpenAiHttpTest, TeacherGatewayBackendCanUseAStudentAsTeacher) {
  http::CurlClientOptions curl_options;
  absl::StatusOr<std::unique_ptr<http::Client>> client = http::NewCurlClient(curl_options);
  ASSERT_TRUE(client.ok()) << client.status();
  const json expected =
      Completion({{"prompt", kPrompt}, {"n", 2}, {"temperature", 1.0}, {"seed", 3}, {"max_tokens", 8}});
  for (v1::OpenAiEndpoint endpoint :
       {v1::OPENAI_ENDPOINT_COMPLETIONS, v1::OPENAI_ENDPOINT_CHAT_COMPLETIONS}) {
    v1::BackendInfo info;
    info.set_name("student");
    info.set_base_url(absl::StrCat("http://", server_->address(), "/v1/"));
    info.set_endpoint(endpoint);
    teacher::OpenAiBackend backend(info, "", client->get());
    teacher::CompletionRequest request;
    request.model = kModel;
    request.prompt = kPrompt;
    request.sample_indices = {0, 1};
    request.temperature = 1.0f;
    request.seed = 3;
    request.max_new_tokens = 8;
    std::promise<absl::StatusOr<teacher::CompletionResult>> done;
    backend.Complete(request, [&done](absl::StatusOr<teacher::CompletionResult> result) {
      done.set_value(std::move(result));
    });
    absl::StatusOr<teacher::CompletionResult> result = done.get_future().get();
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->choices.size(), 2u);
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(result->choices[i].text, expected["choices"][i]["text"]) << "endpoint " << endpoint;
      EXPECT_NE(result->choices[i].finish_reason, v1::FINISH_REASON_UNSPECIFIED);
    }
    EXPECT_EQ(result->prompt_tokens, expected["usage"]["prompt_tokens"]);
    EXPECT_EQ(result->completion_tokens, expected["usage"]["completion_tokens"]);

    // Errors come back with the codes the gateway acts on.
    request.model = "no-such-model";
    std::promise<absl::StatusOr<teacher::CompletionResult>> failed;
    backend.Complete(request, [&failed](absl::StatusOr<teacher::CompletionResult> result) {
      failed.set_value(std::move(result));
    });
    EXPECT_EQ(failed.get_future().get().status().code(), absl::StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace distill::inference
