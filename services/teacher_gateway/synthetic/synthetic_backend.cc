#include "services/teacher_gateway/synthetic/synthetic_backend.h"

#include <algorithm>
#include <utility>

#include "common/strings/strings.h"
#include "services/teacher_gateway/synthetic/arith_text.h"

namespace distill::teacher {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  return TrimRight(s);
}

// Position of the last `cue` ("Q:") that starts the text or follows whitespace, or npos.
size_t FindLastCue(std::string_view text, std::string_view cue) {
  for (size_t end = text.size();;) {
    const size_t pos = text.rfind(cue, end);
    if (pos == std::string_view::npos) return pos;
    if (pos == 0 || IsSpace(text[pos - 1])) return pos;
    end = pos - 1;
  }
}

// Position of the last case-insensitive `needle` in `text`, or npos.
size_t FindLastIgnoreCase(std::string_view text, std::string_view needle) {
  if (needle.size() > text.size()) return std::string_view::npos;
  for (size_t pos = text.size() - needle.size() + 1; pos-- > 0;) {
    if (arith::EqualsIgnoreCase(text.substr(pos, needle.size()), needle)) return pos;
  }
  return std::string_view::npos;
}

// The answer part of the last "Q: ... A: ..." block of `text` (all of it when there is none).
std::string_view LastAnswerBlock(std::string_view text) {
  const size_t q = FindLastCue(text, "Q:");
  if (q != std::string_view::npos) text.remove_prefix(q);
  const size_t a = FindLastCue(text, "A:");
  if (a != std::string_view::npos) text.remove_prefix(a + 2);
  return text;
}

// Cuts `choice` at the first stop sequence, then at about 4 bytes per allowed token.
void Finish(const CompletionRequest& request, CompletionChoice* choice) {
  std::string& text = choice->text;
  size_t cut = std::string::npos;
  for (const std::string& stop : request.stop) {
    if (stop.empty()) continue;
    cut = std::min(cut, text.find(stop));
  }
  if (cut != std::string::npos) text.resize(cut);
  const size_t limit = static_cast<size_t>(std::max(request.max_new_tokens, 0)) * 4;
  if (text.size() > limit) {
    text.resize(limit);
    choice->finish_reason = v1::FINISH_REASON_LENGTH;
  } else {
    choice->finish_reason = v1::FINISH_REASON_STOP;
  }
}

}  // namespace

std::string_view QuestionOfPrompt(std::string_view prompt) {
  const size_t q = FindLastCue(prompt, "Q:");
  if (q == std::string_view::npos) {
    std::string_view whole = TrimRight(prompt);
    if (whole.size() >= 2 && whole.substr(whole.size() - 2) == "A:" && FindLastCue(whole, "A:") == whole.size() - 2) {
      whole.remove_suffix(2);
    }
    return Trim(whole);
  }
  std::string_view body = prompt.substr(q + 2);
  const size_t a = FindLastCue(body, "A:");
  if (a != std::string_view::npos) body = body.substr(0, a);
  return Trim(body);
}

std::optional<std::string_view> ReasoningBeforeAnswerCue(std::string_view prompt) {
  constexpr std::string_view kCue = "Therefore, the answer";
  const std::string_view text = TrimRight(prompt);
  if (text.size() < 3 || text.substr(text.size() - 2) != "is" || !IsSpace(text[text.size() - 3])) {
    return std::nullopt;
  }
  const size_t pos = FindLastIgnoreCase(text, kCue);
  if (pos == std::string_view::npos) return std::nullopt;
  const size_t from = pos + kCue.size();
  if (from > text.size() - 3) return std::nullopt;
  // Between the cue and the final "is": nothing, or a note such as "(arabic numerals)".
  const std::string_view note = Trim(text.substr(from, text.size() - 2 - from));
  if (!note.empty() && !(note.front() == '(' && note.back() == ')')) return std::nullopt;
  return prompt.substr(0, pos);
}

absl::StatusOr<std::unique_ptr<SyntheticBackend>> SyntheticBackend::Create(SyntheticBackendOptions options) {
  std::string problems;
  const auto check = [&problems](bool ok, std::string_view message) {
    if (ok) return;
    if (!problems.empty()) problems.append("; ");
    strings::Append(&problems, message);
  };
  check(!options.name.empty(), "name: must not be empty");
  check(!options.default_model.empty(), "default_model: must not be empty");
  check(options.max_queued_requests >= 1,
        strings::Cat("max_queued_requests: must be >= 1, got ", options.max_queued_requests));
  check(options.max_concurrency >= 1, strings::Cat("max_concurrency: must be >= 1, got ", options.max_concurrency));
  check(options.max_prompt_tokens >= 1,
        strings::Cat("max_prompt_tokens: must be >= 1, got ", options.max_prompt_tokens));
  check(options.max_samples_per_example >= 1,
        strings::Cat("max_samples_per_example: must be >= 1, got ", options.max_samples_per_example));
  const absl::Status teacher = ValidateSyntheticTeacherOptions(options.teacher);
  check(teacher.ok(), strings::Cat("teacher.", teacher.message()));
  if (!problems.empty()) {
    return absl::InvalidArgumentError(strings::Cat("synthetic backend '", options.name, "': ", problems));
  }

  v1::BackendInfo info;
  info.set_name(options.name);
  info.set_kind(v1::BACKEND_KIND_SYNTHETIC);
  info.set_default_model(options.default_model);
  info.set_max_concurrency(options.max_concurrency);
  info.set_max_prompt_tokens(options.max_prompt_tokens);
  info.set_max_samples_per_example(options.max_samples_per_example);
  info.set_supports_logprobs(false);
  return std::unique_ptr<SyntheticBackend>(new SyntheticBackend(std::move(options), std::move(info)));
}

