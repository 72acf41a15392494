#include "services/curator/curation.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "common/dataset/example_json.h"
#include "common/dataset/student_text.h"
#include "common/strings/strings.h"
#include "services/curator/answers/completion_parser.h"
#include "services/curator/answers/normalizer.h"
#include "services/curator/dedup/exact_dedup.h"
#include "services/curator/dedup/minhash.h"
#include "services/curator/dedup/text_normalize.h"

namespace distill::curator {
namespace {

int64_t CountWords(std::string_view text) {
  int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = absl::ascii_isspace(static_cast<unsigned char>(c));
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

// A rationale "only restates the answer" when, without the answer itself and the usual answer
// phrasing, fewer than two words are left: "42.", "The answer is 42.", "So it is (c) bank".
bool RestatesAnswer(std::string_view rationale, std::string_view answer) {
  static const auto* kFiller =
      new std::vector<std::string>{"the", "answer", "is",    "so",      "therefore", "thus",  "it",
                                   "a",   "an",     "final", "correct", "option",    "choice"};
  const std::string normalized = NormalizeForDedup(rationale);
  const std::string answer_words = NormalizeForDedup(answer);
  std::vector<std::string_view> answer_tokens;
  for (absl::string_view w : absl::StrSplit(strings::ToAbsl(answer_words), ' ', absl::SkipEmpty())) {
    answer_tokens.emplace_back(w.data(), w.size());
  }
  int content = 0;
  for (absl::string_view w : absl::StrSplit(strings::ToAbsl(normalized), ' ', absl::SkipEmpty())) {
    const std::string_view word(w.data(), w.size());
    if (std::find(kFiller->begin(), kFiller->end(), word) != kFiller->end()) continue;
    if (std::find(answer_tokens.begin(), answer_tokens.end(), word) != answer_tokens.end()) continue;
    ++content;
  }
  return content < 2;
}

}  // namespace

std::string_view DropReasonName(v1::DropReason reason) {
  switch (reason) {
    case v1::DROP_REASON_INVALID_RECORD:
      return "invalid_record";
    case v1::DROP_REASON_UNPARSEABLE:
      return "unparseable";
    case v1::DROP_REASON_WRONG_ANSWER:
      return "wrong_answer";
    case v1::DROP_REASON_NO_CONSENSUS:
      return "no_consensus";
    case v1::DROP_REASON_DISAGREES_WITH_VOTE:
      return "disagrees_with_vote";
    case v1::DROP_REASON_RATIONALE_EMPTY:
      return "rationale_empty";
    case v1::DROP_REASON_RATIONALE_TOO_SHORT:
      return "rationale_too_short";
    case v1::DROP_REASON_RATIONALE_TOO_LONG:
      return "rationale_too_long";
    case v1::DROP_REASON_RATIONALE_RESTATES_ANSWER:
      return "rationale_restates_answer";
    case v1::DROP_REASON_EXACT_DUPLICATE:
      return "exact_duplicate";
    case v1::DROP_REASON_NEAR_DUPLICATE:
      return "near_duplicate";
    case v1::DROP_REASON_EXAMPLE_CAP:
      return "example_cap";
    default:
      return "unspecified";
  }
}

struct Curation::Impl {
  explicit Impl(AnswerNormalizer n) : normalizer(std::move(n)) {}
  AnswerNormalizer normalizer;
  v1::TaskSpec task;
  v1::CurationOptions options;
  Emit emit;
  ExactDeduplicator exact;
  std::unique_ptr<NearDuplicateIndex> near;  // null when the filter is off
  v1::CurationSummary summary;
  std::map<v1::DropReason, int64_t> drops;

  void Drop(const v1::Example& ex, int sample_index, v1::DropReason reason, std::string detail,
            std::string parsed = "", std::string expected = "") {
    summary.set_dropped(summary.dropped() + 1);
    ++drops[reason];
    if (!options.include_drops() && reason != v1::DROP_REASON_INVALID_RECORD) return;
    v1::CurateResponse r;
    v1::DroppedSample* d = r.mutable_dropped();
    d->set_example_id(ex.id());
    d->set_sample_index(sample_index);
    d->set_reason(reason);
    d->set_detail(std::move(detail));
    d->set_parsed_answer(std::move(parsed));
    d->set_expected_answer(std::move(expected));
    emit(std::move(r));
  }

