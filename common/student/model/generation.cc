#include "common/student/model/generation.h"

#include <algorithm>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "ATen/CPUGeneratorImpl.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "c10/core/InferenceMode.h"
#include "c10/util/Exception.h"
#include "common/status/macros.h"

namespace distill::student {
namespace {

absl::Status Validate(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const GenerationOptions& options) {
  std::vector<std::string> problems;
  if (options.max_new_tokens < 1) {
    problems.push_back(absl::StrCat("max_new_tokens: must be >= 1, got ", options.max_new_tokens));
  }
  if (!(options.temperature >= 0)) {
    problems.push_back(absl::StrCat("temperature: must be >= 0, got ", options.temperature));
  }
  if (options.top_k < 0) problems.push_back(absl::StrCat("top_k: must be >= 0, got ", options.top_k));
  if (!(options.top_p > 0 && options.top_p <= 1)) {
    problems.push_back(absl::StrCat("top_p: must be in (0, 1], got ", options.top_p));
  }
  if (options.num_beams < 1) {
    problems.push_back(absl::StrCat("num_beams: must be >= 1, got ", options.num_beams));
  } else if (options.num_beams > 1 && options.temperature > 0) {
    problems.push_back(absl::StrCat("num_beams: beam search (", options.num_beams,
                                    " beams) cannot be combined with sampling (temperature ",
                                    options.temperature, ")"));
  }
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.scalar_type() != torch::kInt64 ||
      input_ids.size(1) < 1) {
    problems.push_back("input_ids: must be a [batch, length >= 1] int64 tensor");
  } else if (!attention_mask.defined() || attention_mask.sizes() != input_ids.sizes()) {
    problems.push_back("attention_mask: must have the shape of input_ids");
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("Generate: ", absl::StrJoin(problems, "; ")));
}

std::vector<std::vector<int>> GreedyOrSample(T5Model& model, const torch::Tensor& input_ids,
                                             const torch::Tensor& attention_mask,
                                             const GenerationOptions& options) {
  const int64_t batch = input_ids.size(0);
  std::vector<std::vector<int>> out(batch);
  if (batch == 0) return out;
  std::optional<at::Generator> generator;
  if (options.seed.has_value()) generator = at::make_generator<at::CPUGeneratorImpl>(*options.seed);

  DecoderCache cache = model.InitCache(model.Encode(input_ids, attention_mask), attention_mask);
  // Rows still generating, as indices into `out`; finished rows are dropped from the cache so the decoder
  // only computes live sequences.
  std::vector<int64_t> active(batch);
  for (int64_t b = 0; b < batch; ++b) active[b] = b;
  // Tokens and row indices live on the model's device; what the host reads is copied back (the sampler's
  // seeded generator is a CPU one, so sampling happens on the host).
  const torch::TensorOptions on_device = torch::TensorOptions(torch::kInt64).device(input_ids.device());
  torch::Tensor tokens = torch::full({batch, 1}, options.decoder_start_id, on_device);
  for (int step = 0; step < options.max_new_tokens && !active.empty(); ++step) {
    torch::Tensor logits = model.DecodeStep(tokens, cache).to(torch::kFloat32);
    torch::Tensor next = (options.temperature == 0 ? logits.argmax(-1).to(torch::kCPU)
                                                   : SampleTokens(logits.to(torch::kCPU), options, generator))
                             .contiguous();
    const int64_t* next_data = next.data_ptr<int64_t>();
    std::vector<int64_t> keep_rows;
    std::vector<int64_t> still_active;
    for (size_t i = 0; i < active.size(); ++i) {
      const int token = static_cast<int>(next_data[i]);
      out[active[i]].push_back(token);
      if (token != options.eos_id) {
        keep_rows.push_back(static_cast<int64_t>(i));
        still_active.push_back(active[i]);
      }
    }
    if (still_active.size() != active.size() && !still_active.empty()) {
      torch::Tensor rows = torch::tensor(keep_rows, torch::kInt64);
      cache.SelectRows(rows.to(input_ids.device()));
      next = next.index_select(0, rows);
    }
    active = std::move(still_active);
    tokens = next.unsqueeze(1).to(input_ids.device());
  }
  return out;
}

struct Hypothesis {
  double score = 0;  // sum of log-probabilities / length
  std::vector<int> tokens;
};

// Keeps the best `capacity` hypotheses.
void AddHypothesis(std::vector<Hypothesis>& hypotheses, Hypothesis hypothesis, size_t capacity) {
  hypotheses.push_back(std::move(hypothesis));
  if (hypotheses.size() > capacity) {
    auto worst = std::min_element(hypotheses.begin(), hypotheses.end(),
                                  [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; });
    hypotheses.erase(worst);
  }
}

double WorstScore(const std::vector<Hypothesis>& hypotheses) {
  double worst = std::numeric_limits<double>::infinity();
  for (const Hypothesis& h : hypotheses) worst = std::min(worst, h.score);
  return worst;
}

// Hugging Face's BeamSearchScorer (length_penalty 1.0, early_stopping false): per batch row, the 2K best
// continuations of the K running beams; an EOS among the top K closes a hypothesis, the best K others keep
// running; a row is done once it holds K hypotheses and no running beam can beat the worst of them.
std::vector<std::vector<int>> RunBeamSearch(T5Model& model, const torch::Tensor& input_ids,
                                            const torch::Tensor& attention_mask,
                                            const GenerationOptions& options) {
  const int64_t batch = input_ids.size(0);
  const int64_t beams = options.num_beams;
  std::vector<std::vector<int>> out(batch);
  if (batch == 0) return out;

  const torch::Device device = input_ids.device();
  torch::Tensor rows =
      torch::arange(batch, torch::TensorOptions(torch::kInt64).device(device)).repeat_interleave(beams);
  DecoderCache cache = model.InitCache(model.Encode(input_ids, attention_mask).index_select(0, rows),
                                       attention_mask.index_select(0, rows));
  const int64_t width = batch * beams;
  // Only beam 0 starts live, so the first step expands one prefix into distinct tokens.
  std::vector<double> beam_scores(width, -1e9);
  for (int64_t b = 0; b < batch; ++b) beam_scores[b * beams] = 0;
  std::vector<std::vector<int>> sequences(width);
  std::vector<std::vector<Hypothesis>> hypotheses(batch);
  std::vector<bool> done(batch, false);
  torch::Tensor tokens =
      torch::full({width, 1}, options.decoder_start_id, torch::TensorOptions(torch::kInt64).device(device));

  for (int step = 0; step < options.max_new_tokens; ++step) {
    const double length = step + 1;  // generated tokens including this one
    torch::Tensor log_probs = torch::log_softmax(model.DecodeStep(tokens, cache).to(torch::kFloat32), -1);
    const int64_t vocab = log_probs.size(-1);
    torch::Tensor totals =
        (log_probs.to(torch::kFloat64) + torch::tensor(beam_scores, torch::kFloat64).to(device).unsqueeze(1))
            .view({batch, beams * vocab});
    auto [top_scores, top_indices] = totals.topk(std::min<int64_t>(2 * beams, beams * vocab), -1);
    top_scores = top_scores.to(torch::kCPU).contiguous();
    top_indices = top_indices.to(torch::kCPU).contiguous();
    const int64_t candidates = top_scores.size(1);
    const double* score_data = top_scores.data_ptr<double>();
    const int64_t* index_data = top_indices.data_ptr<int64_t>();

    std::vector<int64_t> next_tokens(width, options.decoder_start_id);
    std::vector<int64_t> sources(width);
    std::vector<double> next_scores(width, 0);
    for (int64_t b = 0; b < batch; ++b) {
      if (done[b]) {
        for (int64_t k = 0; k < beams; ++k) sources[b * beams + k] = b * beams + k;
        continue;
      }
      int64_t filled = 0;
      for (int64_t j = 0; j < candidates && filled < beams; ++j) {
        const int64_t index = index_data[b * candidates + j];
        const int64_t source = b * beams + index / vocab;
        const int token = static_cast<int>(index % vocab);
        const double score = score_data[b * candidates + j];
        if (token == options.eos_id) {
          if (j >= beams) continue;
          Hypothesis h{score / length, sequences[source]};
          h.tokens.push_back(token);
          AddHypothesis(hypotheses[b], std::move(h), beams);
        } else {
          next_tokens[b * beams + filled] = token;
          sources[b * beams + filled] = source;
          next_scores[b * beams + filled] = score;
          ++filled;
        }
      }
      if (static_cast<int64_t>(hypotheses[b].size()) >= beams &&
          WorstScore(hypotheses[b]) >= next_scores[b * beams] / length) {
        done[b] = true;
      }
    }

    std::vector<std::vector<int>> next_sequences(width);
    for (int64_t i = 0; i < width; ++i) {
      next_sequences[i] = sequences[sources[i]];
      next_sequences[i].push_back(static_cast<int>(next_tokens[i]));
    }
    sequences = std::move(next_sequences);
    beam_scores = std::move(next_scores);
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    cache.SelectRows(torch::tensor(sources, torch::kInt64).to(device));
    tokens = torch::tensor(next_tokens, torch::kInt64).unsqueeze(1).to(device);
  }

  for (int64_t b = 0; b < batch; ++b) {
    if (!done[b]) {
      for (int64_t k = 0; k < beams; ++k) {
        const int64_t i = b * beams + k;
        AddHypothesis(hypotheses[b],
                      Hypothesis{beam_scores[i] / static_cast<double>(sequences[i].size()), sequences[i]},
                      beams);
      }
    }
    const auto best =
        std::max_element(hypotheses[b].begin(), hypotheses[b].end(),
                         [](const Hypothesis& x, const Hypothesis& y) { return x.score < y.score; });
    out[b] = best->tokens;
  }
  return out;
}

template <typename Fn>
absl::StatusOr<std::vector<std::vector<int>>> Guarded(const char* what, Fn&& fn) {
  try {
    c10::InferenceMode inference;
    return fn();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": libtorch: ", e.what_without_backtrace()));
  }
}

}  // namespace

