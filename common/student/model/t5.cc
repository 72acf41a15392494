#include "common/student/model/t5.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ATen/Context.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "c10/core/InferenceMode.h"
#include "c10/util/Exception.h"
#include "common/status/macros.h"
#include "common/student/model/few_rows_linear.h"
#include "common/student/model/training_ops.h"

namespace distill::student {
namespace t5_internal {

// The building blocks hold their parameters directly (rather than wrapping torch::nn::Linear etc.) so the
// registered names are exactly Hugging Face's and this file needs only the module base header.

// x [..., in] · weight [out, in]ᵀ. Decoding steps' few rows go to FewRowsLinear, which reads the weight
// where it lies; otherwise (CPUs without AVX-512, GPUs) a single row goes to gemv and the rest to matmul.
torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& weight) {
  if (std::optional<torch::Tensor> y = FewRowsLinear(x, weight)) return *std::move(y);
  if (x.numel() == x.size(-1)) {
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = weight.size(0);
    return torch::mv(weight, x.reshape({-1})).view(shape);
  }
  return torch::matmul(x, weight.t());
}

// A bias-free linear map; `weight` is [out, in] as in torch::nn::Linear and Hugging Face.
class LinearModule : public torch::nn::Module {
 public:
  LinearModule(int64_t in, int64_t out) { weight = register_parameter("weight", torch::empty({out, in})); }
  torch::Tensor operator()(const torch::Tensor& x) const { return Linear(x, weight); }
  torch::Tensor weight;
};

// x @ [w_0; w_1; ...]^T as one matmul: [..., out_0 + out_1 + ...]. For training only: concatenating the
// weights is a copy of them, cheap against a training batch but not against a decoding step. One larger
// GEMM keeps the BLAS's threads busier, and autograd records one matmul (whose backward is two GEMMs and no
// sum of per-projection input gradients) instead of one per projection.
torch::Tensor StackedProjection(const torch::Tensor& x, torch::TensorList weights) {
  return torch::matmul(x, torch::cat(weights).t());
}

// StackedProjection split back into one [..., out_i] tensor per weight.
std::vector<torch::Tensor> FusedProjections(const torch::Tensor& x, torch::TensorList weights) {
  std::vector<int64_t> sizes;
  for (const torch::Tensor& w : weights) sizes.push_back(w.size(0));
  return StackedProjection(x, weights).split_with_sizes(sizes, -1);
}

class EmbeddingModule : public torch::nn::Module {
 public:
  EmbeddingModule(int64_t num, int64_t dim) {
    weight = register_parameter("weight", torch::empty({num, dim}));
  }
  torch::Tensor operator()(const torch::Tensor& ids) const { return torch::embedding(weight, ids); }
  torch::Tensor weight;
};

class LayerNorm : public torch::nn::Module {
 public:
  LayerNorm(int64_t dim, double eps) : eps_(eps) {
    weight = register_parameter("weight", torch::ones({dim}));
  }
  torch::Tensor operator()(const torch::Tensor& x) const { return RmsNorm(x, weight, eps_); }
  torch::Tensor weight;

 private:
  double eps_;
};

// A list of child modules registered as "0", "1", ... (Hugging Face's nn.ModuleList naming), without
// torch::nn::ModuleList's type erasure.
template <typename M>
class ModuleList : public torch::nn::Module {
 public:
  void Append(std::shared_ptr<M> module) {
    register_module(std::to_string(items_.size()), module);
    items_.push_back(std::move(module));
  }
  const std::vector<std::shared_ptr<M>>& items() const { return items_; }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

class Attention : public torch::nn::Module {
 public:
  Attention(const T5Config& c, bool has_relative_bias, bool bidirectional)
      : num_heads_(c.num_heads),
        d_kv_(c.d_kv),
        dropout_(c.dropout_rate),
        bidirectional_(bidirectional),
        num_buckets_(c.relative_attention_num_buckets),
        max_distance_(c.relative_attention_max_distance) {
    const int64_t inner = int64_t{c.num_heads} * c.d_kv;
    q = register_module("q", std::make_shared<LinearModule>(c.d_model, inner));
    k = register_module("k", std::make_shared<LinearModule>(c.d_model, inner));
    v = register_module("v", std::make_shared<LinearModule>(c.d_model, inner));
    o = register_module("o", std::make_shared<LinearModule>(inner, c.d_model));
    if (has_relative_bias) {
      relative_attention_bias = register_module("relative_attention_bias",
                                                std::make_shared<EmbeddingModule>(num_buckets_, num_heads_));
    }
  }