  void Keep(v1::TrainingRecord record) {
    summary.set_kept(summary.kept() + 1);
    v1::CurateResponse r;
    *r.mutable_record() = std::move(record);
    emit(std::move(r));
  }

  // Builds the record of one sample (or of the example, sample_index -1, for GOLD_ONLY).
  v1::TrainingRecord MakeRecord(const v1::Example& ex, int sample_index, const std::string& input,
                                const std::string& label, const std::string& rationale) const {
    v1::TrainingRecord record;
    record.set_example_id(ex.id());
    record.set_sample_index(sample_index);
    switch (options.format()) {
      case v1::OUTPUT_FORMAT_COT_SEQUENCE:
        record.set_input(dataset::CotInput(input));
        record.set_label_target(dataset::CotTarget(rationale, label));
        break;
      case v1::OUTPUT_FORMAT_LABEL_ONLY:
        record.set_input(input);
        record.set_label_target(label);
        break;
      default:
        record.set_input(input);
        record.set_label_target(label);
        record.set_rationale_target(rationale);
    }
    return record;
  }

  void AddGoldOnly(const v1::Example& ex, const std::string& input) {
    summary.set_received(summary.received() + 1);
    absl::StatusOr<NormalizedAnswer> gold = normalizer.Normalize(ex, ex.gold());
    if (!gold.ok()) {
      Drop(ex, -1, v1::DROP_REASON_INVALID_RECORD, strings::Cat("gold: ", gold.status().message()));
      return;
    }
    if (!exact.Insert(strings::Cat(input, "\x1f", gold->text), "")) {
      Drop(ex, -1, v1::DROP_REASON_EXACT_DUPLICATE, "an identical record was already kept");
      return;
    }
    summary.set_examples_with_records(summary.examples_with_records() + 1);
    Keep(MakeRecord(ex, -1, input, gold->text, ""));
  }

