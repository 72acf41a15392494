#ifndef DISTILL_COMMON_STUDENT_MODEL_T5_H_
#define DISTILL_COMMON_STUDENT_MODEL_T5_H_

// The student: a T5 encoder-decoder (original T5 and v1.1 / flan layouts) as a libtorch module, numerically
// following Hugging Face transformers' T5ForConditionalGeneration:
//   - T5 layer norm: RMS only (x * rsqrt(mean(x^2) + eps) * weight, computed in float32), no bias;
//   - relative position bias with log-spaced buckets, bidirectional in the encoder and causal in the
//     decoder, owned by block 0 of each stack and shared by all its blocks;
//   - attention scores are not scaled by 1/sqrt(d_kv) (T5 folds that into the initialisation);
//   - feed-forward "relu" (wi -> relu -> wo) or "gated-gelu" (gelu_new(wi_0 x) * wi_1 x -> wo);
//   - no biases; one shared embedding; tied embeddings give logits = (h * d_model^-0.5) @ shared^T, untied
//     ones a separate lm_head;
//   - dropout after the embeddings, inside attention and feed-forward, and on every residual branch, active
//     only in training mode (`model.train()`; call `model.eval()` for deterministic outputs).
//
// Under autograd the layer norm and the attention core are single autograd nodes (training_ops.h:
// RmsNorm, AttentionCore; their forward runs the plain libtorch kernels, so values are bit-identical), and
// dropout is training_ops.h's Dropout. In training mode q/k/v, k/v and wi_0/wi_1 are also concatenated
// into one matmul each, which changes float rounding only; eval mode keeps separate projections, so eval
// outputs are bit-identical to the plain libtorch ops.
//
// named_parameters() keys are exactly Hugging Face's names (T5ParameterShapes in
// common/student/checkpoint/hf_names.h), e.g. "encoder.block.0.layer.0.SelfAttention.q.weight", so weight
// I/O (t5_weights.h) is a name-for-name copy.
//
// Thread-safety: a T5Model is thread-compatible. Concurrent Encode/Decode/Forward calls on a model in eval
// mode under torch::NoGradGuard are safe; anything that mutates parameters (an optimiser step, LoadWeights)
// needs exclusive access.
//
// Tensor preconditions (violations throw c10::Error from libtorch, as any libtorch op does): ids are int64
// within [0, vocab_size); masks are [B, S] of any numeric or bool dtype, nonzero = attend; sequences are at
// least one token long.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/student/checkpoint/hf_config.h"
#include "torch/nn/module.h"
#include "torch/types.h"

namespace distill::student {

namespace t5_internal {
class Stack;
class EmbeddingModule;
class LinearModule;
}  // namespace t5_internal

// Incremental decoding state for T5Model::DecodeStep, one entry per decoder layer. Built by
// T5Model::InitCache. Copying a DecoderCache shares its storage (copies are not independent; see
// ConcatDecoderCaches). The tensor fields are read-only views for callers; the cache owns storage with spare
// room behind them, so a step appends its keys and values in place (no copy of the cache per step) and
// continuous batching adds and removes rows by copying only those rows.
struct DecoderCache {
  // Self-attention keys and values of every position decoded so far, [B, num_heads, length, d_kv]; one
  // position is appended per DecodeStep.
  std::vector<torch::Tensor> self_key;
  std::vector<torch::Tensor> self_value;
  // Cross-attention keys and values projected once from the encoder output, [B, num_heads, S, d_kv].
  std::vector<torch::Tensor> cross_key;
  std::vector<torch::Tensor> cross_value;
  // Additive encoder mask [B, 1, 1, S]: 0 where attended, the lowest float where padded.
  torch::Tensor cross_bias;
  // Number of rows.
  int64_t batch = 0;
  // Number of self-attention columns in the cache (positions decoded so far by the longest-running row).
  // Rows decoded in lockstep all have this many positions, and the next DecodeStep's query position is
  // `length`.
  int64_t length = 0;
  // Continuous batching (AppendRows): rows that joined a running batch later have fewer positions. Rows
  // are right-aligned, every row's newest key in the last column, so the relative position of column c to
  // the query of the next step is c - length for every row; this additive mask [B, 1, 1, length] holds
  // the lowest float on the columns before a row's first position and 0 elsewhere. Undefined when no row
  // has such columns.
  torch::Tensor self_mask;

  // Keeps, in this order, the batch rows `rows` (int64 indices into the current batch, repeats allowed):
  // how beam search follows its surviving beams. Copies the whole cache.
  void SelectRows(const torch::Tensor& rows);

  // Continuous batching: appends the rows of `fresh` (a cache from InitCache, length 0) after the current
  // ones; their self-attention columns so far are masked, their encoder inputs may be longer or shorter
  // (the shorter are padded with masked columns). Each row then decodes exactly as it would alone, up to
  // float rounding. Copies only the new rows, unless the storage must grow.
  void AppendRows(const DecoderCache& fresh);

  // Continuous batching: removes row `row` by moving the last row into its place (the order of the other
  // rows is kept except for that one move). Copies one row.
  void RemoveRow(int64_t row);

  // Drops the leading self-attention columns that every row masks (left behind by removed rows) once they
  // are at least half of the cache, so the cache stops growing with the rows that came and went. Outputs
  // do not change.
  void TrimPadding();