torch::Tensor SampleTokens(const torch::Tensor& logits, const GenerationOptions& options,
                           const std::optional<at::Generator>& generator) {
  const float negative_infinity = -std::numeric_limits<float>::infinity();
  torch::Tensor scaled = logits / options.temperature;
  const int64_t vocab = scaled.size(-1);
  if (options.top_k > 0 && options.top_k < vocab) {
    torch::Tensor kth =
        std::get<0>(scaled.topk(options.top_k, -1)).select(-1, options.top_k - 1).unsqueeze(-1);
    scaled = scaled.masked_fill(scaled < kth, negative_infinity);
  }
  if (options.top_p < 1) {
    auto [sorted, order] = scaled.sort(-1, /*descending=*/true);
    torch::Tensor probs = torch::softmax(sorted, -1);
    // A token stays while the probability of the more likely tokens before it is still below top_p; the
    // most likely token always stays.
    torch::Tensor drop_sorted = (probs.cumsum(-1) - probs) >= options.top_p;
    torch::Tensor drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    scaled = scaled.masked_fill(drop, negative_infinity);
  }
  torch::Tensor probs = torch::softmax(scaled, -1);
  if (generator.has_value())
    return torch::multinomial(probs, 1, /*replacement=*/false, *generator).squeeze(1);
  return torch::multinomial(probs, 1, /*replacement=*/false).squeeze(1);
}

absl::StatusOr<std::vector<std::vector<int>>> Generate(T5Model& model, const torch::Tensor& input_ids,
                                                       const torch::Tensor& attention_mask,
                                                       const GenerationOptions& options) {
  RETURN_IF_ERROR(Validate(input_ids, attention_mask, options));
  if (options.num_beams > 1) {
    return Guarded("Generate (beam search)",
                   [&] { return RunBeamSearch(model, input_ids, attention_mask, options); });
  }
  return Guarded("Generate", [&] { return GreedyOrSample(model, input_ids, attention_mask, options); });
}

namespace generation_internal {

absl::StatusOr<std::vector<std::vector<int>>> BeamSearch(T5Model& model, const torch::Tensor& input_ids,
                                                         const torch::Tensor& attention_mask,
                                                         const GenerationOptions& options) {
  GenerationOptions beam_options = options;
  beam_options.temperature = 0;
  RETURN_IF_ERROR(Validate(input_ids, attention_mask, beam_options));
  return Guarded("BeamSearch", [&] { return RunBeamSearch(model, input_ids, attention_mask, beam_options); });
}

}  // namespace generation_internal
}  // namespace distill::student
