// Request fields (unknown fields are ignored, as OpenAI clients send many; null counts as absent):
//
//   model              required: a loaded model's name (its active version answers)
//   prompt             /v1/completions, required: a string, or an array of exactly one string
//   messages           /v1/chat/completions, required: [{role, content}]; the input is the content of the
//                      last "user" message (a string, or an array of {"type": "text", "text"} parts)
//   max_tokens         tokens per completion (sampling.max_new_tokens; 0 or absent = the server's default)
//   temperature, top_p, seed
//                      as SamplingParams; with a seed, completion i of n uses seed + i
//   top_k              (extension) as SamplingParams.top_k
//   n                  completions, 1-16, generated concurrently so the engine can batch them
//   stop               a string or an array of strings: each completion is cut before the first occurrence
//                      of any of them (finish_reason "stop"). The student still decodes to its own end; the
//                      cut applies to the text returned.
//   stream             Server-Sent Events: one `data: {chunk}` per decoded text chunk, then `data: [DONE]`
//   include_rationale  (extension) for students with a rationale, the text is
//                      "<rationale>\nSo the answer is <answer>." so a curator reads it as a CoT completion;
//                      ignored for STANDARD students
//   logprobs           not supported: 400
//
// There is no per-request timeout: httplib cannot tell that a client of a non-streamed request has gone
// away, so such a request runs to its end (bounded by max_tokens). A streamed request stops when writing
// to the client fails.

#include "services/inference/openai_http.h"


#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_server/listener.h"
#include "common/strings/strings.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "services/inference/serving/engine.h"
#include "services/inference/serving/runner.h"

namespace distill::inference {
namespace {

using json = nlohmann::json;

constexpr char kJsonContentType[] = "application/json";
constexpr char kEventStreamContentType[] = "text/event-stream";

// Each generation request holds a worker for as long as it decodes, so there are more workers than
// cores; the engine, not the HTTP pool, decides how much runs at once.
constexpr size_t kWorkerThreads = 32;
// An idle keep-alive connection holds a worker this long, and Stop() waits for it.
constexpr time_t kIdleTimeoutSeconds = 2;
// Request bodies are prompts; anything larger is a mistake or an attack.
constexpr size_t kMaxBodyBytes = 8 << 20;

constexpr int kMaxChoices = 16;
// The text a CoT-reading curator expects between rationale and answer (gateway_config.h's
// answer_prefix, followed by a space).
constexpr char kAnswerPrefix[] = "\nSo the answer is ";

// ---------------------------------------------------------------------------------------------------------
// Errors

// An error for the client: the status plus the request field it concerns (OpenAI's "param").
struct ApiError {
  absl::Status status;
  std::optional<std::string> param;
};

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

const char* ErrorTypeOf(int http_status) {
  switch (http_status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    default:
      return http_status < 500 ? "invalid_request_error" : "server_error";
  }
}

// The serving core names the fields of GenerationAsk; a client of this API knows them by OpenAI's names.
struct FieldName {
  absl::string_view core;
  absl::string_view api;
};

// Rewrites the core's field names that start the problems of `status`'s message ("a: ...; b: ...") and
// returns the first field it names.
ApiError FromCore(const absl::Status& status, const std::string& input_field) {
  const FieldName names[] = {{"sampling.max_new_tokens", "max_tokens"},
                             {"sampling.temperature", "temperature"},
                             {"sampling.top_p", "top_p"},
                             {"sampling.top_k", "top_k"},
                             {"sampling.seed", "seed"},
                             {"input", input_field},
                             {"model", "model"},
                             {"include_rationale", "include_rationale"}};
  std::string message;
  std::optional<std::string> param;
  for (absl::string_view problem : absl::StrSplit(status.message(), "; ")) {
    if (!message.empty()) message += "; ";
    for (const FieldName& name : names) {
      if (absl::ConsumePrefix(&problem, strings::Cat(name.core, ": "))) {
        if (!param.has_value()) param = std::string(name.api);
        strings::Append(&message, name.api, ": ");
        break;
      }
    }
    strings::Append(&message, problem);
  }
  absl::Status rewritten(status.code(), message);
  // Keep the payloads (the retry hint of a full queue).
  status.ForEachPayload(
      [&rewritten](absl::string_view url, const absl::Cord& payload) { rewritten.SetPayload(url, payload); });
  return {rewritten, param};
}

json ErrorBody(const ApiError& error) {
  return {{"error",
           {{"message", std::string(error.status.message())},
            {"type", ErrorTypeOf(HttpStatusOf(error.status.code()))},
            {"param", error.param.has_value() ? json(*error.param) : json(nullptr)},
            {"code", nullptr}}}};
}

// Model output and echoed input may hold invalid UTF-8; it is replaced rather than failing the response.
std::string Dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

void SendError(const ApiError& error, httplib::Response& res) {
  res.status = HttpStatusOf(error.status.code());
  if (std::optional<absl::Duration> hint = RetryHint(error.status); hint.has_value()) {
    // Retry-After is whole seconds; rounding up keeps a client from retrying into a still-full queue.
    const int64_t seconds = std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(*hint, absl::Seconds(1))));
    res.set_header("Retry-After", std::to_string(seconds));
  }
  res.set_content(Dump(ErrorBody(error)), kJsonContentType);
}