  // [1, H, query_len, key_len] float32 for queries at positions query_offset.. and keys at 0..key_len-1.
  torch::Tensor ComputeBias(int64_t query_len, int64_t key_len, int64_t query_offset = 0) const {
    auto opts = torch::TensorOptions().dtype(torch::kInt64).device(relative_attention_bias->weight.device());
    torch::Tensor context = torch::arange(query_offset, query_offset + query_len, opts).unsqueeze(1);
    torch::Tensor memory = torch::arange(key_len, opts).unsqueeze(0);
    torch::Tensor buckets =
        RelativePositionBucket(memory - context, bidirectional_, num_buckets_, max_distance_);
    return (*relative_attention_bias)(buckets).permute({2, 0, 1}).unsqueeze(0);
  }

  // hidden [B, T, D], key_value [B, S, D], bias broadcastable to [B, H, T, S] (position bias plus the
  // additive mask) -> [B, T, D].
  torch::Tensor operator()(const torch::Tensor& hidden, const torch::Tensor& key_value,
                           const torch::Tensor& bias) {
    if (is_training()) {
      if (hidden.is_same(key_value)) {  // self-attention
        std::vector<torch::Tensor> qkv = FusedProjections(hidden, {q->weight, k->weight, v->weight});
        return AttendQuery(Heads(qkv[0]), Heads(qkv[1]), Heads(qkv[2]), bias);
      }
      std::vector<torch::Tensor> kv = FusedProjections(key_value, {k->weight, v->weight});
      return Attend(hidden, Heads(kv[0]), Heads(kv[1]), bias);
    }
    return Attend(hidden, Heads((*k)(key_value)), Heads((*v)(key_value)), bias);
  }

  // [B, L, H * d_kv] -> [B, H, L, d_kv].
  torch::Tensor Heads(const torch::Tensor& x) const {
    return x.view({x.size(0), -1, num_heads_, d_kv_}).transpose(1, 2);
  }

  // hidden [B, T, D] attending to already projected key, value [B, H, S, d_kv] -> [B, T, D].
  torch::Tensor Attend(const torch::Tensor& hidden, const torch::Tensor& key, const torch::Tensor& value,
                       const torch::Tensor& bias) {
    return AttendQuery(Heads((*q)(hidden)), key, value, bias);
  }

  // Projected query [B, H, T, d_kv] attending to key, value [B, H, S, d_kv] -> [B, T, D].
  torch::Tensor AttendQuery(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                            const torch::Tensor& bias) {
    const int64_t batch = query.size(0);
    if (query.size(2) == 1 && !is_training()) {
      // One query position (cached decoding): broadcast products and sums over the cached keys and
      // values instead of B * H one-row matrix products.
      torch::Tensor scores = (key * query).sum(-1).unsqueeze(2) + bias;  // [B, H, 1, S]
      torch::Tensor weights = torch::softmax(scores.to(torch::kFloat32), -1).to(scores.scalar_type());
      torch::Tensor context = (weights.transpose(2, 3) * value).sum(2);  // [B, H, d_kv]
      return (*o)(context.reshape({batch, 1, num_heads_ * d_kv_}));
    }
    // No 1/sqrt(d_kv) scaling: see t5.h.
    torch::Tensor context = AttentionCore(query, key, value, bias, dropout_, is_training())
                                .transpose(1, 2)
                                .reshape({batch, -1, num_heads_ * d_kv_});
    return (*o)(context);
  }

  std::shared_ptr<LinearModule> q, k, v, o;
  std::shared_ptr<EmbeddingModule> relative_attention_bias;  // null except in block 0

 private:
  int64_t num_heads_;
  int64_t d_kv_;
  double dropout_;
  bool bidirectional_;
  int64_t num_buckets_;
  int64_t max_distance_;
};

class DenseReluDense : public torch::nn::Module {
 public:
  explicit DenseReluDense(const T5Config& c)
      : gated_(c.feed_forward_proj == "gated-gelu"), dropout_(c.dropout_rate) {
    if (gated_) {
      wi_0 = register_module("wi_0", std::make_shared<LinearModule>(c.d_model, c.d_ff));
      wi_1 = register_module("wi_1", std::make_shared<LinearModule>(c.d_model, c.d_ff));
    } else {
      wi = register_module("wi", std::make_shared<LinearModule>(c.d_model, c.d_ff));
    }
    wo = register_module("wo", std::make_shared<LinearModule>(c.d_ff, c.d_model));
  }

