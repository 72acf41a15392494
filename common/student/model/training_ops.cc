#include "common/student/model/training_ops.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "ATen/CPUGeneratorImpl.h"
#include "ATen/Parallel.h"
#include "c10/util/Exception.h"
#include "torch/autograd.h"

namespace distill::student {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// One draw from libtorch's default CPU generator, under its lock (as libtorch's own samplers take it).
uint64_t DrawSeed() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(generator)->random64();
}

// murmur3's 32-bit finalizer: a bijection with full avalanche. Element i's bits are
// Fmix(Fmix(i + seed_lo) ^ seed_hi): a function of i and the seed alone, so any thread can fill any range,
// and cheap enough in 32-bit lanes to vectorize (the mask costs less than the multiply that applies it).
inline uint32_t Fmix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bU;
  h ^= h >> 13;
  h *= 0xc2b2ae35U;
  return h ^ (h >> 16);
}

struct MaskParams {
  uint32_t seed_lo;
  uint32_t seed_hi;
  uint32_t keep;        // keep an element when its 32 bits are below this: (1 - p) * 2^32
  uint32_t scale_bits;  // the bits of the float 1 / (1 - p)
};

void FillMaskScalar(uint32_t* out, uint32_t begin, uint32_t end, const MaskParams& m) {
  for (uint32_t i = begin; i < end; ++i) {
    out[i] = Fmix(Fmix(i + m.seed_lo) ^ m.seed_hi) < m.keep ? m.scale_bits : 0;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define DISTILL_DROPOUT_AVX2 1
typedef uint32_t U32x8 __attribute__((vector_size(32)));

__attribute__((target("avx2"))) inline U32x8 Fmix8(U32x8 h) {
  h ^= h >> 16;
  h *= 0x85ebca6bU;
  h ^= h >> 13;
  h *= 0xc2b2ae35U;
  return h ^ (h >> 16);
}

// The same bits as FillMaskScalar, eight lanes at a time.
__attribute__((target("avx2"))) void FillMaskAvx2(uint32_t* out, uint32_t begin, uint32_t end,
                                                  const MaskParams& m) {
  U32x8 index = U32x8{0, 1, 2, 3, 4, 5, 6, 7} + begin;
  const U32x8 zero = {};
  const U32x8 keep = zero + m.keep;
  const U32x8 scale = zero + m.scale_bits;
  uint32_t i = begin;
  for (; end - i >= 8; i += 8) {
    const U32x8 bits = Fmix8(Fmix8(index + m.seed_lo) ^ m.seed_hi);
    const U32x8 kept = reinterpret_cast<U32x8>(bits < keep) & scale;
    std::memcpy(out + i, &kept, sizeof(kept));
    index += 8;
  }
  FillMaskScalar(out, i, end, m);
}
#endif

// Fills `mask` (float32, contiguous, fewer than 2^32 elements) with 1 / (1 - p) or 0 per element.
void FillDropoutMask(torch::Tensor& mask, uint64_t seed, uint32_t keep, float scale) {
  MaskParams params{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), keep, 0};
  std::memcpy(&params.scale_bits, &scale, sizeof(scale));
  uint32_t* out = reinterpret_cast<uint32_t*>(mask.data_ptr<float>());
#ifdef DISTILL_DROPOUT_AVX2
  const bool avx2 = __builtin_cpu_supports("avx2");
#else
  const bool avx2 = false;
#endif
  at::parallel_for(0, mask.numel(), int64_t{1} << 16, [&](int64_t begin, int64_t end) {
#ifdef DISTILL_DROPOUT_AVX2
    if (avx2) return FillMaskAvx2(out, static_cast<uint32_t>(begin), static_cast<uint32_t>(end), params);
#endif
    FillMaskScalar(out, static_cast<uint32_t>(begin), static_cast<uint32_t>(end), params);
  });
}

torch::Tensor RmsNormComposition(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  torch::Tensor x32 = x.to(torch::kFloat32);
  torch::Tensor variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (x32 * torch::rsqrt(variance + eps)).to(weight.scalar_type());
}

// Autograd records six nodes for the composition, and their backward runs about a dozen kernels with as
// many temporaries; this backward is one pass over the rows.
class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               double eps) {
    // The same ops as RmsNormComposition, so the forward values are bit-identical to it.
    torch::Tensor variance = x.pow(2).mean(-1, /*keepdim=*/true);
    torch::Tensor inv = torch::rsqrt(variance + eps);
    ctx->save_for_backward({x, weight, inv});
    return weight * (x * inv);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor x = saved[0].contiguous();
    const torch::Tensor weight = saved[1].contiguous();
    const torch::Tensor inv = saved[2].contiguous();
    const torch::Tensor grad = grad_outputs[0].contiguous();
    const int64_t dim = x.size(-1);
    const int64_t rows = x.numel() / dim;
    torch::Tensor grad_x = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    const float* wp = weight.data_ptr<float>();
    const float* ip = inv.data_ptr<float>();
    const float* gp = grad.data_ptr<float>();
    float* dxp = grad_x.data_ptr<float>();
    // y = w * x * s with s = (mean(x^2) + eps)^-1/2, so dL/dx = s * g * w - x * s^3 * sum(g * w * x) / D
    // and dL/dw = sum over rows of g * x * s.
    std::vector<float> grad_w(dim, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = xp + r * dim;
      const float* gr = gp + r * dim;
      float* dxr = dxp + r * dim;
      const float s = ip[r];
      float dot = 0;
      for (int64_t j = 0; j < dim; ++j) dot += gr[j] * wp[j] * xr[j];
      const float c = s * s * s * dot / static_cast<float>(dim);
      for (int64_t j = 0; j < dim; ++j) {
        dxr[j] = s * gr[j] * wp[j] - xr[j] * c;
        grad_w[j] += gr[j] * xr[j] * s;
      }
    }
    torch::Tensor grad_weight = torch::tensor(grad_w, weight.options());
    return {grad_x, grad_weight, torch::Tensor()};
  }
};