// ---------------------------------------------------------------------------------------------------------
// Request parsing

enum class Endpoint { kCompletions, kChat };

struct ApiRequest {
  std::string model;
  GenerationAsk ask;
  int n = 1;
  std::vector<std::string> stops;
  bool stream = false;
};

std::string TypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}

// The value of `key`, or null when absent (OpenAI clients send null for "not set").
const json* Field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::optional<double>> NumberField(const json& body, const char* key) {
  const json* value = Field(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) {
    return absl::InvalidArgumentError(strings::Cat(key, ": must be a number, got ", TypeName(*value)));
  }
  return value->get<double>();
}

// An integer field within [min, max]; floats with an integral value (1.0) are accepted, as JSON has no
// integer type and some clients write every number as a float.
absl::StatusOr<std::optional<int64_t>> IntField(const json& body, const char* key, int64_t min, int64_t max) {
  const json* value = Field(body, key);
  if (value == nullptr) return std::nullopt;
  std::optional<int64_t> result;
  if (value->is_number_unsigned()) {
    const uint64_t u = value->get<uint64_t>();
    if (u <= static_cast<uint64_t>(max)) result = static_cast<int64_t>(u);
  } else if (value->is_number_integer()) {
    result = value->get<int64_t>();
  } else if (value->is_number_float()) {
    const double d = value->get<double>();
    if (std::floor(d) != d)
      return absl::InvalidArgumentError(strings::Cat(key, ": must be an integer, got ", d));
    if (d >= static_cast<double>(min) && d <= static_cast<double>(max)) result = static_cast<int64_t>(d);
  } else {
    return absl::InvalidArgumentError(strings::Cat(key, ": must be an integer, got ", TypeName(*value)));
  }
  if (!result.has_value() || *result < min || *result > max) {
    return absl::InvalidArgumentError(
        strings::Cat(key, ": must be in [", min, ", ", max, "], got ", value->dump()));
  }
  return result;
}

absl::StatusOr<std::optional<bool>> BoolField(const json& body, const char* key) {
  const json* value = Field(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) {
    return absl::InvalidArgumentError(strings::Cat(key, ": must be a boolean, got ", TypeName(*value)));
  }
  return value->get<bool>();
}