  torch::Tensor operator()(const torch::Tensor& x) {
    torch::Tensor hidden;
    if (gated_) {
      // gelu_new is the tanh approximation of GELU.
      if (is_training()) {
        // gelu, product and dropout as one node, on [wi_0; wi_1]'s single matmul.
        hidden = GatedGelu(StackedProjection(x, {wi_0->weight, wi_1->weight}), dropout_, true);
      } else {
        hidden = Dropout(torch::gelu((*wi_0)(x), "tanh") * (*wi_1)(x), dropout_, false);
      }
    } else {
      hidden = Dropout(torch::relu((*wi)(x)), dropout_, is_training());
    }
    return (*wo)(hidden);
  }

  std::shared_ptr<LinearModule> wi, wi_0, wi_1, wo;

 private:
  bool gated_;
  double dropout_;
};

// One sub-layer: pre-norm, the inner module, dropout, residual add. Hugging Face names the inner module
// per kind ("SelfAttention", "EncDecAttention", "DenseReluDense"), so Layer is generic over it.
class Layer : public torch::nn::Module {
 public:
  Layer(const T5Config& c, const std::string& inner_name, std::shared_ptr<torch::nn::Module> inner)
      : dropout_(c.dropout_rate) {
    register_module(inner_name, inner);
    layer_norm = register_module("layer_norm", std::make_shared<LayerNorm>(c.d_model, c.layer_norm_epsilon));
    attention = std::dynamic_pointer_cast<Attention>(inner);
    ff = std::dynamic_pointer_cast<DenseReluDense>(inner);
  }

  torch::Tensor Residual(const torch::Tensor& hidden, const torch::Tensor& branch) const {
    return hidden + Dropout(branch, dropout_, is_training());
  }

  std::shared_ptr<LayerNorm> layer_norm;
  std::shared_ptr<Attention> attention;  // set for attention layers
  std::shared_ptr<DenseReluDense> ff;    // set for the feed-forward layer

 private:
  double dropout_;
};

class Block : public torch::nn::Module {
 public:
  Block(const T5Config& c, bool is_decoder, bool has_relative_bias) : is_decoder_(is_decoder) {
    layer = register_module("layer", std::make_shared<ModuleList<Layer>>());
    layer->Append(std::make_shared<Layer>(
        c, "SelfAttention",
        std::make_shared<Attention>(c, has_relative_bias, /*bidirectional=*/!is_decoder)));
    if (is_decoder) {
      layer->Append(std::make_shared<Layer>(
          c, "EncDecAttention",
          std::make_shared<Attention>(c, /*has_relative_bias=*/false, /*bidirectional=*/true)));
    }
    layer->Append(std::make_shared<Layer>(c, "DenseReluDense", std::make_shared<DenseReluDense>(c)));
  }

  torch::Tensor operator()(torch::Tensor hidden, const torch::Tensor& self_bias,
                           const torch::Tensor& encoder_hidden, const torch::Tensor& cross_bias) {
    const auto& layers = layer->items();
    {
      const Layer& self = *layers[0];
      torch::Tensor normed = (*self.layer_norm)(hidden);
      hidden = self.Residual(hidden, (*self.attention)(normed, normed, self_bias));
    }
    if (is_decoder_) {
      const Layer& cross = *layers[1];
      hidden =
          cross.Residual(hidden, (*cross.attention)((*cross.layer_norm)(hidden), encoder_hidden, cross_bias));
    }
    const Layer& ffl = *layers.back();
    return ffl.Residual(hidden, (*ffl.ff)((*ffl.layer_norm)(hidden)));
  }

