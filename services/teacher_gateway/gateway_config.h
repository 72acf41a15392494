#ifndef DISTILL_SERVICES_TEACHER_GATEWAY_GATEWAY_CONFIG_H_
#define DISTILL_SERVICES_TEACHER_GATEWAY_GATEWAY_CONFIG_H_

// Configuration of the teacher gateway: its backends (with prices, limits and retry policy), the
// per-task prompt templates and the response cache. The `teacher_gateway:` section of a config file:
//
//   teacher_gateway:
//     cache_path: /data/teacher-cache.sqlite
//     backends:
//       - name: openai
//         kind: openai                       # openai | synthetic
//         base_url: https://api.openai.com/v1
//         endpoint: chat_completions         # chat_completions | completions
//         api_key_env: OPENAI_API_KEY        # or api_key_file: /run/secrets/openai
//         model: gpt-4o-mini
//         max_concurrency: 64
//         requests_per_minute: 500
//         tokens_per_minute: 200000
//         timeout: 60s
//         prices:
//           gpt-4o-mini: {prompt: 0.15, completion: 0.60}   # USD per million tokens
//         retry: {initial: 500ms, multiplier: 2, max: 30s, max_attempts: 6}
//     tasks:
//       svamp:
//         exemplars:
//           - {question: "...", rationale: "...", answer: "42"}
//
// Without a file, the gateway has the backend `synthetic` (the built-in arithmetic teacher) and, when
// OPENAI_BASE_URL or OPENAI_API_KEY is set, `openai` (that URL, default https://api.openai.com/v1, the key
// from OPENAI_API_KEY, model $OPENAI_MODEL or gpt-4o-mini); the built-in `arith` task template (also used
// for `svamp` and `numeric`), and its cache under distill-data/.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/config/yaml.h"
#include "distill/v1/teacher.pb.h"

namespace distill::teacher {

struct ModelPriceConfig {
  // US dollars per million prompt / completion tokens, ≥ 0.
  double prompt = 0;
  double completion = 0;
};

struct RetryConfig {
  // First backoff, growth factor, cap, and the most attempts per request (the first one included).
  absl::Duration initial = absl::Milliseconds(500);
  double multiplier = 2.0;
  absl::Duration max = absl::Seconds(30);
  int max_attempts = 6;
};

struct BackendConfig {
  // The name requests use (TeacherOptions.backend). Required, unique.
  std::string name;
  // openai: any OpenAI-compatible HTTP API; synthetic: the built-in arithmetic teacher.
  v1::BackendKind kind = v1::BACKEND_KIND_SYNTHETIC;
  // openai: base URL up to and including the version, e.g. "https://api.openai.com/v1".
  std::string base_url;
  // openai: which endpoint to call.
  v1::OpenAiEndpoint endpoint = v1::OPENAI_ENDPOINT_CHAT_COMPLETIONS;
  // openai: where the API key comes from (neither = no Authorization header, e.g. a local vLLM).
  std::string api_key_env;
  std::string api_key_file;
  // Model used when a request names none. Required for openai.
  std::string model;
  // Most requests in flight to this backend at once, ≥ 1.
  int max_concurrency = 16;
  // Client-side rate limits; 0 = none.
  double requests_per_minute = 0;
  double tokens_per_minute = 0;
  // Deadline of one attempt.
  absl::Duration timeout = absl::Seconds(60);
  // Longest prompt accepted, in estimated tokens.
  int max_prompt_tokens = 8192;
  // Largest samples_per_example a stream may ask for.
  int max_samples_per_example = 64;
  // Most samples asked for in one request (OpenAI's `n`); 1 for servers that ignore `n`.
  int max_samples_per_request = 8;
  // Defaults for requests that leave them unset.
  float temperature = 0.7f;
  int max_new_tokens = 256;
  // Whether the backend returns per-token log-probabilities.
  bool supports_logprobs = true;
  // Per-model prices; models not listed cost 0.
  std::map<std::string, ModelPriceConfig> prices;
  RetryConfig retry;
  // synthetic: probability that a sample contains an arithmetic slip, and the teacher's seed.
  double error_rate = 0.15;
  uint64_t seed = 0;
  // synthetic: time each request takes (requests run one at a time), to behave like a slow remote model.
  absl::Duration latency = absl::ZeroDuration();
};

struct Exemplar {
  std::string question;
  std::string rationale;
  std::string answer;
};

// How prompts for one task are written (few-shot CoT as in Distilling Step-by-Step, zero-shot CoT as
// in Fine-tune-CoT).
struct TaskTemplate {
  // Text placed before the exemplars (may be empty).
  std::string instruction;
  // Few-shot exemplars, rendered "Q: <question>\nA: <rationale> <answer_prefix> <answer>.\n\n".
  std::vector<Exemplar> exemplars;
  // What introduces the answer after a rationale.
  std::string answer_prefix = "So the answer is";
  // Zero-shot CoT: appended after "A:" to elicit reasoning, and the answer-extraction cue.
  std::string zero_shot_trigger = "Let's think step by step.";
  std::string answer_extraction = "Therefore, the answer is";
};

struct TeacherGatewayConfig {
  std::vector<BackendConfig> backends;
  // Task templates by TaskSpec.name. "" is looked up as the template named after the task type
  // ("numeric", "multiple_choice", "classification", "free_text"), then "default".
  std::map<std::string, TaskTemplate> tasks;
  // SQLite file of the response cache (created with its directory); ":memory:" keeps it in memory.
  std::string cache_path = "distill-data/teacher-cache.sqlite";
  // Examples of one stream that may be outstanding before the stream stops reading more
  // (backpressure), ≥ 1.
  int max_pending_examples = 2048;
};

// The embedded defaults: the synthetic backend and the built-in templates.
TeacherGatewayConfig DefaultTeacherGatewayConfig();

// Reads the `teacher_gateway:` section of `root` over *config (a `backends:` or `tasks:` list in the
// file replaces the defaults' list). Problems are recorded in the document.
void ReadTeacherGatewayConfig(config::Node& root, TeacherGatewayConfig* config);

}  // namespace distill::teacher

#endif  // DISTILL_SERVICES_TEACHER_GATEWAY_GATEWAY_CONFIG_H_