// The text of a chat message's content: a string, or OpenAI's array of content parts (text parts only).
absl::StatusOr<std::string> MessageContent(const json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  const std::string where = strings::Cat("messages[", index, "].content");
  if (!content.is_array()) {
    return absl::InvalidArgumentError(
        strings::Cat(where, ": must be a string or an array of parts, got ", TypeName(content)));
  }
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      return absl::InvalidArgumentError(
          strings::Cat(where, ": only {\"type\": \"text\", \"text\": ...} parts are supported"));
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

// The request's input: the prompt, or the last user message.
absl::StatusOr<std::string> InputOf(const json& body, Endpoint endpoint) {
  if (endpoint == Endpoint::kCompletions) {
    const json* prompt = Field(body, "prompt");
    if (prompt == nullptr) return absl::InvalidArgumentError("prompt: required");
    if (prompt->is_string()) return prompt->get<std::string>();
    if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string())
      return (*prompt)[0].get<std::string>();
    return absl::InvalidArgumentError(strings::Cat(
        "prompt: must be a string or an array of exactly one string, got ",
        prompt->is_array() ? strings::Cat("an array of ", prompt->size(), " elements") : TypeName(*prompt)));
  }
  const json* messages = Field(body, "messages");
  if (messages == nullptr) return absl::InvalidArgumentError("messages: required");
  if (!messages->is_array()) {
    return absl::InvalidArgumentError(strings::Cat("messages: must be an array, got ", TypeName(*messages)));
  }
  std::optional<std::string> input;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& message = (*messages)[i];
    if (!message.is_object() || !message.contains("role") || !message["role"].is_string()) {
      return absl::InvalidArgumentError(
          strings::Cat("messages[", i, "]: must be an object with a string \"role\""));
    }
    if (message["role"] != "user") continue;
    if (!message.contains("content"))
      return absl::InvalidArgumentError(strings::Cat("messages[", i, "].content: required"));
    absl::StatusOr<std::string> content = MessageContent(message["content"], i);
    if (!content.ok()) return content.status();
    input = *std::move(content);
  }
  if (!input.has_value()) return absl::InvalidArgumentError("messages: no message with role \"user\"");
  return *input;
}

// The name of the field a parse error concerns: what precedes the first ':' or '[' of its message.
std::string ParamOf(const absl::Status& status) {
  const std::string message(status.message());
  return message.substr(0, message.find_first_of(":["));
}

absl::StatusOr<ApiRequest> ParseRequest(const json& body, Endpoint endpoint) {
  ApiRequest request;
  const json* model = Field(body, "model");
  if (model == nullptr) return absl::InvalidArgumentError("model: required");
  if (!model->is_string()) {
    return absl::InvalidArgumentError(strings::Cat("model: must be a string, got ", TypeName(*model)));
  }
  request.model = model->get<std::string>();
  if (const json* logprobs = Field(body, "logprobs"); logprobs != nullptr && *logprobs != false) {
    return absl::InvalidArgumentError("logprobs: not supported");
  }
  if (Field(body, "top_logprobs") != nullptr)
    return absl::InvalidArgumentError("top_logprobs: not supported");
  absl::StatusOr<std::string> input = InputOf(body, endpoint);
  if (!input.ok()) return input.status();
  request.ask.input = *std::move(input);

  v1::SamplingParams& sampling = request.ask.sampling;
  absl::StatusOr<std::optional<int64_t>> max_tokens =
      IntField(body, "max_tokens", 0, std::numeric_limits<int32_t>::max());
  if (!max_tokens.ok()) return max_tokens.status();
  if (max_tokens->has_value()) sampling.set_max_new_tokens(static_cast<int32_t>(**max_tokens));
  // The serving core checks the ranges of these and names the field.
  absl::StatusOr<std::optional<double>> temperature = NumberField(body, "temperature");
  if (!temperature.ok()) return temperature.status();
  if (temperature->has_value()) sampling.set_temperature(static_cast<float>(**temperature));
  absl::StatusOr<std::optional<double>> top_p = NumberField(body, "top_p");
  if (!top_p.ok()) return top_p.status();
  if (top_p->has_value()) sampling.set_top_p(static_cast<float>(**top_p));
  absl::StatusOr<std::optional<int64_t>> top_k =
      IntField(body, "top_k", 0, std::numeric_limits<int32_t>::max());
  if (!top_k.ok()) return top_k.status();
  if (top_k->has_value()) sampling.set_top_k(static_cast<int32_t>(**top_k));
  if (const json* seed = Field(body, "seed"); seed != nullptr) {
    // OpenAI's seed is a signed 64-bit integer and the teacher gateway sends an unsigned one; both are kept
    // as the same 64 bits.
    if (seed->is_number_unsigned()) {
      sampling.set_seed(seed->get<uint64_t>());
    } else if (seed->is_number_integer()) {
      sampling.set_seed(static_cast<uint64_t>(seed->get<int64_t>()));
    } else {
      return absl::InvalidArgumentError(strings::Cat("seed: must be an integer, got ", TypeName(*seed)));
    }
  }
  absl::StatusOr<std::optional<int64_t>> n = IntField(body, "n", 1, kMaxChoices);
  if (!n.ok()) return n.status();
  request.n = static_cast<int>(n->value_or(1));

  if (const json* stop = Field(body, "stop"); stop != nullptr) {
    if (stop->is_string()) {
      request.stops.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const json& s : *stop) {
        if (!s.is_string()) {
          return absl::InvalidArgumentError(strings::Cat(
              "stop: must be a string or an array of strings, got an element that is ", TypeName(s)));
        }
        request.stops.push_back(s.get<std::string>());
      }
    } else {
      return absl::InvalidArgumentError(
          strings::Cat("stop: must be a string or an array of strings, got ", TypeName(*stop)));
    }
    // An empty stop string would match at once and return nothing; OpenAI ignores it too.
    request.stops.erase(std::remove(request.stops.begin(), request.stops.end(), ""), request.stops.end());
  }
  absl::StatusOr<std::optional<bool>> stream = BoolField(body, "stream");
  if (!stream.ok()) return stream.status();
  request.stream = stream->value_or(false);
  request.ask.stream = request.stream;
  absl::StatusOr<std::optional<bool>> include_rationale = BoolField(body, "include_rationale");
  if (!include_rationale.ok()) return include_rationale.status();
  request.ask.include_rationale = include_rationale->value_or(false);
  return request;
}