  // One decoder position: hidden [B, 1, D]; appends this position's self-attention keys and values to
  // the cache entry `index` and attends to the cached cross-attention keys and values.
  torch::Tensor Step(torch::Tensor hidden, const torch::Tensor& self_bias, DecoderCache& cache,
                     size_t index) {
    const auto& layers = layer->items();
    {
      const Layer& self = *layers[0];
      Attention& attention = *self.attention;
      torch::Tensor normed = (*self.layer_norm)(hidden);
      cache.AppendColumn(index, attention.Heads((*attention.k)(normed)), attention.Heads((*attention.v)(normed)));
      hidden = self.Residual(hidden, attention.Attend(normed, cache.self_key[index], cache.self_value[index], self_bias));
    }
    {
      const Layer& cross = *layers[1];
      torch::Tensor attended = cross.attention->Attend((*cross.layer_norm)(hidden), cache.cross_key[index],
                                                       cache.cross_value[index], cache.cross_bias);
      hidden = cross.Residual(hidden, attended);
    }
    const Layer& ffl = *layers.back();
    return ffl.Residual(hidden, (*ffl.ff)((*ffl.layer_norm)(hidden)));
  }

  std::shared_ptr<ModuleList<Layer>> layer;

 private:
  bool is_decoder_;
};

// Additive attention mask from a [B, key_len] keep-mask (nonzero = attend): 0 where attended, the most
// negative float where not, shaped [B, 1, 1, key_len].
torch::Tensor AdditiveMask(const torch::Tensor& keep) {
  torch::Tensor blocked = keep.eq(0).unsqueeze(1).unsqueeze(2);
  return torch::zeros(blocked.sizes(), torch::TensorOptions(torch::kFloat32).device(keep.device()))
      .masked_fill(blocked, std::numeric_limits<float>::lowest());
}

class Stack : public torch::nn::Module {
 public:
  Stack(const T5Config& c, bool is_decoder, std::shared_ptr<EmbeddingModule> embed_tokens)
      : is_decoder_(is_decoder), dropout_(c.dropout_rate), embed_tokens_(std::move(embed_tokens)) {
    // The embedding is the model's `shared` module; it is deliberately not registered here so it appears
    // once in named_parameters(), as "shared.weight".
    block = register_module("block", std::make_shared<ModuleList<Block>>());
    const int layers = is_decoder ? c.num_decoder_layers : c.num_layers;
    for (int i = 0; i < layers; ++i)
      block->Append(std::make_shared<Block>(c, is_decoder, /*has_relative_bias=*/i == 0));
    final_layer_norm =
        register_module("final_layer_norm", std::make_shared<LayerNorm>(c.d_model, c.layer_norm_epsilon));
  }

  // Encoder: Run(ids, mask, {}, {}). Decoder: Run(ids, {}, encoder_hidden, encoder_mask).
  torch::Tensor Run(const torch::Tensor& ids, const torch::Tensor& mask, const torch::Tensor& encoder_hidden,
                    const torch::Tensor& encoder_mask) {
    return RunEmbedded((*embed_tokens_)(ids), mask, encoder_hidden, encoder_mask);
  }
  torch::Tensor RunEmbedded(const torch::Tensor& embedded, const torch::Tensor& mask,
                            const torch::Tensor& encoder_hidden, const torch::Tensor& encoder_mask) {
    const int64_t length = embedded.size(1);
    torch::Tensor hidden = Dropout(embedded, dropout_, is_training());

    // The position bias (with the mask folded in) is computed once by block 0's attention and shared.
    torch::Tensor self_bias = block->items()[0]->layer->items()[0]->attention->ComputeBias(length, length);
    if (is_decoder_) {
      torch::Tensor future =
          torch::ones({length, length}, torch::TensorOptions(torch::kBool).device(embedded.device())).triu(1);
      self_bias = self_bias.masked_fill(future, std::numeric_limits<float>::lowest());
    } else {
      self_bias = self_bias + AdditiveMask(mask);
    }
    torch::Tensor cross_bias;
    if (is_decoder_) cross_bias = AdditiveMask(encoder_mask);

    for (const auto& b : block->items()) hidden = (*b)(hidden, self_bias, encoder_hidden, cross_bias);
    return Dropout((*final_layer_norm)(hidden), dropout_, is_training());
  }