  // Storage behind the views (rows and columns beyond batch, length and the longest encoder input are
  // spare). Internal to T5Model and the functions above.
  struct Storage {
    std::vector<torch::Tensor> self_key, self_value;    // [rows, H, columns, d_kv]
    std::vector<torch::Tensor> cross_key, cross_value;  // [rows, H, source, d_kv]
    torch::Tensor cross_bias;                           // [rows, 1, 1, source]
    torch::Tensor self_mask;                            // [rows, 1, 1, columns] or undefined
  };
  Storage storage;

  // Makes room for self-attention column `length` (growing the storage when full) and unmasks it for
  // every row. DecodeStep calls it first.
  void ReserveColumn();
  // Appends one self-attention column (this step's keys and values [B, H, 1, d_kv] for layer `layer`) at
  // column `length`; DecodeStep calls it for every layer, then advances `length`.
  void AppendColumn(size_t layer, const torch::Tensor& key, const torch::Tensor& value);
  // Resets the view fields from the storage.
  void RefreshViews();
};

// A cache holding the rows of `a` followed by those of `b` (which must not have decoded yet): AppendRows on
// a copy of `a`'s storage, leaving `a` as it was.
DecoderCache ConcatDecoderCaches(const DecoderCache& a, const DecoderCache& b);

class T5Model : public torch::nn::Module {
 public:
  // Validates `config` (ValidateT5Config; INVALID_ARGUMENT listing every problem) and builds a float32
  // model on the CPU initialised as transformers' T5PreTrainedModel._init_weights does (initializer_factor
  // 1.0): shared and lm_head N(0, 1); q N(0, (d_model * d_kv)^-0.5); k, v and the relative bias
  // N(0, d_model^-0.5); o N(0, (num_heads * d_kv)^-0.5); wi* N(0, d_model^-0.5); wo N(0, d_ff^-0.5);
  // layer norms 1. Draws from libtorch's global generator (seed it with torch::manual_seed). Also turns on
  // flush-to-zero for denormals process-wide (at::globalContext().setFlushDenormal), which keeps CPU
  // training from slowing down on tiny values. The model starts in training mode, like every module.
  static absl::StatusOr<std::shared_ptr<T5Model>> Create(const T5Config& config);

  const T5Config& config() const { return config_; }

  // input_ids [B, S] int64, attention_mask [B, S] -> encoder hidden states [B, S, d_model] float32.
  // Positions with mask 0 are never attended to, so they do not influence unmasked outputs (their own
  // outputs are unspecified).
  torch::Tensor Encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

  // decoder_input_ids [B, T] int64 (starting with decoder_start_token_id), encoder_hidden [B, S, d_model],
  // encoder_mask [B, S] -> logits [B, T, vocab_size] float32. Causal: logits at position t depend only on
  // decoder_input_ids[:, 0..t].
  torch::Tensor Decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_hidden,
                       const torch::Tensor& encoder_mask);

  // Decode(decoder_input_ids, Encode(input_ids, attention_mask), attention_mask).
  torch::Tensor Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& decoder_input_ids);

  // Starts incremental decoding: projects encoder_hidden [B, S, d_model] (with encoder_mask [B, S]) into
  // every decoder layer's cross-attention keys and values, once. The cache starts empty (length 0).
  // Runs without autograd (InferenceMode), so the result cannot be used for training.
  DecoderCache InitCache(const torch::Tensor& encoder_hidden, const torch::Tensor& encoder_mask);

  // Decodes one position: next_tokens [B, 1] int64 is the token at position cache.length (the decoder start
  // token first); appends its self-attention keys and values to `cache` and returns that position's logits
  // [B, vocab_size] float32. Equal (up to float rounding) to Decode() of all tokens fed so far at the last
  // position: the relative position bias uses the query's true position against every cached key.
  // Runs without autograd (InferenceMode). Call model.eval() first for deterministic outputs.
  torch::Tensor DecodeStep(const torch::Tensor& next_tokens, DecoderCache& cache);

  // Token-level cross entropy of logits [B, T, V] against labels [B, T] int64, ignoring labels equal to
  // -100 (Hugging Face's convention for padding), averaged over the remaining tokens. A scalar; NaN when
  // every label is -100.
  static torch::Tensor Loss(const torch::Tensor& logits, const torch::Tensor& labels);

 private:
  explicit T5Model(const T5Config& config);
  void InitWeights();
  torch::Tensor Project(const torch::Tensor& hidden) const;  // final decoder hidden -> logits

  T5Config config_;
  std::shared_ptr<t5_internal::EmbeddingModule> shared_;
  std::shared_ptr<t5_internal::Stack> encoder_;
  std::shared_ptr<t5_internal::Stack> decoder_;
  std::shared_ptr<t5_internal::LinearModule> lm_head_;  // null when tie_word_embeddings
};

// Hugging Face's T5 relative position bucketing (T5Attention._relative_position_bucket), elementwise on
// an int64 tensor of relative positions (memory position - query position). Bidirectional: half the
// buckets for positive offsets; causal (bidirectional = false): positive offsets (the future) fall in
// bucket 0. Within each half, offsets below half of it get exact buckets, larger ones log-spaced buckets up
// to max_distance, beyond which they share the last bucket. Returns int64 buckets in [0, num_buckets).
torch::Tensor RelativePositionBucket(const torch::Tensor& relative_position, bool bidirectional,
                                     int64_t num_buckets, int64_t max_distance);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_MODEL_T5_H_