// ---------------------------------------------------------------------------------------------------------
// Output text

// The returned text is cut before the first occurrence of a stop string. While streaming, text that may be
// the start of a stop string is held back until the next chunk tells.
class StopCutter {
 public:
  explicit StopCutter(const std::vector<std::string>& stops) : stops_(stops) {}

  // Appends `piece`; returns the text now safe to send.
  std::string Add(std::string_view piece) {
    if (stopped_) return "";
    text_.append(piece);
    size_t cut = std::string::npos;
    for (const std::string& stop : stops_) cut = std::min(cut, text_.find(stop));
    if (cut != std::string::npos) {
      stopped_ = true;
      return Take(cut);
    }
    // Hold back the longest end of the text that begins some stop string. It begins where a stop string
    // begins, so (the text being valid UTF-8) on a character boundary.
    size_t hold = 0;
    for (const std::string& stop : stops_) {
      for (size_t len = std::min(stop.size() - 1, text_.size()); len > hold; --len) {
        if (std::string_view(text_).substr(text_.size() - len) == std::string_view(stop).substr(0, len)) {
          hold = len;
          break;
        }
      }
    }
    return Take(text_.size() - hold);
  }
  // The text held back, at the end of the output.
  std::string Flush() { return stopped_ ? "" : Take(text_.size()); }

  bool stopped() const { return stopped_; }

 private:
  std::string Take(size_t end) {
    if (end <= sent_) return "";
    std::string out = text_.substr(sent_, end - sent_);
    sent_ = end;
    return out;
  }

  const std::vector<std::string>& stops_;
  std::string text_;
  size_t sent_ = 0;
  bool stopped_ = false;
};

// A finished generation's text as the client sees it: the answer, or with a rationale the CoT form.
std::string Compose(const v1::GenerateResult& result, bool with_rationale) {
  if (!with_rationale) return result.text();
  return strings::Cat(result.rationale(), kAnswerPrefix, result.text(), ".");
}

// The same text from the chunks of a streamed generation, cut at a stop string. The chunks of a segment
// concatenate to its final text, so both forms agree.
class ChoiceStream {
 public:
  ChoiceStream(const std::vector<std::string>& stops, bool with_rationale)
      : cutter_(stops), with_rationale_(with_rationale) {}