  // Decoder only.
  DecoderCache InitCache(const torch::Tensor& encoder_hidden, const torch::Tensor& encoder_mask) const {
    DecoderCache cache;
    DecoderCache::Storage& storage = cache.storage;
    const size_t layers = block->items().size();
    storage.self_key.resize(layers);
    storage.self_value.resize(layers);
    for (const auto& b : block->items()) {
      Attention& cross = *b->layer->items()[1]->attention;
      storage.cross_key.push_back(cross.Heads((*cross.k)(encoder_hidden)));
      storage.cross_value.push_back(cross.Heads((*cross.v)(encoder_hidden)));
    }
    storage.cross_bias = AdditiveMask(encoder_mask);
    cache.batch = encoder_hidden.size(0);
    cache.RefreshViews();
    return cache;
  }

  // Decoder only: ids [B, 1] at position cache.length -> final hidden [B, 1, D].
  torch::Tensor Step(const torch::Tensor& ids, DecoderCache& cache) {
    torch::Tensor hidden = torch::dropout((*embed_tokens_)(ids), dropout_, is_training());
    // Every cached key is in the query's past, so no causal mask is needed.
    torch::Tensor self_bias = block->items()[0]->layer->items()[0]->attention->ComputeBias(
        /*query_len=*/1, /*key_len=*/cache.length + 1, /*query_offset=*/cache.length);
    cache.ReserveColumn();
    if (cache.storage.self_mask.defined()) {
      self_bias = self_bias + cache.storage.self_mask.narrow(0, 0, cache.batch).narrow(3, 0, cache.length + 1);
    }
    const auto& blocks = block->items();
    for (size_t i = 0; i < blocks.size(); ++i) hidden = blocks[i]->Step(hidden, self_bias, cache, i);
    cache.length += 1;
    cache.RefreshViews();
    return torch::dropout((*final_layer_norm)(hidden), dropout_, is_training());
  }

  std::shared_ptr<ModuleList<Block>> block;
  std::shared_ptr<LayerNorm> final_layer_norm;

 private:
  bool is_decoder_;
  double dropout_;
  std::shared_ptr<EmbeddingModule> embed_tokens_;
};

}  // namespace t5_internal

namespace {
using t5_internal::EmbeddingModule;
using t5_internal::LinearModule;
using t5_internal::Stack;
}  // namespace

torch::Tensor RelativePositionBucket(const torch::Tensor& relative_position, bool bidirectional,
                                     int64_t num_buckets, int64_t max_distance) {
  torch::Tensor buckets = torch::zeros_like(relative_position);
  torch::Tensor distance;
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + relative_position.gt(0).to(torch::kInt64) * num_buckets;
    distance = relative_position.abs();
  } else {
    distance = -torch::min(relative_position, torch::zeros_like(relative_position));
  }
  const int64_t max_exact = num_buckets / 2;
  torch::Tensor is_small = distance.lt(max_exact);
  // float32 arithmetic and truncation toward zero, exactly as transformers computes it.
  torch::Tensor large =
      max_exact + (torch::log(distance.to(torch::kFloat32) / static_cast<float>(max_exact)) /
                   static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                   static_cast<float>(num_buckets - max_exact))
                      .to(torch::kInt64);
  large = torch::clamp_max(large, num_buckets - 1);
  return buckets + torch::where(is_small, distance, large);
}

T5Model::T5Model(const T5Config& config) : config_(config) {
  shared_ = register_module("shared", std::make_shared<EmbeddingModule>(config.vocab_size, config.d_model));
  encoder_ = register_module("encoder", std::make_shared<Stack>(config, /*is_decoder=*/false, shared_));
  decoder_ = register_module("decoder", std::make_shared<Stack>(config, /*is_decoder=*/true, shared_));
  if (!config.tie_word_embeddings) {
    lm_head_ = register_module("lm_head", std::make_shared<LinearModule>(config.d_model, config.vocab_size));
  }
}