SyntheticBackend::SyntheticBackend(SyntheticBackendOptions options, v1::BackendInfo info)
    : options_(std::move(options)),
      info_(std::move(info)),
      teacher_(options_.teacher),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()) {
  worker_ = std::thread([this] { Run(); });
}

SyntheticBackend::~SyntheticBackend() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    work_.SignalAll();
  }
  worker_.join();
}

absl::Status SyntheticBackend::Validate(const CompletionRequest& request) const {
  const auto invalid = [this](std::string_view message) {
    return absl::InvalidArgumentError(strings::Cat("synthetic backend '", options_.name, "': ", message));
  };
  if (request.sample_indices.empty()) return invalid("sample_indices: must not be empty");
  if (static_cast<int64_t>(request.sample_indices.size()) > options_.max_samples_per_example) {
    return invalid(strings::Cat("sample_indices: ", request.sample_indices.size(), " samples requested, at most ",
                                options_.max_samples_per_example, " allowed"));
  }
  if (request.max_new_tokens < 1) {
    return invalid(strings::Cat("max_new_tokens: must be >= 1, got ", request.max_new_tokens));
  }
  const int64_t tokens = EstimateTokens(request.prompt);
  if (tokens > options_.max_prompt_tokens) {
    return invalid(strings::Cat("prompt: about ", tokens, " tokens, over the limit of ", options_.max_prompt_tokens));
  }
  return absl::OkStatus();
}

uint64_t SyntheticBackend::Complete(CompletionRequest request, CompletionCallback done) {
  absl::Status status = Validate(request);
  const absl::Time deadline = clock_->Now() + request.timeout;
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  if (status.ok() && stopping_) {
    status = absl::CancelledError(strings::Cat("synthetic backend '", options_.name, "': shutting down"));
  }
  if (status.ok() && runnable_ >= options_.max_queued_requests) {
    status = absl::ResourceExhaustedError(strings::Cat("synthetic backend '", options_.name, "': ", runnable_,
                                                       " requests already queued, the limit"));
  }
  Item item;
  item.id = id;
  item.done = std::move(done);
  item.deadline = deadline;
  if (status.ok()) {
    item.request = std::move(request);
    queue_.push_back(std::move(item));
    queued_[id] = std::prev(queue_.end());
    ++runnable_;
  } else {
    // Refusals jump the queue: the caller learns at once.
    item.status = std::move(status);
    queue_.push_front(std::move(item));
    queued_[id] = queue_.begin();
  }
  work_.Signal();
  return id;
}

void SyntheticBackend::Cancel(uint64_t id) {
  absl::MutexLock lock(&mu_);
  const auto it = queued_.find(id);
  if (it == queued_.end() || !it->second->status.ok()) return;
  it->second->status = absl::CancelledError(strings::Cat("synthetic backend '", options_.name, "': request ", id,
                                                         " cancelled"));
  --runnable_;
  queue_.splice(queue_.begin(), queue_, it->second);
}

void SyntheticBackend::Run() {
  for (;;) {
    Item item;
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) work_.Wait(&mu_);
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      queued_.erase(item.id);
      if (item.status.ok()) {
        --runnable_;
        if (stopping_) {
          item.status = absl::CancelledError(strings::Cat("synthetic backend '", options_.name, "': shut down"));
        }
      }
    }
    if (!item.done) {
      continue;  // nobody to tell
    } else if (!item.status.ok()) {
      item.done(std::move(item.status));
    } else if (clock_->Now() > item.deadline) {
      item.done(absl::DeadlineExceededError(strings::Cat("synthetic backend '", options_.name, "': request ", item.id,
                                                         " waited past its timeout of ",
                                                         absl::FormatDuration(item.request.timeout))));
    } else {
      if (options_.latency > absl::ZeroDuration()) absl::SleepFor(options_.latency);
      item.done(Generate(item.request));
    }
  }
}

CompletionResult SyntheticBackend::Generate(const CompletionRequest& request) const {
  CompletionResult result;
  result.prompt_tokens = EstimateTokens(request.prompt);
  result.choices.reserve(request.sample_indices.size());
  const uint64_t seed = request.seed.value_or(0);

  const std::optional<std::string_view> reasoning = ReasoningBeforeAnswerCue(request.prompt);
  std::optional<std::string> stated;  // the answer the reasoning in the prompt arrived at
  QuestionReading reading;
  if (reasoning.has_value()) {
    stated = FinalAnswerIn(LastAnswerBlock(*reasoning));
    if (!stated.has_value()) reading = teacher_.Read(QuestionOfPrompt(*reasoning));
  } else {
    reading = teacher_.Read(QuestionOfPrompt(request.prompt));
  }

  for (const int index : request.sample_indices) {
    CompletionChoice choice;
    if (stated.has_value()) {
      choice.text = strings::Cat(*stated, ".");
    } else if (reasoning.has_value()) {
      // No answer in the reasoning: answer as this sample would have, or say it is unsure.
      std::string rationale = teacher_.Write(reading, seed, index);
      std::optional<std::string> answer = FinalAnswerIn(rationale);
      choice.text = answer.has_value() ? strings::Cat(*answer, ".") : std::move(rationale);
    } else {
      choice.text = teacher_.Write(reading, seed, index);
    }
    Finish(request, &choice);
    result.completion_tokens += EstimateTokens(choice.text);
    result.choices.push_back(std::move(choice));
  }
  return result;
}

}  // namespace distill::teacher
