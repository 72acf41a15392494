#include "services/teacher_gateway/gateway_config.h"

#include <cstdlib>
#include <set>

#include "common/strings/strings.h"

namespace distill::teacher {
namespace {

// Exemplars in the synthetic teacher's own style, for the built-in arithmetic task.
TaskTemplate ArithTemplate() {
  TaskTemplate t;
  t.exemplars = {
      {"Sam has 5 marbles. He finds 7 more marbles. How many marbles does Sam have now?",
       "Sam starts with 5 marbles. He finds 7 more, so he has 5 + 7 = 12 marbles.", "12"},
      {"A baker makes 6 trays of cookies with 4 cookies on each tray. She sells 10 cookies. How many "
       "cookies are left?",
       "The baker makes 6 trays with 4 cookies each, so she makes 6 * 4 = 24 cookies. She sells 10, so "
       "24 - 10 = 14 cookies are left.",
       "14"},
  };
  return t;
}

void ReadRetry(config::Node node, RetryConfig* retry) {
  node.Read("initial", &retry->initial);
  node.Read("multiplier", &retry->multiplier);
  node.Read("max", &retry->max);
  node.Read("max_attempts", &retry->max_attempts);
  node.Check(retry->initial > absl::ZeroDuration(), "initial", "must be > 0");
  node.Check(retry->multiplier >= 1, "multiplier", strings::Cat("must be >= 1, got ", retry->multiplier));
  node.Check(retry->max >= retry->initial, "max", "must be >= initial");
  node.Check(retry->max_attempts >= 1, "max_attempts",
             strings::Cat("must be >= 1, got ", retry->max_attempts));
}

void ReadBackend(config::Node node, BackendConfig* b) {
  node.ReadRequired("name", &b->name);
  node.ReadEnum("kind", &b->kind,
                {{"openai", v1::BACKEND_KIND_OPENAI}, {"synthetic", v1::BACKEND_KIND_SYNTHETIC}});
  node.Read("base_url", &b->base_url);
  node.ReadEnum("endpoint", &b->endpoint,
                {{"chat_completions", v1::OPENAI_ENDPOINT_CHAT_COMPLETIONS},
                 {"completions", v1::OPENAI_ENDPOINT_COMPLETIONS}});
  node.Read("api_key_env", &b->api_key_env);
  node.Read("api_key_file", &b->api_key_file);
  node.Read("model", &b->model);
  node.Read("max_concurrency", &b->max_concurrency);
  node.Read("requests_per_minute", &b->requests_per_minute);
  node.Read("tokens_per_minute", &b->tokens_per_minute);
  node.Read("timeout", &b->timeout);
  node.Read("max_prompt_tokens", &b->max_prompt_tokens);
  node.Read("max_samples_per_example", &b->max_samples_per_example);
  node.Read("max_samples_per_request", &b->max_samples_per_request);
  double temperature = b->temperature;
  node.Read("temperature", &temperature);
  b->temperature = static_cast<float>(temperature);
  node.Read("max_new_tokens", &b->max_new_tokens);
  node.Read("supports_logprobs", &b->supports_logprobs);
  node.Read("error_rate", &b->error_rate);
  node.Read("latency", &b->latency);
  node.Check(b->latency >= absl::ZeroDuration(), "latency", "must be >= 0");
  int64_t seed = static_cast<int64_t>(b->seed);
  node.Read("seed", &seed);
  b->seed = static_cast<uint64_t>(seed);
  config::Node prices = node.Child("prices");
  for (const std::string& model : prices.Keys()) {
    config::Node price = prices.Child(model);
    ModelPriceConfig p;
    price.Read("prompt", &p.prompt);
    price.Read("completion", &p.completion);
    price.Check(p.prompt >= 0, "prompt", "must be >= 0 (USD per million tokens)");
    price.Check(p.completion >= 0, "completion", "must be >= 0 (USD per million tokens)");
    b->prices[model] = p;
  }
  ReadRetry(node.Child("retry"), &b->retry);

  const bool openai = b->kind == v1::BACKEND_KIND_OPENAI;
  node.Check(!openai || !b->base_url.empty(), "base_url", "is required for kind openai");
  node.Check(
      b->base_url.empty() || b->base_url.rfind("http://", 0) == 0 || b->base_url.rfind("https://", 0) == 0,
      "base_url", strings::Cat("must start with http:// or https://, got \"", b->base_url, "\""));
  node.Check(!openai || !b->model.empty(), "model", "is required for kind openai");
  node.Check(b->api_key_env.empty() || b->api_key_file.empty(), "api_key_file",
             "set api_key_env or api_key_file, not both");
  node.Check(b->max_concurrency >= 1, "max_concurrency",
             strings::Cat("must be >= 1, got ", b->max_concurrency));
  node.Check(b->requests_per_minute >= 0, "requests_per_minute", "must be >= 0 (0 = no limit)");
  node.Check(b->tokens_per_minute >= 0, "tokens_per_minute", "must be >= 0 (0 = no limit)");
  node.Check(b->timeout > absl::ZeroDuration(), "timeout", "must be > 0");
  node.Check(b->max_prompt_tokens >= 1, "max_prompt_tokens", "must be >= 1");
  node.Check(b->max_samples_per_example >= 1, "max_samples_per_example", "must be >= 1");
  node.Check(b->max_samples_per_request >= 1, "max_samples_per_request", "must be >= 1");
  node.Check(b->temperature >= 0 && b->temperature <= 2, "temperature",
             strings::Cat("must be in [0, 2], got ", b->temperature));
  node.Check(b->max_new_tokens >= 1, "max_new_tokens", "must be >= 1");
  node.Check(b->error_rate >= 0 && b->error_rate <= 1, "error_rate",
             strings::Cat("must be in [0, 1], got ", b->error_rate));
}

void ReadTemplate(config::Node node, TaskTemplate* t) {
  node.Read("instruction", &t->instruction);
  node.Read("answer_prefix", &t->answer_prefix);
  node.Read("zero_shot_trigger", &t->zero_shot_trigger);
  node.Read("answer_extraction", &t->answer_extraction);
  if (node.Has("exemplars")) {
    t->exemplars.clear();
    for (config::Node e : node.Children("exemplars")) {
      Exemplar exemplar;
      e.ReadRequired("question", &exemplar.question);
      e.ReadRequired("rationale", &exemplar.rationale);
      e.ReadRequired("answer", &exemplar.answer);
      t->exemplars.push_back(std::move(exemplar));
    }
  }
}

}  // namespace

TeacherGatewayConfig DefaultTeacherGatewayConfig() {
  TeacherGatewayConfig config;
  BackendConfig synthetic;
  synthetic.name = "synthetic";
  synthetic.kind = v1::BACKEND_KIND_SYNTHETIC;
  synthetic.model = "synthetic-arith";
  synthetic.max_concurrency = 4;
  synthetic.supports_logprobs = false;
  config.backends.push_back(synthetic);
  // A real LLM without a config file: any OpenAI-compatible API named by the usual environment variables.
  const char* base_url = std::getenv("OPENAI_BASE_URL");
  const char* api_key = std::getenv("OPENAI_API_KEY");
  if ((base_url != nullptr && *base_url != '\0') || (api_key != nullptr && *api_key != '\0')) {
    BackendConfig openai;
    openai.name = "openai";
    openai.kind = v1::BACKEND_KIND_OPENAI;
    openai.base_url = base_url != nullptr && *base_url != '\0' ? base_url : "https://api.openai.com/v1";
    if (api_key != nullptr && *api_key != '\0') openai.api_key_env = "OPENAI_API_KEY";
    const char* model = std::getenv("OPENAI_MODEL");
    openai.model = model != nullptr && *model != '\0' ? model : "gpt-4o-mini";
    config.backends.push_back(openai);
  }
  config.tasks["arith"] = ArithTemplate();
  config.tasks["svamp"] = ArithTemplate();
  config.tasks["numeric"] = ArithTemplate();
  config.tasks["default"] = TaskTemplate{};
  return config;
}

void ReadTeacherGatewayConfig(config::Node& root, TeacherGatewayConfig* config) {
  config::Node node = root.Child("teacher_gateway");
  node.Read("cache_path", &config->cache_path);
  node.Read("max_pending_examples", &config->max_pending_examples);
  node.Check(!config->cache_path.empty(), "cache_path", "must not be empty (use :memory: for no file)");
  node.Check(config->max_pending_examples >= 1, "max_pending_examples", "must be >= 1");
  if (node.Has("backends")) {
    config->backends.clear();
    std::set<std::string> names;
    for (config::Node b : node.Children("backends")) {
      BackendConfig backend;
      ReadBackend(b, &backend);
      b.Check(backend.name.empty() || names.insert(backend.name).second, "name",
              strings::Cat("duplicate backend name \"", backend.name, "\""));
      config->backends.push_back(std::move(backend));
    }
    node.Check(!config->backends.empty(), "backends", "must list at least one backend");
  }
  config::Node tasks = node.Child("tasks");
  for (const std::string& name : tasks.Keys()) {
    TaskTemplate t = config->tasks.count(name) ? config->tasks[name] : TaskTemplate{};
    ReadTemplate(tasks.Child(name), &t);
    config->tasks[name] = std::move(t);
  }
}

}  // namespace distill::teacher