void T5Model::InitWeights() {
  torch::NoGradGuard no_grad;
  const double d_model = config_.d_model;
  const double inner = double{1.0} * config_.num_heads * config_.d_kv;
  auto suffix = [](const std::string& name, const std::string& end) {
    return name.size() >= end.size() && name.compare(name.size() - end.size(), end.size(), end) == 0;
  };
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    double std = 0;
    if (name == "shared.weight" || name == "lm_head.weight") {
      std = 1.0;
    } else if (suffix(name, "layer_norm.weight")) {
      p.fill_(1.0);
      continue;
    } else if (suffix(name, ".q.weight")) {
      std = std::pow(d_model * config_.d_kv, -0.5);
    } else if (suffix(name, ".k.weight") || suffix(name, ".v.weight") ||
               suffix(name, "relative_attention_bias.weight") || suffix(name, ".wi.weight") ||
               suffix(name, ".wi_0.weight") || suffix(name, ".wi_1.weight")) {
      std = std::pow(d_model, -0.5);
    } else if (suffix(name, ".o.weight")) {
      std = std::pow(inner, -0.5);
    } else if (suffix(name, ".wo.weight")) {
      std = std::pow(double{1.0} * config_.d_ff, -0.5);
    } else {
      std = std::pow(d_model, -0.5);  // unreachable with today's layout; a sane default for additions
    }
    p.normal_(0.0, std);
  }
}

absl::StatusOr<std::shared_ptr<T5Model>> T5Model::Create(const T5Config& config) {
  RETURN_IF_ERROR(ValidateT5Config(config, "T5Config"));
  try {
    at::globalContext().setFlushDenormal(true);
    std::shared_ptr<T5Model> model(new T5Model(config));
    model->InitWeights();
    return model;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("T5Model::Create: libtorch: ", e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("T5Model::Create: out of memory allocating the parameters");
  }
}

torch::Tensor T5Model::Encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  return encoder_->Run(input_ids, attention_mask, {}, {});
}

torch::Tensor T5Model::Decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_hidden,
                              const torch::Tensor& encoder_mask) {
  return Project(decoder_->Run(decoder_input_ids, {}, encoder_hidden, encoder_mask));
}

DecoderCache T5Model::InitCache(const torch::Tensor& encoder_hidden, const torch::Tensor& encoder_mask) {
  c10::InferenceMode inference;
  return decoder_->InitCache(encoder_hidden, encoder_mask);
}

torch::Tensor T5Model::DecodeStep(const torch::Tensor& next_tokens, DecoderCache& cache) {
  c10::InferenceMode inference;
  return Project(decoder_->Step(next_tokens, cache)).squeeze(1);
}

namespace {

constexpr int64_t kInitialColumns = 16;

// A tensor like `t` with dimension `dim` resized to `size`, filled with `value`, holding t's entries at the
// start of every dimension.
torch::Tensor Regrow(const torch::Tensor& t, std::vector<int64_t> sizes, float value) {
  torch::Tensor grown = torch::full(sizes, value, t.options());
  torch::Tensor target = grown;
  for (int64_t d = 0; d < t.dim(); ++d) target = target.narrow(d, 0, std::min(t.size(d), sizes[d]));
  torch::Tensor source = t;
  for (int64_t d = 0; d < t.dim(); ++d) source = source.narrow(d, 0, std::min(t.size(d), sizes[d]));
  target.copy_(source);
  return grown;
}

}  // namespace

void DecoderCache::RefreshViews() {
  const size_t layers = storage.cross_key.size();
  self_key.resize(layers);
  self_value.resize(layers);
  cross_key.resize(layers);
  cross_value.resize(layers);
  for (size_t i = 0; i < layers; ++i) {
    const bool has_self = length > 0 && storage.self_key[i].defined();
    self_key[i] = has_self ? storage.self_key[i].narrow(0, 0, batch).narrow(2, 0, length) : torch::Tensor();
    self_value[i] = has_self ? storage.self_value[i].narrow(0, 0, batch).narrow(2, 0, length) : torch::Tensor();
    cross_key[i] = storage.cross_key[i].narrow(0, 0, batch);
    cross_value[i] = storage.cross_value[i].narrow(0, 0, batch);
  }
  cross_bias = storage.cross_bias.narrow(0, 0, batch);
  self_mask = storage.self_mask.defined() && length > 0 ? storage.self_mask.narrow(0, 0, batch).narrow(3, 0, length)
                                                        : torch::Tensor();
}

