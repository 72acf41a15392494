#ifndef DISTILL_SERVICES_INFERENCE_SERVING_OUTPUT_TEXT_H_
#define DISTILL_SERVICES_INFERENCE_SERVING_OUTPUT_TEXT_H_

// Turns a request's decoded token ids into the text a client sees: streamed chunks while decoding, then the
// final rationale and answer. Three layouts, by objective:
//
//   kAnswer           one segment, the answer (STANDARD; STEP_BY_STEP's "predict: " task)
//   kExplainAnswer    segment 0 the rationale ("explain: "), segment 1 the answer (STEP_BY_STEP with
//                     include_rationale)
//   kCot              one segment "<rationale> --> <answer> END" (COT_SEQUENCE): the rationale streams (when
//                     asked for) up to the separator; the answer is sent whole at the end, since only then
//                     is it certain which "-->" is the last one
//
// Guarantees: every chunk's text is valid UTF-8 (bytes of a character split across tokens are held back
// until complete; invalid bytes become U+FFFD); the chunks of one output segment concatenate to that
// segment's final text (rationale() or answer()) for ordinary outputs; every token id appears in exactly
// one chunk of the segment it was decoded in (or none, for the CoT answer when its text is empty).
//
// Not thread-safe; one per request.

#include <string>
#include <vector>

#include "common/student/tokenizer/tokenizer.h"
#include "distill/v1/inference.pb.h"

namespace distill::inference {

enum class OutputLayout { kAnswer, kExplainAnswer, kCot };

class OutputText {
 public:
  // `stream_rationale`: send rationale chunks (kExplainAnswer, kCot); otherwise only answer chunks.
  OutputText(const student::Tokenizer& tokenizer, OutputLayout layout, bool stream_rationale);

  // Tokens appended to engine segment `segment`; returns the chunks that are ready (possibly none).
  std::vector<v1::TokenChunk> Add(int segment, const std::vector<int>& tokens);
  // Generation ended with `outputs` (every engine segment's tokens); returns the remaining chunks and sets
  // rationale() and answer().
  std::vector<v1::TokenChunk> Finish(const std::vector<std::vector<int>>& outputs);

  const std::string& rationale() const { return rationale_; }
  const std::string& answer() const { return answer_; }

 private:
  struct Segment {
    std::vector<int> tokens;
    size_t tokens_sent = 0;  // tokens already in a chunk
    std::string sent;        // raw text already sent
  };
  v1::OutputSegment KindOf(int segment) const;
  bool Streams(int segment) const;
  // The chunk for the text of `segment` beyond what was sent, up to `visible`; none if nothing new or
  // `visible` does not extend what was sent.
  void Emit(int segment, const std::string& visible, std::vector<v1::TokenChunk>* out);

  const student::Tokenizer& tokenizer_;
  const OutputLayout layout_;
  const bool stream_rationale_;
  std::vector<Segment> segments_;
  std::string rationale_;
  std::string answer_;
};

}  // namespace distill::inference

#endif  // DISTILL_SERVICES_INFERENCE_SERVING_OUTPUT_TEXT_H_