  // The text to send for `chunk` (possibly empty).
  std::string Add(const v1::TokenChunk& chunk) {
    std::string piece;
    if (chunk.segment() == v1::OUTPUT_SEGMENT_ANSWER) {
      if (with_rationale_ && !answer_started_) piece = kAnswerPrefix;
      answer_started_ = true;
    } else if (!with_rationale_) {
      return "";
    }
    piece += chunk.text();
    return cutter_.Add(piece);
  }

  // The rest of the text once the generation has ended.
  std::string Finish() {
    std::string out;
    if (with_rationale_) out = cutter_.Add(strings::Cat(answer_started_ ? "" : kAnswerPrefix, "."));
    return out + cutter_.Flush();
  }

  bool stopped() const { return cutter_.stopped(); }

 private:
  StopCutter cutter_;
  const bool with_rationale_;
  bool answer_started_ = false;
};

const char* FinishReasonName(const v1::GenerateResult& result, bool stopped) {
  return !stopped && result.finish_reason() == v1::FINISH_REASON_LENGTH ? "length" : "stop";
}

// ---------------------------------------------------------------------------------------------------------
// Generations

// The n generations of one request, each on its own thread so the engine batches them. Streamed chunks and
// results arrive as events, in order per generation. Thread-safe; Next() and Wait() have one consumer.
class Generations {
 public:
  struct Event {
    int index = 0;
    // A chunk, or (done) the generation's outcome.
    std::optional<v1::TokenChunk> chunk;
    bool done = false;
    absl::StatusOr<RunResult> result = absl::UnknownError("not done");
  };

  Generations(ModelRegistry* registry, InferenceMetrics* metrics, std::string method, ApiRequest request)
      : registry_(registry), metrics_(metrics), method_(std::move(method)), request_(std::move(request)) {}

  ~Generations() {
    Cancel();
    for (std::thread& thread : threads_) thread.join();
  }

  void Start() {
    for (int i = 0; i < request_.n; ++i) threads_.emplace_back([this, i] { Run(i); });
  }

  void Cancel() { cancelled_.store(true); }

  // The next event; blocks until there is one. There are none after the n-th done event.
  Event Next() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::deque<Event>* events) { return !events->empty(); }, &events_));
    Event event = std::move(events_.front());
    events_.pop_front();
    return event;
  }

  // Waits for every generation; results in index order. One failure fails the request, so the first one
  // cancels the others and is the one returned (theirs are then CANCELLED).
  absl::StatusOr<std::vector<RunResult>> Wait() {
    std::vector<RunResult> results(request_.n);
    absl::Status failure;
    for (int done = 0; done < request_.n;) {
      Event event = Next();
      if (!event.done) continue;
      ++done;
      if (event.result.ok()) {
        results[event.index] = *std::move(event.result);
      } else if (failure.ok()) {
        failure = event.result.status();
        Cancel();
      }
    }
    if (!failure.ok()) return failure;
    return results;
  }

  const ApiRequest& request() const { return request_; }

 private:
  void Run(int index) {
    GenerationAsk ask = request_.ask;
    // Distinct seeds give the n samples distinct, reproducible texts.
    if (ask.sampling.has_seed()) ask.sampling.set_seed(ask.sampling.seed() + static_cast<uint64_t>(index));
    RunCallbacks callbacks;
    callbacks.cancelled = [this] { return cancelled_.load(); };
    if (request_.stream) {
      callbacks.on_chunk = [this, index](const v1::TokenChunk& chunk) {
        Event event;
        event.index = index;
        event.chunk = chunk;
        Push(std::move(event));
        return !cancelled_.load();
      };
    }
    Event done;
    done.index = index;
    done.done = true;
    done.result = RunGeneration(*registry_, metrics_, method_, request_.model, "", ask, callbacks);
    Push(std::move(done));
  }

  void Push(Event event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }

  ModelRegistry* const registry_;
  InferenceMetrics* const metrics_;
  const std::string method_;
  const ApiRequest request_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------------------------------------------------
// Handlers