void DecoderCache::ReserveColumn() {
  c10::InferenceMode inference;
  const torch::Tensor& like = storage.cross_key[0];
  const int64_t rows = like.size(0);
  const int64_t columns = storage.self_key[0].defined() ? storage.self_key[0].size(2) : 0;
  if (columns <= length) {
    // Doubling keeps the copies of a long generation to about one cache's worth in total.
    const int64_t grown = std::max(kInitialColumns, 2 * columns);
    for (std::vector<torch::Tensor>* tensors : {&storage.self_key, &storage.self_value}) {
      for (torch::Tensor& t : *tensors) {
        const std::vector<int64_t> sizes = {rows, like.size(1), grown, like.size(3)};
        t = t.defined() ? Regrow(t, sizes, 0.0f) : torch::zeros(sizes, like.options());
      }
    }
    if (storage.self_mask.defined()) storage.self_mask = Regrow(storage.self_mask, {rows, 1, 1, grown}, 0.0f);
  }
  // The new position is every row's own newest key: never masked.
  if (storage.self_mask.defined()) storage.self_mask.narrow(3, length, 1).fill_(0.0f);
}

void DecoderCache::AppendColumn(size_t layer, const torch::Tensor& key, const torch::Tensor& value) {
  storage.self_key[layer].narrow(0, 0, batch).narrow(2, length, 1).copy_(key);
  storage.self_value[layer].narrow(0, 0, batch).narrow(2, length, 1).copy_(value);
  self_key[layer] = storage.self_key[layer].narrow(0, 0, batch).narrow(2, 0, length + 1);
  self_value[layer] = storage.self_value[layer].narrow(0, 0, batch).narrow(2, 0, length + 1);
}

void DecoderCache::SelectRows(const torch::Tensor& rows) {
  c10::InferenceMode inference;
  for (size_t i = 0; i < storage.cross_key.size(); ++i) {
    if (length > 0) {
      storage.self_key[i] = self_key[i].index_select(0, rows);
      storage.self_value[i] = self_value[i].index_select(0, rows);
    }
    storage.cross_key[i] = cross_key[i].index_select(0, rows);
    storage.cross_value[i] = cross_value[i].index_select(0, rows);
  }
  storage.cross_bias = cross_bias.index_select(0, rows);
  if (storage.self_mask.defined()) {
    storage.self_mask = length > 0 ? self_mask.index_select(0, rows) : torch::Tensor();
  }
  batch = rows.size(0);
  RefreshViews();
}

void DecoderCache::AppendRows(const DecoderCache& fresh) {
  c10::InferenceMode inference;
  TORCH_CHECK(fresh.length == 0, "DecoderCache::AppendRows: the new rows must not have decoded yet");
  const float lowest = std::numeric_limits<float>::lowest();
  const int64_t n = fresh.batch;
  const int64_t capacity = storage.cross_key[0].size(0);
  const int64_t source = storage.cross_key[0].size(2);
  const int64_t fresh_source = fresh.cross_bias.size(3);
  if (batch + n > capacity || fresh_source > source) {
    const int64_t rows = batch + n > capacity ? std::max(batch + n, 2 * capacity) : capacity;
    const int64_t columns = std::max(source, fresh_source);
    for (std::vector<torch::Tensor>* tensors : {&storage.cross_key, &storage.cross_value}) {
      for (torch::Tensor& t : *tensors) t = Regrow(t, {rows, t.size(1), columns, t.size(3)}, 0.0f);
    }
    storage.cross_bias = Regrow(storage.cross_bias, {rows, 1, 1, columns}, lowest);
    for (std::vector<torch::Tensor>* tensors : {&storage.self_key, &storage.self_value}) {
      for (torch::Tensor& t : *tensors) {
        if (t.defined()) t = Regrow(t, {rows, t.size(1), t.size(2), t.size(3)}, 0.0f);
      }
    }
    if (storage.self_mask.defined()) {
      storage.self_mask = Regrow(storage.self_mask, {rows, 1, 1, storage.self_mask.size(3)}, 0.0f);
    }
  }
  for (size_t i = 0; i < storage.cross_key.size(); ++i) {
    storage.cross_key[i].narrow(0, batch, n).narrow(2, 0, fresh_source).copy_(fresh.cross_key[i]);
    storage.cross_value[i].narrow(0, batch, n).narrow(2, 0, fresh_source).copy_(fresh.cross_value[i]);
  }
  torch::Tensor bias = storage.cross_bias.narrow(0, batch, n);
  bias.fill_(lowest);
  bias.narrow(3, 0, fresh_source).copy_(fresh.cross_bias);
  if (length > 0) {
    // The new rows start at the next column: everything before it is masked for them.
    if (!storage.self_mask.defined()) {
      storage.self_mask = torch::zeros({storage.cross_key[0].size(0), 1, 1, storage.self_key[0].size(2)},
                                       storage.cross_key[0].options().dtype(torch::kFloat32));
    }
    storage.self_mask.narrow(0, batch, n).narrow(3, 0, length).fill_(lowest);
  }
  batch += n;
  RefreshViews();
}

