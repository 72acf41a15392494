#ifndef DISTILL_COMMON_STUDENT_TOKENIZER_TOKENIZER_H_
#define DISTILL_COMMON_STUDENT_TOKENIZER_TOKENIZER_H_

// The student's tokenizer: a SentencePiece model with T5's conventions.
//
//   ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Load(checkpoint_dir + "/spiece.model"));
//   std::vector<int> ids = tokenizer->Encode("How many apples?");   // ends with kEosId
//   Tokenizer::Batch batch = tokenizer->EncodeBatch(texts, /*max_length=*/512);
//   std::string text = tokenizer->Decode(generated_ids);
//
// T5 ids: pad = 0 (also the decoder start token), eos = 1, unk = 2, no bos. Load() refuses models with
// other special ids; Train() produces models with these.
//
// Vocabulary vs. embedding size: vocab_size() is the number of SentencePiece pieces. Hugging Face's T5
// tokenizer appends `sentinel_count()` sentinels <extra_id_0..N-1> after them (100 for T5; they are not
// in spiece.model), and the model's embedding matrix may be larger still: t5-small has 32000 pieces +
// 100 sentinels = 32100 tokens and a 32128-row embedding (padded to a multiple of 128). Size the model
// from its config, not from vocab_size().

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace distill::student {

namespace internal {
class SpmProcessor;
}  // namespace internal

// How Tokenizer::Train builds a unigram SentencePiece model.
struct TrainOptions {
  // Number of pieces wanted, the three special tokens included. Must be > 3.
  int vocab_size = 8000;
  // false: when the corpus cannot supply vocab_size pieces, train a smaller vocabulary (check
  // vocab_size() afterwards). true: fail with INVALID_ARGUMENT naming the largest size that would work.
  bool hard_vocab_limit = false;
  // Fraction of the corpus's characters the vocabulary must cover, in (0, 1]; rarer characters become
  // unk. 1.0 keeps every character (right for English and digits).
  double character_coverage = 1.0;
  // Splits numbers into single digits ("123" -> "1" "2" "3"). T5's own vocabulary does not.
  bool split_digits = false;
  // Training threads. With 1 (the default) training is deterministic: the same texts and options give a
  // byte-identical model. More threads may change floating-point sums and so the model.
  int num_threads = 1;
};

// SentencePiece runs inside a module this library loads on first use, isolated from the process's
// own protobuf (see sentencepiece_backend.h); if that fails, Load() and Train() return INTERNAL.
//
// Thread-safety: after Load()/Train() returns, the const methods (Encode, EncodeBatch, Decode, the
// accessors) may be called concurrently. SetSentinelCount() must not race with anything.
class Tokenizer {
 public:
  static constexpr int kPadId = 0;
  static constexpr int kEosId = 1;
  static constexpr int kUnkId = 2;

  // Token ids of a batch, row-major: row r is ids[r * cols .. r * cols + cols).
  struct Batch {
    std::vector<int> ids;   // rows * cols ids, padded with kPadId.
    std::vector<int> mask;  // rows * cols; 1 for a real token, 0 for padding.
    int rows = 0;
    int cols = 0;
  };

  // Loads a SentencePiece model file (a checkpoint's spiece.model). NOT_FOUND if the file does not
  // exist; INVALID_ARGUMENT if it is not a readable SentencePiece model; FAILED_PRECONDITION if its
  // special ids are not T5's (pad 0, eos 1, unk 2). Every message names the path.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& spiece_model_path);

  // Same as Load, from the bytes of a model file; `source` names them in error messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSerialized(std::string serialized,
                                                                     std::string_view source);

  // Trains a unigram model with T5's special ids on `texts` (one sentence or document each), in memory.
  // INVALID_ARGUMENT for no texts, bad options, or a corpus too small for a hard vocab_size (the message
  // says which size would work).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Train(const std::vector<std::string>& texts,
                                                          const TrainOptions& options);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Writes SerializedModel() to `path` atomically (a temporary file beside it, then rename), so the
  // file is either the old one or the complete new one.
  absl::Status Save(const std::string& path) const;

  // The model file's bytes, as loaded or trained.
  const std::string& SerializedModel() const { return serialized_; }

  // Number of SentencePiece pieces; ids [0, vocab_size()) are pieces.
  int vocab_size() const;

  // Sentinels <extra_id_0..count-1> that follow the pieces (Hugging Face T5 adds 100). 0 by default.
  int sentinel_count() const { return sentinel_count_; }
  // INVALID_ARGUMENT if `count` is negative.
  absl::Status SetSentinelCount(int count);
  // Id of <extra_id_`index`>: Hugging Face numbers them downwards from the end, so <extra_id_0> is
  // vocab_size() + sentinel_count() - 1. Returns -1 if index is not in [0, sentinel_count()).
  int SentinelId(int index) const;

  // Token ids of `text`, followed by kEosId when `add_eos` (as T5 does for inputs and labels). Text
  // that is not valid UTF-8 does not fail: SentencePiece's normalizer turns bad bytes into unk.
  std::vector<int> Encode(std::string_view text, bool add_eos = true) const;

  // Encodes every text with eos. `max_length` > 0 truncates a row to that many ids, its last still
  // kEosId; `max_length` <= 0 never truncates. Rows are padded with kPadId to the longest row when
  // `pad_to_longest`, otherwise to `max_length` (pad_to_longest is implied when max_length <= 0).
  Batch EncodeBatch(const std::vector<std::string>& texts, int max_length,
                    bool pad_to_longest = true) const;

  // Text of `ids`, stopping at the first kEosId and skipping, as Hugging Face's
  // skip_special_tokens does, pad, unk, other control pieces, sentinels and ids outside
  // [0, vocab_size()). Never fails.
  std::string Decode(const std::vector<int>& ids) const;

  // The text of piece `id` as stored in the model, with U+2581 ("\u2581", kWordStart) marking a word
  // start; "<extra_id_N>" for sentinels; empty for ids outside [0, vocab_size() + sentinel_count()).
  std::string IdToPiece(int id) const;
  // The id of the piece (or sentinel) spelled exactly `piece`; kUnkId when there is none.
  int PieceToId(std::string_view piece) const;

  // SentencePiece's word-start marker, U+2581 in UTF-8.
  static constexpr std::string_view kWordStart = "\xe2\x96\x81";

 private:
  Tokenizer(std::unique_ptr<internal::SpmProcessor> processor, std::string serialized);

  std::unique_ptr<internal::SpmProcessor> processor_;
  std::string serialized_;
  int sentinel_count_ = 0;
};

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_TOKENIZER_TOKENIZER_H_
