#include "services/inference/serving/output_text.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/dataset/student_text.h"
#include "common/strings/utf8.h"

namespace distill::inference {
namespace {

constexpr std::string_view kArrow = "-->";

std::string Trimmed(std::string_view text) { return std::string(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size()))); }

}  // namespace

OutputText::OutputText(const student::Tokenizer& tokenizer, OutputLayout layout, bool stream_rationale)
    : tokenizer_(tokenizer),
      layout_(layout),
      stream_rationale_(stream_rationale),
      segments_(layout == OutputLayout::kExplainAnswer ? 2 : 1) {}

v1::OutputSegment OutputText::KindOf(int segment) const {
  if (layout_ == OutputLayout::kCot) return v1::OUTPUT_SEGMENT_RATIONALE;  // the answer is sent by Finish
  if (layout_ == OutputLayout::kExplainAnswer && segment == 0) return v1::OUTPUT_SEGMENT_RATIONALE;
  return v1::OUTPUT_SEGMENT_ANSWER;
}

bool OutputText::Streams(int segment) const {
  return KindOf(segment) == v1::OUTPUT_SEGMENT_ANSWER || stream_rationale_;
}

void OutputText::Emit(int segment, const std::string& visible, std::vector<v1::TokenChunk>* out) {
  Segment& s = segments_[segment];
  const std::string complete = visible.substr(0, strings::CompleteUtf8Prefix(visible));
  if (complete.size() <= s.sent.size() || !absl::StartsWith(complete, s.sent)) return;
  v1::TokenChunk& chunk = out->emplace_back();
  chunk.set_segment(KindOf(segment));
  chunk.set_text(strings::SanitizeUtf8(std::string_view(complete).substr(s.sent.size())));
  for (size_t i = s.tokens_sent; i < s.tokens.size(); ++i) chunk.add_token_ids(s.tokens[i]);
  s.tokens_sent = s.tokens.size();
  s.sent = complete;
}

std::vector<v1::TokenChunk> OutputText::Add(int segment, const std::vector<int>& tokens) {
  std::vector<v1::TokenChunk> out;
  if (segment < 0 || segment >= static_cast<int>(segments_.size())) return out;
  Segment& s = segments_[segment];
  s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
  if (!Streams(segment)) return out;
  const std::string text = tokenizer_.Decode(s.tokens);
  if (layout_ != OutputLayout::kCot) {
    Emit(segment, text, &out);
    return out;
  }
  // CoT: the rationale is the text before the first "-->"; until one appears, hold back the last few
  // bytes, which may be its beginning, and trailing spaces, which the final rationale trims.
  const size_t arrow = text.find(kArrow);
  std::string visible = arrow != std::string::npos ? text.substr(0, arrow)
                        : text.size() > kArrow.size() ? text.substr(0, text.size() - kArrow.size())
                                                      : std::string();
  visible = std::string(absl::StripTrailingAsciiWhitespace(absl::StripLeadingAsciiWhitespace(visible)));
  Emit(segment, visible, &out);
  return out;
}

std::vector<v1::TokenChunk> OutputText::Finish(const std::vector<std::vector<int>>& outputs) {
  std::vector<v1::TokenChunk> out;
  for (size_t i = 0; i < segments_.size() && i < outputs.size(); ++i) segments_[i].tokens = outputs[i];
  switch (layout_) {
    case OutputLayout::kAnswer:
      answer_ = strings::SanitizeUtf8(Trimmed(tokenizer_.Decode(segments_[0].tokens)));
      Emit(0, tokenizer_.Decode(segments_[0].tokens), &out);
      break;
    case OutputLayout::kExplainAnswer:
      rationale_ = strings::SanitizeUtf8(Trimmed(tokenizer_.Decode(segments_[0].tokens)));
      answer_ = strings::SanitizeUtf8(Trimmed(tokenizer_.Decode(segments_[1].tokens)));
      if (stream_rationale_) Emit(0, tokenizer_.Decode(segments_[0].tokens), &out);
      Emit(1, tokenizer_.Decode(segments_[1].tokens), &out);
      break;
    case OutputLayout::kCot: {
      const std::string text = tokenizer_.Decode(segments_[0].tokens);
      rationale_ = strings::SanitizeUtf8(dataset::CotRationale(text));
      answer_ = strings::SanitizeUtf8(dataset::CotAnswer(text));
      if (stream_rationale_) Emit(0, dataset::CotRationale(text), &out);
      Segment& s = segments_[0];
      if (!answer_.empty() || s.tokens_sent < s.tokens.size()) {
        v1::TokenChunk& chunk = out.emplace_back();
        chunk.set_segment(v1::OUTPUT_SEGMENT_ANSWER);
        chunk.set_text(answer_);
        for (size_t i = s.tokens_sent; i < s.tokens.size(); ++i) chunk.add_token_ids(s.tokens[i]);
        s.tokens_sent = s.tokens.size();
      }
      break;
    }
  }
  return out;
}

}  // namespace distill::inference