struct Context {
  ModelRegistry* registry;
  InferenceMetrics* metrics;
  const rpc::Authenticator* authenticator;
};

// "cmpl-" or "chatcmpl-" and 24 random hex digits, as OpenAI's ids look.
std::string NewId(std::string_view prefix) {
  thread_local std::mt19937_64 random(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id.push_back(kHex[random() % 16]);
  return id;
}

bool Authorized(const Context& context, const httplib::Request& req, httplib::Response& res) {
  if (context.authenticator == nullptr || !context.authenticator->enabled()) return true;
  absl::Status status = context.authenticator->CheckAuthorization(req.get_header_value("Authorization"));
  if (status.ok()) return true;
  res.set_header("WWW-Authenticate", "Bearer");
  SendError({status, std::nullopt}, res);
  return false;
}

void ListModels(const Context& context, const httplib::Request& req, httplib::Response& res) {
  if (!Authorized(context, req, res)) return;
  json data = json::array();
  for (const v1::ModelInfo& info : context.registry->List("")) {
    if (info.state() != v1::MODEL_STATE_READY || !info.active()) continue;
    data.push_back({{"id", info.name()},
                    {"object", "model"},
                    {"created", info.ready_time().seconds()},
                    {"owned_by", "distill"}});
  }
  res.set_content(Dump({{"object", "list"}, {"data", data}}), kJsonContentType);
}

// What every response and chunk of one request shares.
struct ResponseMeta {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string id;
  int64_t created = 0;
  std::string model;
};

json Envelope(const ResponseMeta& meta, bool chunk) {
  const char* object = meta.endpoint == Endpoint::kCompletions ? "text_completion"
                       : chunk                                 ? "chat.completion.chunk"
                                                               : "chat.completion";
  return {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

json Usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

// One streamed chunk of choice `index`: `text` (none on the last chunk), `finish_reason` on the last one.
json StreamChunk(const ResponseMeta& meta, int index, const std::string* text, const char* finish_reason,
                 bool first) {
  json choice = {{"index", index},
                 {"finish_reason", finish_reason != nullptr ? json(finish_reason) : json(nullptr)},
                 {"logprobs", nullptr}};
  if (meta.endpoint == Endpoint::kCompletions) {
    choice["text"] = text != nullptr ? *text : "";
  } else {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (text != nullptr || first) delta["content"] = text != nullptr ? *text : "";
    choice["delta"] = std::move(delta);
  }
  json chunk = Envelope(meta, /*chunk=*/true);
  chunk["choices"] = json::array({std::move(choice)});
  return chunk;
}

std::string ServerSentEvent(const json& data) { return strings::Cat("data: ", Dump(data), "\n\n"); }

void SendCompletion(const ResponseMeta& meta, const ApiRequest& request,
                    const absl::StatusOr<std::vector<RunResult>>& results, const std::string& input_field,
                    httplib::Response& res) {
  if (!results.ok()) return SendError(FromCore(results.status(), input_field), res);
  json choices = json::array();
  int64_t completion_tokens = 0;
  for (size_t i = 0; i < results->size(); ++i) {
    const v1::GenerateResult& result = (*results)[i].result;
    StopCutter cutter(request.stops);
    std::string text = cutter.Add(Compose(result, request.ask.include_rationale));
    text += cutter.Flush();
    json choice = {
        {"index", i}, {"finish_reason", FinishReasonName(result, cutter.stopped())}, {"logprobs", nullptr}};
    if (meta.endpoint == Endpoint::kCompletions) {
      choice["text"] = std::move(text);
    } else {
      choice["message"] = {{"role", "assistant"}, {"content", std::move(text)}};
    }
    choices.push_back(std::move(choice));
    completion_tokens += result.output_tokens();
  }
  json body = Envelope(meta, /*chunk=*/false);
  body["choices"] = std::move(choices);
  // Every sample encodes the same input, so it is counted once.
  body["usage"] = Usage(results->front().result.input_tokens(), completion_tokens);
  res.set_content(Dump(body), kJsonContentType);
}

// A streamed response in progress: owned by httplib's content provider, released with the response.
struct Stream {
  ResponseMeta meta;
  std::string input_field;
  bool include_usage = false;
  std::shared_ptr<Generations> generations;
  // The event the handler waited for before answering 200.
  std::optional<Generations::Event> first;
  std::vector<ChoiceStream> choices;
  std::vector<bool> started;

  // Runs the stream to its end on the provider's thread. False when the client went away.
  bool Run(httplib::DataSink& sink) {
    auto write = [&sink](const std::string& data) { return sink.write(data.data(), data.size()); };
    const int n = generations->request().n;
    int done = 0;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    while (done < n) {
      Generations::Event event = first.has_value() ? *std::move(first) : generations->Next();
      first.reset();
      const int i = event.index;
      std::vector<std::string> out;
      if (!event.done) {
        std::string text = choices[i].Add(*event.chunk);
        if (text.empty()) continue;
        out.push_back(ServerSentEvent(StreamChunk(meta, i, &text, nullptr, !started[i])));
        started[i] = true;
      } else if (!event.result.ok()) {
        // Too late for an HTTP status: the error goes to the client as an event, and the stream ends
        // without [DONE].
        generations->Cancel();
        write(ServerSentEvent(ErrorBody(FromCore(event.result.status(), input_field))));
        sink.done();
        return true;
      } else {
        ++done;
        const v1::GenerateResult& result = event.result->result;
        prompt_tokens = result.input_tokens();
        completion_tokens += result.output_tokens();
        if (std::string text = choices[i].Finish(); !text.empty()) {
          out.push_back(ServerSentEvent(StreamChunk(meta, i, &text, nullptr, !started[i])));
          started[i] = true;
        }
        out.push_back(ServerSentEvent(
            StreamChunk(meta, i, nullptr, FinishReasonName(result, choices[i].stopped()), !started[i])));
      }
      for (const std::string& data : out) {
        if (!write(data)) {
          generations->Cancel();
          return false;
        }
      }
    }
    if (include_usage) {
      json usage = Envelope(meta, /*chunk=*/true);
      usage["choices"] = json::array();
      usage["usage"] = Usage(prompt_tokens, completion_tokens);
      if (!write(ServerSentEvent(usage))) return false;
    }
    if (!write("data: [DONE]\n\n")) return false;
    sink.done();
    return true;
  }
};

void Complete(const Context& context, Endpoint endpoint, const httplib::Request& req,
              httplib::Response& res) {
  if (!Authorized(context, req, res)) return;
  const std::string input_field = endpoint == Endpoint::kCompletions ? "prompt" : "messages";
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::exception& e) {
    // nlohmann's message starts with its own error id ("[json.exception.parse_error.101] ").
    std::string detail = e.what();
    if (size_t end = detail.find("] "); detail.rfind("[json.exception", 0) == 0 && end != std::string::npos) {
      detail = detail.substr(end + 2);
    }
    const bool utf8 = absl::StrContains(detail, "UTF-8");
    return SendError({absl::InvalidArgumentError(strings::Cat(
                          "request body: ", utf8 ? "invalid UTF-8: " : "malformed JSON: ", detail)),
                      std::nullopt},
                     res);
  }
  if (!body.is_object()) {
    return SendError({absl::InvalidArgumentError(
                          strings::Cat("request body: must be a JSON object, got ", TypeName(body))),
                      std::nullopt},
                     res);
  }
  absl::StatusOr<ApiRequest> request = ParseRequest(body, endpoint);
  if (!request.ok()) return SendError({request.status(), ParamOf(request.status())}, res);

  // A STANDARD student has no rationale to include; its answer is still a useful completion.
  absl::StatusOr<std::shared_ptr<ServedModel>> model = context.registry->Resolve(request->model, "");
  if (!model.ok()) return SendError(FromCore(model.status(), input_field), res);
  if ((*model)->info().objective() == v1::OBJECTIVE_STANDARD) request->ask.include_rationale = false;
  model->reset();

  ResponseMeta meta;
  meta.endpoint = endpoint;
  meta.id = NewId(endpoint == Endpoint::kCompletions ? "cmpl-" : "chatcmpl-");
  meta.created = absl::ToUnixSeconds(absl::Now());
  meta.model = request->model;
  const bool stream = request->stream;
  auto generations = std::make_shared<Generations>(
      context.registry, context.metrics,
      endpoint == Endpoint::kCompletions ? "completions" : "chat_completions", *std::move(request));
  generations->Start();
  if (!stream) return SendCompletion(meta, generations->request(), generations->Wait(), input_field, res);

  // The status line goes out with the first byte, so wait for the first event: an error that comes before
  // any text (unknown model, bad parameters, a full queue) still gets its HTTP status.
  Generations::Event first = generations->Next();
  if (first.done && !first.result.ok()) return SendError(FromCore(first.result.status(), input_field), res);
  auto state = std::make_shared<Stream>();
  state->meta = meta;
  state->input_field = input_field;
  if (const json* options = Field(body, "stream_options"); options != nullptr && options->is_object()) {
    state->include_usage = options->value("include_usage", json(false)) == true;
  }
  const ApiRequest& api = generations->request();
  for (int i = 0; i < api.n; ++i) state->choices.emplace_back(api.stops, api.ask.include_rationale);
  state->started.assign(api.n, false);
  state->generations = std::move(generations);
  state->first = std::move(first);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(kEventStreamContentType, [state](size_t, httplib::DataSink& sink) {
    try {
      return state->Run(sink);
    } catch (const std::exception&) {
      state->generations->Cancel();
      return false;
    }
  });
}

// httplib answers an escaped exception with a bare 500; this one says so in the API's error shape.
httplib::Server::Handler Guarded(std::function<void(const httplib::Request&, httplib::Response&)> handler) {
  return [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    try {
      handler(req, res);
    } catch (const std::exception& e) {
      SendError({absl::InternalError(strings::Cat("internal error: ", e.what())), std::nullopt}, res);
    }
  };
}

}  // namespace

absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> OpenAiHttpServer::Start(
    const std::string& address, ModelRegistry* registry, InferenceMetrics* metrics,
    const rpc::Authenticator* authenticator) {
  if (registry == nullptr) {
    return absl::InvalidArgumentError(
        strings::Cat(http_server::Listener::ErrorPrefix("http_address", address), "registry is null"));
  }
  auto http = std::make_unique<httplib::Server>();
  http->new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  http->set_keep_alive_timeout(kIdleTimeoutSeconds);
  http->set_payload_max_length(kMaxBodyBytes);
  const Context context{registry, metrics, authenticator};
  http->Get("/v1/models", Guarded([context](const httplib::Request& req, httplib::Response& res) {
              ListModels(context, req, res);
            }));
  http->Post("/v1/completions", Guarded([context](const httplib::Request& req, httplib::Response& res) {
               Complete(context, Endpoint::kCompletions, req, res);
             }));
  http->Post("/v1/chat/completions", Guarded([context](const httplib::Request& req, httplib::Response& res) {
               Complete(context, Endpoint::kChat, req, res);
             }));
  http->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                                  httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    absl::Status status =
        res.status == 404 ? absl::NotFoundError(strings::Cat("no route ", req.method, " ", req.path))
        : res.status == 413
            ? absl::InvalidArgumentError(strings::Cat("request body: larger than ", kMaxBodyBytes, " bytes"))
            : absl::InvalidArgumentError(strings::Cat("HTTP ", res.status));
    const int code = res.status;
    SendError({status, std::nullopt}, res);
    res.status = code;
    return httplib::Server::HandlerResponse::Handled;
  }));
  absl::StatusOr<std::unique_ptr<http_server::Listener>> listener =
      http_server::Listener::Start(std::move(http), address, "http_address");
  if (!listener.ok()) return listener.status();
  return absl::WrapUnique(new OpenAiHttpServer(std::move(*listener)));
}

OpenAiHttpServer::~OpenAiHttpServer() { Stop(); }

void OpenAiHttpServer::Stop() { listener_->Stop(); }

}  // namespace distill::inference