// Dropout's decisions: returns `x` itself (eval, p == 0), an undefined mask for p == 1 (all zeros), or the
// scaled keep-mask to multiply `x` by, drawn as the header describes.
bool NeedsDropout(const torch::Tensor& x, double p, bool train) {
  if (!train || p == 0) return false;
  TORCH_CHECK(p > 0 && p <= 1, "Dropout: probability must be in [0, 1], got ", p);
  return true;
}

torch::Tensor DropoutMask(const torch::Tensor& x, double p) {
  if (p == 1) return torch::zeros({}, x.options());
  const uint64_t seed = DrawSeed();
  // (1 - p) * 2^32 < 2^32 for p >= 2^-32; smaller p round to keeping everything but 1 in 2^32.
  const double keep_real = (1.0 - p) * 4294967296.0;
  const uint32_t keep = keep_real >= 4294967295.0 ? 0xffffffffU : static_cast<uint32_t>(keep_real);
  torch::Tensor mask = torch::empty(x.sizes(), torch::TensorOptions().dtype(torch::kFloat32));
  FillDropoutMask(mask, seed, keep, static_cast<float>(1.0 / (1.0 - p)));
  if (x.scalar_type() != torch::kFloat32) mask = mask.to(x.scalar_type());
  return mask;
}

torch::Tensor AttentionComposition(const torch::Tensor& query, const torch::Tensor& key,
                                   const torch::Tensor& value, const torch::Tensor& bias, double p,
                                   bool train) {
  torch::Tensor scores = torch::matmul(query, key.transpose(2, 3)) + bias;
  torch::Tensor weights = torch::softmax(scores.to(torch::kFloat32), -1).to(scores.scalar_type());
  return torch::matmul(Dropout(weights, p, train), value);
}

class AttentionCoreFunction : public torch::autograd::Function<AttentionCoreFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& query, const torch::Tensor& key,
                               const torch::Tensor& value, const torch::Tensor& bias, double p, bool train) {
    // The kernels of AttentionComposition, in its order (the mask's seed is drawn at the same point).
    torch::Tensor weights = torch::softmax(torch::matmul(query, key.transpose(2, 3)) + bias, -1);
    torch::Tensor mask, dropped = weights;
    if (NeedsDropout(weights, p, train)) {
      mask = DropoutMask(weights, p);
      dropped = weights * mask;
    }
    ctx->save_for_backward({query, key, value, weights, dropped, mask});
    ctx->saved_data["bias_sizes"] = bias.sizes().vec();
    ctx->saved_data["bias_grad"] = bias.requires_grad();
    return torch::matmul(dropped, value);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& query = saved[0];
    const torch::Tensor& key = saved[1];
    const torch::Tensor& value = saved[2];
    const torch::Tensor& weights = saved[3];
    const torch::Tensor& dropped = saved[4];
    const torch::Tensor& mask = saved[5];
    const torch::Tensor& grad = grad_outputs[0];
    torch::Tensor grad_weights = torch::matmul(grad, value.transpose(2, 3));
    torch::Tensor grad_value = torch::matmul(dropped.transpose(2, 3), grad);
    if (mask.defined()) grad_weights = grad_weights * mask;
    torch::Tensor grad_scores =
        torch::_softmax_backward_data(grad_weights, weights, -1, weights.scalar_type());
    torch::Tensor grad_query = torch::matmul(grad_scores, key);
    torch::Tensor grad_key = torch::matmul(grad_scores.transpose(2, 3), query);
    torch::Tensor grad_bias;
    if (ctx->saved_data["bias_grad"].toBool()) {
      grad_bias = grad_scores.sum_to_size(ctx->saved_data["bias_sizes"].toIntVector());
    }
    return {grad_query, grad_key, grad_value, grad_bias, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor Dropout(const torch::Tensor& x, double p, bool train) {
  if (!NeedsDropout(x, p, train)) return x;
  if (x.numel() >= (int64_t{1} << 32)) return torch::dropout(x, p, train);  // beyond 32-bit element indices
  // Autograd's backward of this product is grad * mask: nothing else is recorded.
  return x * DropoutMask(x, p);
}

torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (x.scalar_type() != torch::kFloat32 || weight.scalar_type() != torch::kFloat32 || weight.dim() != 1 ||
      x.device().type() != torch::kCPU) {
    return RmsNormComposition(x, weight, eps);
  }
  if (!torch::GradMode::is_enabled() || !(x.requires_grad() || weight.requires_grad())) {
    // No graph to record: the composition's kernels, without the Function's bookkeeping.
    return weight * (x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps));
  }
  return RmsNormFunction::apply(x, weight, eps);
}

torch::Tensor AttentionCore(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                            const torch::Tensor& bias, double p, bool train) {
  const bool needs_graph = torch::GradMode::is_enabled() && (query.requires_grad() || key.requires_grad() ||
                                                             value.requires_grad() || bias.requires_grad());
  const int64_t weights = query.numel() / std::max<int64_t>(query.size(-1), 1) * key.size(2);
  if (!needs_graph || query.scalar_type() != torch::kFloat32 || bias.scalar_type() != torch::kFloat32 ||
      weights >= (int64_t{1} << 32)) {
    return AttentionComposition(query, key, value, bias, p, train);
  }
  return AttentionCoreFunction::apply(query, key, value, bias, p, train);
}

}  // namespace distill::student