void DecoderCache::RemoveRow(int64_t row) {
  c10::InferenceMode inference;
  TORCH_CHECK(row >= 0 && row < batch, "DecoderCache::RemoveRow: no row ", row);
  const int64_t last = batch - 1;
  if (row != last) {
    auto move = [&](torch::Tensor& t) {
      if (t.defined()) t[row].copy_(t[last]);
    };
    for (size_t i = 0; i < storage.cross_key.size(); ++i) {
      move(storage.self_key[i]);
      move(storage.self_value[i]);
      move(storage.cross_key[i]);
      move(storage.cross_value[i]);
    }
    move(storage.cross_bias);
    move(storage.self_mask);
  }
  batch -= 1;
  RefreshViews();
}

void DecoderCache::TrimPadding() {
  c10::InferenceMode inference;
  if (!self_mask.defined() || batch == 0) return;
  torch::Tensor all_masked = self_mask.lt(0).all(0).reshape({-1}).contiguous();  // [length]
  const bool* data = all_masked.data_ptr<bool>();
  int64_t drop = 0;
  while (drop < length - 1 && data[drop]) ++drop;
  if (drop > 0 && 2 * drop >= length) {
    // Shift the live columns to the front: one copy, paid once the dead columns are half the cache.
    for (std::vector<torch::Tensor>* tensors : {&storage.self_key, &storage.self_value}) {
      for (torch::Tensor& t : *tensors) {
        torch::Tensor live = t.narrow(2, drop, length - drop).clone();
        t.narrow(2, 0, length - drop).copy_(live);
      }
    }
    torch::Tensor live = storage.self_mask.narrow(3, drop, length - drop).clone();
    storage.self_mask.narrow(3, 0, length - drop).copy_(live);
    length -= drop;
  }
  if (!storage.self_mask.narrow(0, 0, batch).narrow(3, 0, length).lt(0).any().item<bool>()) {
    storage.self_mask = torch::Tensor();
  }
  RefreshViews();
}

DecoderCache ConcatDecoderCaches(const DecoderCache& a, const DecoderCache& b) {
  c10::InferenceMode inference;
  DecoderCache out = a;
  // Own storage, so appending does not write into `a`'s.
  auto own = [](torch::Tensor& t) {
    if (t.defined()) t = t.clone();
  };
  for (size_t i = 0; i < out.storage.cross_key.size(); ++i) {
    own(out.storage.self_key[i]);
    own(out.storage.self_value[i]);
    own(out.storage.cross_key[i]);
    own(out.storage.cross_value[i]);
  }
  own(out.storage.cross_bias);
  own(out.storage.self_mask);
  out.AppendRows(b);
  return out;
}

torch::Tensor T5Model::Project(const torch::Tensor& hidden) const {
  if (config_.tie_word_embeddings) {
    // The original T5 rescales before the tied projection (transformers does the same).
    return t5_internal::Linear(hidden * std::pow(static_cast<double>(config_.d_model), -0.5), shared_->weight);
  }
  return (*lm_head_)(hidden);
}

torch::Tensor T5Model::Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                               const torch::Tensor& decoder_input_ids) {
  // One embedding lookup for both stacks: backward then builds one dense [vocab, d_model] gradient for
  // the shared embedding instead of two that autograd adds.
  const int64_t batch = input_ids.size(0);
  torch::Tensor embedded = (*shared_)(torch::cat({input_ids.reshape({batch, -1}), decoder_input_ids}, 1));
  torch::Tensor encoder_hidden =
      encoder_->RunEmbedded(embedded.narrow(1, 0, input_ids.size(1)), attention_mask, {}, {});
  return Project(decoder_->RunEmbedded(embedded.narrow(1, input_ids.size(1), decoder_input_ids.size(1)), {},
                                       encoder_hidden, attention_mask));
}

torch::Tensor T5Model::Loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  return torch::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32),
                                   labels.reshape({-1}),
                                   /*weight=*/{}, at::Reduction::Mean, /*ignore_index=*/-100);
}

}  // namespace distill::student