  void Add(const v1::CurationInput& in) {
    const v1::Example& ex = in.example();
    summary.set_examples_received(summary.examples_received() + 1);
    const int64_t candidates = options.label_source() == v1::LABEL_SOURCE_GOLD_ONLY ? 1 : in.samples_size();

    // Whole-record problems: every candidate of the record is dropped as INVALID_RECORD.
    auto invalid = [&](std::string_view field, absl::string_view message) {
      summary.set_received(summary.received() + std::max<int64_t>(candidates, 1));
      const std::string detail = strings::Cat(field, ": ", message);
      if (candidates == 0) {
        Drop(ex, -1, v1::DROP_REASON_INVALID_RECORD, detail);
        return;
      }
      for (int64_t i = 0; i < candidates; ++i) {
        Drop(ex,
             options.label_source() == v1::LABEL_SOURCE_GOLD_ONLY
                 ? -1
                 : in.samples(static_cast<int>(i)).sample_index(),
             v1::DROP_REASON_INVALID_RECORD, detail);
      }
    };
    if (ex.id().empty()) return invalid("example.id", "must not be empty");
    if (absl::StripAsciiWhitespace(ex.input()).empty()) return invalid("example.input", "must not be empty");
    if (absl::Status valid = normalizer.ValidateExample(ex); !valid.ok()) {
      return invalid("example", valid.message());
    }
    const bool has_gold = ex.has_gold() && !absl::StripAsciiWhitespace(ex.gold()).empty();
    v1::LabelSource source = options.label_source();
    if (source == v1::LABEL_SOURCE_UNSPECIFIED) {
      source = has_gold ? v1::LABEL_SOURCE_GOLD : v1::LABEL_SOURCE_SELF_CONSISTENCY;
    }
    if ((source == v1::LABEL_SOURCE_GOLD || source == v1::LABEL_SOURCE_GOLD_ONLY) && !has_gold) {
      return invalid("example.gold", "is required with label_source GOLD");
    }
    std::optional<NormalizedAnswer> gold;
    if (has_gold) {
      absl::StatusOr<NormalizedAnswer> g = normalizer.Normalize(ex, ex.gold());
      if (!g.ok()) return invalid("example.gold", g.status().message());
      gold = *g;
      summary.set_examples_with_gold(summary.examples_with_gold() + 1);
    }
    const std::string input = dataset::StudentInput(ex);
    if (source == v1::LABEL_SOURCE_GOLD_ONLY) return AddGoldOnly(ex, input);

    summary.set_received(summary.received() + in.samples_size());
    // Parse every sample first: teacher accuracy and the vote need all of them.
    struct Candidate {
      const v1::TeacherSample* sample;
      std::optional<ParsedCompletion> parsed;
      std::optional<NormalizedAnswer> answer;
      std::string problem;
    };
    std::vector<Candidate> candidates_list;
    candidates_list.reserve(in.samples_size());
    for (const v1::TeacherSample& s : in.samples()) {
      Candidate c{.sample = &s, .parsed = std::nullopt, .answer = std::nullopt, .problem = ""};
      absl::StatusOr<ParsedCompletion> parsed = ParseCompletion(s);
      if (!parsed.ok()) {
        c.problem = std::string(parsed.status().message());
      } else {
        c.parsed = std::move(*parsed);
        absl::StatusOr<NormalizedAnswer> a = normalizer.Normalize(ex, c.parsed->answer);
        if (a.ok()) {
          c.answer = std::move(*a);
        } else {
          c.problem = strings::Cat("answer \"", c.parsed->answer, "\": ", a.status().message());
        }
      }
      candidates_list.push_back(std::move(c));
    }
    // Teacher accuracy: the first sample's answer against gold.
    if (gold.has_value() && !candidates_list.empty()) {
      const Candidate& first = *std::min_element(candidates_list.begin(), candidates_list.end(),
                                                 [](const Candidate& a, const Candidate& b) {
                                                   return a.sample->sample_index() < b.sample->sample_index();
                                                 });
      if (first.answer.has_value() && normalizer.Matches(*first.answer, *gold)) {
        summary.set_examples_teacher_correct(summary.examples_teacher_correct() + 1);
      }
    }
    // The label.
    std::optional<NormalizedAnswer> label = gold;
    std::string vote_detail;
    if (source == v1::LABEL_SOURCE_SELF_CONSISTENCY) {
      label.reset();
      std::vector<std::pair<const NormalizedAnswer*, int>> votes;
      int valid = 0;
      for (const Candidate& c : candidates_list) {
        if (!c.answer.has_value()) continue;
        ++valid;
        auto it = std::find_if(votes.begin(), votes.end(),
                               [&](const auto& v) { return normalizer.Matches(*v.first, *c.answer); });
        if (it == votes.end()) {
          votes.emplace_back(&*c.answer, 1);
        } else {
          ++it->second;
        }
      }
      std::stable_sort(votes.begin(), votes.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      const double min_agreement = options.min_agreement() > 0 ? options.min_agreement() : 0.5;
      if (!votes.empty() && (votes.size() == 1 || votes[0].second > votes[1].second) &&
          static_cast<double>(votes[0].second) >= min_agreement * valid) {
        label = *votes[0].first;
      } else {
        vote_detail =
            votes.empty() ? "" : strings::Cat("top answer has ", votes[0].second, " of ", valid, " votes");
      }
    }

    const v1::CurationFilters& f = options.filters();
    const bool label_only = options.format() == v1::OUTPUT_FORMAT_LABEL_ONLY;
    if (near != nullptr) near->Clear();
    int kept_here = 0;
    for (Candidate& c : candidates_list) {
      const int index = c.sample->sample_index();
      if (!c.answer.has_value()) {
        Drop(ex, index, v1::DROP_REASON_UNPARSEABLE, c.problem, c.parsed.has_value() ? c.parsed->answer : "");
        continue;
      }
      if (source == v1::LABEL_SOURCE_GOLD && !f.keep_wrong_answers() &&
          !normalizer.Matches(*c.answer, *label)) {
        Drop(ex, index, v1::DROP_REASON_WRONG_ANSWER, "the answer differs from gold", c.answer->text,
             label->text);
        continue;
      }
      if (source == v1::LABEL_SOURCE_SELF_CONSISTENCY) {
        if (!label.has_value()) {
          Drop(ex, index, v1::DROP_REASON_NO_CONSENSUS, vote_detail, c.answer->text);
          continue;
        }
        if (!normalizer.Matches(*c.answer, *label)) {
          Drop(ex, index, v1::DROP_REASON_DISAGREES_WITH_VOTE, "the answer differs from the majority",
               c.answer->text, label->text);
          continue;
        }
      }
      const std::string& rationale = c.parsed->rationale;
      if (!label_only) {
        const int64_t words = CountWords(rationale);
        if (words == 0) {
          Drop(ex, index, v1::DROP_REASON_RATIONALE_EMPTY, "no rationale before the answer");
          continue;
        }
        if (f.min_rationale_tokens() > 0 && words < f.min_rationale_tokens()) {
          Drop(ex, index, v1::DROP_REASON_RATIONALE_TOO_SHORT,
               strings::Cat(words, " tokens, minimum ", f.min_rationale_tokens()));
          continue;
        }
        if (f.max_rationale_tokens() > 0 && words > f.max_rationale_tokens()) {
          Drop(ex, index, v1::DROP_REASON_RATIONALE_TOO_LONG,
               strings::Cat(words, " tokens, maximum ", f.max_rationale_tokens()));
          continue;
        }
        if (!f.keep_restating_rationales() && RestatesAnswer(rationale, c.answer->text)) {
          Drop(ex, index, v1::DROP_REASON_RATIONALE_RESTATES_ANSWER, "the rationale explains nothing");
          continue;
        }
      }
      // Duplicates are judged against records already kept, so a sample joins the duplicate sets
      // only once it is kept.
      const Fingerprint128 fingerprint =
          exact.Fingerprint(strings::Cat(input, "\x1f", label->text), label_only ? "" : rationale);
      if (exact.Contains(fingerprint)) {
        Drop(ex, index, v1::DROP_REASON_EXACT_DUPLICATE, "an identical record was already kept");
        continue;
      }
      std::string normalized_rationale;
      if (near != nullptr && !label_only) {
        normalized_rationale = NormalizeForDedup(rationale);
        if (std::optional<size_t> twin = near->Find(normalized_rationale); twin.has_value()) {
          Drop(ex, index, v1::DROP_REASON_NEAR_DUPLICATE,
               strings::Cat("near-duplicate of an earlier rationale of this example (#", *twin, ")"));
          continue;
        }
      }
      if (f.max_kept_per_example() > 0 && kept_here >= f.max_kept_per_example()) {
        Drop(ex, index, v1::DROP_REASON_EXAMPLE_CAP,
             strings::Cat("already ", kept_here, " records for this example"));
        continue;
      }
      exact.Insert(fingerprint);
      if (near != nullptr && !label_only) near->Insert(normalized_rationale);
      ++kept_here;
      v1::TrainingRecord record = MakeRecord(ex, index, input, label->text, rationale);
      if (options.keep_logprobs()) *record.mutable_teacher_logprobs() = c.sample->logprobs();
      Keep(std::move(record));
    }
    if (kept_here > 0) summary.set_examples_with_records(summary.examples_with_records() + 1);
  }
};

Curation::Curation(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Curation::~Curation() = default;

absl::StatusOr<std::unique_ptr<Curation>> Curation::Create(const v1::CurateConfig& config, Emit emit) {
  const v1::TaskSpec& task = config.task();
  const v1::CurationOptions& o = config.options();
  const v1::CurationFilters& f = o.filters();
  auto bad = [](std::string_view field, absl::string_view message) {
    return absl::InvalidArgumentError(strings::Cat(field, ": ", message));
  };
  if (task.type() == v1::TASK_TYPE_UNSPECIFIED) return bad("config.task.type", "is required");
  if (task.type() == v1::TASK_TYPE_CLASSIFICATION && task.labels_size() < 2) {
    return bad("config.task.labels", "a classification task needs at least 2 labels");
  }
  if (task.numeric_tolerance() < 0 || task.numeric_tolerance() >= 1) {
    return bad("config.task.numeric_tolerance", "must be in [0, 1)");
  }
  if (o.format() == v1::OUTPUT_FORMAT_UNSPECIFIED) return bad("config.options.format", "is required");
  if (o.label_source() == v1::LABEL_SOURCE_GOLD_ONLY && o.format() != v1::OUTPUT_FORMAT_LABEL_ONLY) {
    return bad("config.options.label_source", "GOLD_ONLY needs format LABEL_ONLY");
  }
  if (o.min_agreement() < 0 || o.min_agreement() > 1)
    return bad("config.options.min_agreement", "must be in [0, 1]");
  if (f.min_rationale_tokens() < 0) return bad("config.options.filters.min_rationale_tokens", "must be >= 0");
  if (f.max_rationale_tokens() < 0 ||
      (f.max_rationale_tokens() > 0 && f.max_rationale_tokens() < f.min_rationale_tokens())) {
    return bad("config.options.filters.max_rationale_tokens", "must be 0 or >= min_rationale_tokens");
  }
  if (f.near_duplicate_threshold() < 0 || f.near_duplicate_threshold() > 1) {
    return bad("config.options.filters.near_duplicate_threshold", "must be in (0, 1], or 0 for off");
  }
  if (f.shingle_words() < 0 || f.shingle_words() > 16) {
    return bad("config.options.filters.shingle_words", "must be in [1, 16], or 0 for the default 3");
  }
  if (f.max_kept_per_example() < 0) return bad("config.options.filters.max_kept_per_example", "must be >= 0");
  absl::StatusOr<AnswerNormalizer> normalizer = AnswerNormalizer::Create(task);
  if (!normalizer.ok()) return bad("config.task", normalizer.status().message());
  auto impl = std::make_unique<Impl>(std::move(*normalizer));
  impl->task = task;
  impl->options = o;
  impl->emit = std::move(emit);
  if (f.near_duplicate_threshold() > 0) {
    absl::StatusOr<std::unique_ptr<NearDuplicateIndex>> near = NearDuplicateIndex::Create(
        NearDupOptions{.threshold = f.near_duplicate_threshold(),
                       .shingle_words = f.shingle_words() > 0 ? f.shingle_words() : 3,
                       .seed = o.seed()});
    if (!near.ok()) return bad("config.options.filters", near.status().message());
    impl->near = std::move(*near);
  }
  return std::unique_ptr<Curation>(new Curation(std::move(impl)));
}

void Curation::Add(const v1::CurationInput& input) { impl_->Add(input); }

void Curation::AddMalformed(std::string_view id, std::string_view detail) {
  v1::Example ex;
  ex.set_id(std::string(id));
  impl_->summary.set_received(impl_->summary.received() + 1);
  impl_->Drop(ex, -1, v1::DROP_REASON_INVALID_RECORD, std::string(detail));
}

v1::CurationSummary Curation::Finish() {
  v1::CurationSummary& s = impl_->summary;
  for (const auto& [reason, count] : impl_->drops) {
    v1::DropCount* d = s.add_dropped_by_reason();
    d->set_reason(reason);
    d->set_count(count);
  }
  if (s.examples_with_gold() > 0) {
    s.set_teacher_accuracy(static_cast<double>(s.examples_teacher_correct()) /
                           static_cast<double>(s.examples_with_gold()));
  }
  v1::CurateResponse r;
  *r.mutable_summary() = s;
  impl_->emit(std::move(r));
  return s;
}

}  // namespace distill::curator
