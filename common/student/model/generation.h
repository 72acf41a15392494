#ifndef DISTILL_COMMON_STUDENT_MODEL_GENERATION_H_
#define DISTILL_COMMON_STUDENT_MODEL_GENERATION_H_

// Text generation with a T5Model: the encoder runs once per batch, the decoder one position at a time over
// a KV cache (T5Model::DecodeStep). Greedy decoding, sampling (temperature, top-k, top-p, seed) and beam
// search, batched over padded inputs; each sequence stops at its EOS token or after max_new_tokens.
//
// Thread-safety: Generate only reads the model; concurrent calls on one model in eval mode are safe (see
// t5.h).

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/student/model/t5.h"
#include "ATen/core/Generator.h"
#include "torch/types.h"

namespace distill::student {

struct GenerationOptions {
  // Most tokens generated per sequence (EOS included); must be >= 1.
  int max_new_tokens = 128;
  // 0 = greedy (argmax); > 0 = sample from softmax(logits / temperature). Must be >= 0.
  float temperature = 0;
  // When sampling, keep only the top_k most likely tokens; 0 = no limit. Must be >= 0.
  int top_k = 0;
  // When sampling, keep the smallest set of most likely tokens whose probability reaches top_p (nucleus
  // sampling); 1 = no limit. Must be in (0, 1].
  float top_p = 1;
  // Seed of the sampling generator: the same seed, model and inputs give the same output. Unset: libtorch's
  // global generator.
  std::optional<uint64_t> seed;
  // > 1: beam search with this many beams, scored by log-probability divided by the sequence length
  // (Hugging Face's default length_penalty 1.0). Cannot be combined with sampling. Must be >= 1.
  int num_beams = 1;
  // Token that ends a sequence.
  int eos_id = 1;
  // First decoder input token (T5's decoder_start_token_id, the pad token).
  int decoder_start_id = 0;
};

// Generates one token sequence per row of input_ids [B, S] int64 with attention_mask [B, S] (nonzero =
// real token; rows may be right-padded). Each returned sequence excludes the decoder start token and ends
// with eos_id if the model produced it (nothing after it), or is max_new_tokens long if it did not.
// Errors: INVALID_ARGUMENT naming the field for bad options or input shapes; INTERNAL with libtorch's
// message when libtorch fails (e.g. token ids outside the vocabulary).
absl::StatusOr<std::vector<std::vector<int>>> Generate(T5Model& model, const torch::Tensor& input_ids,
                                                       const torch::Tensor& attention_mask,
                                                       const GenerationOptions& options);

// Draws one token per row of logits [N, V] float32 from softmax(logits / options.temperature) after top-k
// and top-p filtering (options.temperature must be > 0). `generator` unset = libtorch's global generator.
// Returns int64 [N]. Used by Generate, and by servers that decode rows with different options in one batch.
torch::Tensor SampleTokens(const torch::Tensor& logits, const GenerationOptions& options,
                           const std::optional<at::Generator>& generator);

namespace generation_internal {

// Beam search for any options.num_beams >= 1 (Generate uses it only for num_beams > 1); exposed so tests
// can check that one beam reproduces greedy decoding. Ignores the sampling options.
absl::StatusOr<std::vector<std::vector<int>>> BeamSearch(T5Model& model, const torch::Tensor& input_ids,
                                                         const torch::Tensor& attention_mask,
                                                         const GenerationOptions& options);

}  // namespace generation_internal
}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_MODEL_GENERATION_H_
