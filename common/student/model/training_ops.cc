#include "common/student/model/training_ops.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <vector>

#include "ATen/CPUGeneratorImpl.h"
#include "ATen/Parallel.h"
#include "c10/util/Exception.h"
#include "torch/autograd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// x86-64 kernels (AVX2, AVX2 + FMA) compiled beside the portable loops, chosen at run time.
#define DISTILL_X86_SIMD 1
#include <immintrin.h>
#endif

namespace distill::student {
namespace {

#ifdef DISTILL_X86_SIMD
// Whether this CPU runs the avx2,fma kernels below (RMS norm's backward, the gated GELU).
bool UseAvx2Fma() {
  static const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2_fma;
}
#endif

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

#ifdef DISTILL_X86_SIMD
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
#ifdef DISTILL_X86_SIMD
  const bool avx2 = __builtin_cpu_supports("avx2");
#else
  const bool avx2 = false;
#endif
  at::parallel_for(0, mask.numel(), int64_t{1} << 16, [&](int64_t begin, int64_t end) {
#ifdef DISTILL_X86_SIMD
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

// RmsNormFunction's backward, row by row: grad_x rows, and grad_w accumulated over the rows.
struct RmsRows {
  const float* x;
  const float* w;
  const float* inv;
  const float* grad;
  float* grad_x;
  int64_t dim;
};

// Row r's sum of g * w * x over columns [begin, dim).
float RmsDot(const RmsRows& a, int64_t r, int64_t begin) {
  const float* xr = a.x + r * a.dim;
  const float* gr = a.grad + r * a.dim;
  float dot = 0;
  for (int64_t j = begin; j < a.dim; ++j) dot += gr[j] * a.w[j] * xr[j];
  return dot;
}

// Row r's grad_x, and its grad_w terms, over columns [begin, dim); c = s^3 * dot / D.
void RmsUpdate(const RmsRows& a, int64_t r, int64_t begin, float c, float* grad_w) {
  const float* xr = a.x + r * a.dim;
  const float* gr = a.grad + r * a.dim;
  float* dxr = a.grad_x + r * a.dim;
  const float s = a.inv[r];
  for (int64_t j = begin; j < a.dim; ++j) {
    dxr[j] = s * gr[j] * a.w[j] - xr[j] * c;
    grad_w[j] += gr[j] * xr[j] * s;
  }
}

float RmsC(const RmsRows& a, int64_t r, float dot) {
  const float s = a.inv[r];
  return s * s * s * dot / static_cast<float>(a.dim);
}

void RmsNormBackwardScalar(const RmsRows& a, int64_t rows, float* grad_w) {
  for (int64_t r = 0; r < rows; ++r) RmsUpdate(a, r, 0, RmsC(a, r, RmsDot(a, r, 0)), grad_w);
}

#ifdef DISTILL_X86_SIMD
// The scalar loop eight columns at a time; columns past the last multiple of 8 go through the scalar
// helpers.
__attribute__((target("avx2,fma"))) void RmsNormBackwardAvx2(const RmsRows& a, int64_t rows, float* grad_w) {
  const int64_t dim = a.dim, vec_end = dim / 8 * 8;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = a.x + r * dim;
    const float* gr = a.grad + r * dim;
    float* dxr = a.grad_x + r * dim;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < vec_end; j += 8) {
      acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(gr + j), _mm256_loadu_ps(a.w + j)),
                            _mm256_loadu_ps(xr + j), acc);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    const float dot = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) +
                      ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])) + RmsDot(a, r, vec_end);
    const float c = RmsC(a, r, dot);
    const __m256 vs = _mm256_set1_ps(a.inv[r]), vc = _mm256_set1_ps(c);
    for (int64_t j = 0; j < vec_end; j += 8) {
      const __m256 g = _mm256_loadu_ps(gr + j), x = _mm256_loadu_ps(xr + j);
      _mm256_storeu_ps(dxr + j, _mm256_fnmadd_ps(x, vc, _mm256_mul_ps(vs, _mm256_mul_ps(g, _mm256_loadu_ps(a.w + j)))));
      _mm256_storeu_ps(grad_w + j, _mm256_fmadd_ps(_mm256_mul_ps(g, x), vs, _mm256_loadu_ps(grad_w + j)));
    }
    RmsUpdate(a, r, vec_end, c, grad_w);
  }
}
#endif

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
    const RmsRows rows_args{xp, wp, ip, gp, dxp, dim};
#ifdef DISTILL_X86_SIMD
    if (UseAvx2Fma()) {
      RmsNormBackwardAvx2(rows_args, rows, grad_w.data());
    } else {
      RmsNormBackwardScalar(rows_args, rows, grad_w.data());
    }
#else
    RmsNormBackwardScalar(rows_args, rows, grad_w.data());
#endif
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

// The BLAS sgemm_ libtorch itself calls (its CPU matmuls go to the BLAS it was linked against), found in
// the process rather than linked: null when libtorch runs without one, and then HeadsMatmul declines.
using SgemmFn = void (*)(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                         const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                         const float* beta, float* c, const int* ldc);

SgemmFn Sgemm() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

// One [rows, cols] matrix of a 4-D tensor's last two dimensions as column-major BLAS sees it: either its
// rows are contiguous (stride(3) == 1; BLAS sees the transpose, "N" on it means the transpose) or its
// columns are (stride(2) == 1).
struct BlasOperand {
  bool rows_contiguous = true;
  int64_t ld = 0;
};

// The operand for x's matrices, or nullopt when neither dimension has unit stride (or the leading
// dimension would not satisfy BLAS's minimum).
std::optional<BlasOperand> AsBlasOperand(const torch::Tensor& x) {
  const int64_t rows = x.size(2), cols = x.size(3);
  if (x.stride(3) == 1 && (rows == 1 || x.stride(2) >= std::max<int64_t>(cols, 1))) {
    return BlasOperand{true, rows == 1 ? std::max<int64_t>(cols, 1) : x.stride(2)};
  }
  if (x.stride(2) == 1 && (cols == 1 || x.stride(3) >= std::max<int64_t>(rows, 1))) {
    return BlasOperand{false, cols == 1 ? std::max<int64_t>(rows, 1) : x.stride(3)};
  }
  return std::nullopt;
}

// out[b, h] = a[b, h] @ b[b, h] for float32 CPU tensors a [B, H, M, K], b [B, H, K, N] and out [B, H, M, N]
// (out's rows contiguous), any batch strides, each product one sgemm_ call on the matrices where they lie.
// This is what libtorch's bmm does on the CPU without MKL, less its per-matrix select, resolve_conj and
// addmm bookkeeping (about 1 us per matrix, more than the product itself at T5-tiny's head sizes), and
// without the copies matmul makes of transposed 4-D views. Returns false, leaving `out` alone, when sgemm_
// is not there or a layout does not suit it; the caller then uses torch::matmul.
bool HeadsMatmul(const torch::Tensor& a, const torch::Tensor& b, torch::Tensor& out) {
  const SgemmFn sgemm = Sgemm();
  if (sgemm == nullptr || out.stride(3) != 1) return false;
  const std::optional<BlasOperand> oa = AsBlasOperand(a), ob = AsBlasOperand(b);
  const int64_t batch = a.size(0), heads = a.size(1), m = a.size(2), k = a.size(3), n = b.size(3);
  const int64_t limit = std::numeric_limits<int>::max();
  if (!oa || !ob || m > limit || n > limit || k > limit || oa->ld > limit || ob->ld > limit ||
      out.stride(2) > limit) {
    return false;
  }
  if (m == 0 || n == 0) return true;
  if (k == 0) {
    out.zero_();
    return true;
  }
  // Row-major out = a @ b is column-major out^T = b^T @ a^T: b comes first. A row-contiguous matrix is, to
  // column-major BLAS, already its transpose ("N"); a column-contiguous one needs "T".
  const char* op_b = ob->rows_contiguous ? "N" : "T";
  const char* op_a = oa->rows_contiguous ? "N" : "T";
  const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k);
  const int lda = static_cast<int>(oa->ld), ldb = static_cast<int>(ob->ld);
  const int ldc = static_cast<int>(m == 1 ? std::max<int64_t>(n, 1) : out.stride(2));
  const float one = 1, zero = 0;
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* pc = out.data_ptr<float>();
  for (int64_t i = 0; i < batch; ++i) {
    for (int64_t j = 0; j < heads; ++j) {
      sgemm(op_b, op_a, &in, &im, &ik, &one, pb + i * b.stride(0) + j * b.stride(1), &ldb,
            pa + i * a.stride(0) + j * a.stride(1), &lda, &zero, pc + i * out.stride(0) + j * out.stride(1),
            &ldc);
    }
  }
  return true;
}

// An uninitialised [B, H, rows, cols] float32 tensor whose memory is laid out [B, rows, H, cols]: the
// layout of the projections the heads were split from, so the model's transpose(1, 2).reshape back to
// [B, rows, H * cols] (and autograd's way back through Heads) is a view, not a copy.
torch::Tensor EmptyHeadsMinor(int64_t batch, int64_t heads, int64_t rows, int64_t cols,
                              const torch::TensorOptions& options) {
  return torch::empty({batch, rows, heads, cols}, options).permute({0, 2, 1, 3});
}

// a @ b over the leading [B, H] dimensions, into a fresh tensor (heads_minor: laid out as EmptyHeadsMinor);
// torch::matmul when HeadsMatmul declines.
torch::Tensor MatmulHeads(const torch::Tensor& a, const torch::Tensor& b, bool heads_minor) {
  const int64_t batch = a.size(0), heads = a.size(1), m = a.size(2), n = b.size(3);
  if (a.dim() == 4 && b.dim() == 4 && b.size(0) == batch && b.size(1) == heads && b.size(2) == a.size(3) &&
      a.scalar_type() == torch::kFloat32 && b.scalar_type() == torch::kFloat32 &&
      a.device().is_cpu() && b.device().is_cpu()) {
    torch::Tensor out = heads_minor ? EmptyHeadsMinor(batch, heads, m, n, a.options())
                                    : torch::empty({batch, heads, m, n}, a.options());
    if (HeadsMatmul(a, b, out)) return out;
  }
  return torch::matmul(a, b);
}

class AttentionCoreFunction : public torch::autograd::Function<AttentionCoreFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& query, const torch::Tensor& key,
                               const torch::Tensor& value, const torch::Tensor& bias, double p, bool train) {
    // AttentionComposition's function in its order (the mask's seed is drawn at the same point), with the
    // products as MatmulHeads and the bias added in place.
    torch::Tensor scores = MatmulHeads(query, key.transpose(2, 3), /*heads_minor=*/false);
    torch::Tensor weights = torch::softmax(scores.add_(bias), -1);
    scores = torch::Tensor();
    torch::Tensor mask, dropped = weights;
    if (NeedsDropout(weights, p, train)) {
      mask = DropoutMask(weights, p);
      dropped = weights * mask;
    }
    ctx->save_for_backward({query, key, value, weights, dropped, mask});
    ctx->saved_data["bias_sizes"] = bias.sizes().vec();
    ctx->saved_data["bias_grad"] = bias.requires_grad();
    return MatmulHeads(dropped, value, /*heads_minor=*/true);
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
    torch::Tensor grad_weights = MatmulHeads(grad, value.transpose(2, 3), /*heads_minor=*/false);
    torch::Tensor grad_value = MatmulHeads(dropped.transpose(2, 3), grad, /*heads_minor=*/true);
    if (mask.defined()) grad_weights.mul_(mask);
    torch::Tensor grad_scores =
        torch::_softmax_backward_data(grad_weights, weights, -1, weights.scalar_type());
    grad_weights = torch::Tensor();
    torch::Tensor grad_query = MatmulHeads(grad_scores, key, /*heads_minor=*/true);
    torch::Tensor grad_key = MatmulHeads(grad_scores.transpose(2, 3), query, /*heads_minor=*/true);
    torch::Tensor grad_bias;
    if (ctx->saved_data["bias_grad"].toBool()) {
      grad_bias = grad_scores.sum_to_size(ctx->saved_data["bias_sizes"].toIntVector());
    }
    return {grad_query, grad_key, grad_value, grad_bias, torch::Tensor(), torch::Tensor()};
  }
};


// ---------------------------------------------------------------------------------------------------
// Gated GELU: gelu_tanh(a) * b (times the dropout mask), where gelu_tanh(a) = a/2 * (1 + tanh(u)),
// u = sqrt(2/pi) * (a + 0.044715 a^3), and its backward, one pass over the rows each.

constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluCubic = 0.044715f;

// Row ranges of the gated GELU, on [rows, 2F] projections (a = columns [0, F), b = [F, 2F)) with row
// stride `ld`, and [rows, F] contiguous `mask` (nullptr: none), hidden, gradients.
struct GatedGeluArgs {
  const float* projected;
  int64_t ld;
  int64_t width;  // F
  const float* mask;
};

inline void GatedGeluForwardScalar(const GatedGeluArgs& g, int64_t row, int64_t begin, float* out) {
  const float* a = g.projected + row * g.ld;
  const float* b = a + g.width;
  const float* m = g.mask == nullptr ? nullptr : g.mask + row * g.width;
  for (int64_t j = begin; j < g.width; ++j) {
    const float x = a[j];
    const float t = std::tanh(kGeluScale * (x + kGeluCubic * x * x * x));
    const float h = 0.5f * x * (1.0f + t) * b[j];
    out[j] = m == nullptr ? h : h * m[j];
  }
}

inline void GatedGeluBackwardScalar(const GatedGeluArgs& g, int64_t row, int64_t begin, const float* grad,
                                    float* grad_projected) {
  const float* a = g.projected + row * g.ld;
  const float* b = a + g.width;
  const float* m = g.mask == nullptr ? nullptr : g.mask + row * g.width;
  float* da = grad_projected + row * 2 * g.width;
  float* db = da + g.width;
  for (int64_t j = begin; j < g.width; ++j) {
    const float x = a[j];
    const float t = std::tanh(kGeluScale * (x + kGeluCubic * x * x * x));
    const float gm = m == nullptr ? grad[j] : grad[j] * m[j];
    const float gelu = 0.5f * x * (1.0f + t);
    const float dgelu =
        0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kGeluScale * (1.0f + 3.0f * kGeluCubic * x * x);
    db[j] = gm * gelu;
    da[j] = gm * b[j] * dgelu;
  }
}

#ifdef DISTILL_X86_SIMD
// tanh(u) = sign(u) (1 - e) / (1 + e) with e = exp(-2|u|): an absolute error of a few 1e-8, which is what
// GELU's 1 + tanh needs. exp by Cody-Waite reduction to |r| <= ln2/2 and a degree-6 polynomial.
__attribute__((target("avx2,fma"))) inline __m256 Tanh8(__m256 u) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256 abs_u = _mm256_andnot_ps(sign_bit, u);
  // x = -2|u| clamped where exp underflows (tanh is 1 in float well before).
  const __m256 x = _mm256_max_ps(_mm256_mul_ps(abs_u, _mm256_set1_ps(-2.0f)), _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  return _mm256_or_ps(t, _mm256_and_ps(u, sign_bit));
}

__attribute__((target("avx2,fma"))) void GatedGeluForwardAvx2(const GatedGeluArgs& g, int64_t row, float* out) {
  const float* a = g.projected + row * g.ld;
  const float* b = a + g.width;
  const float* m = g.mask == nullptr ? nullptr : g.mask + row * g.width;
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  int64_t j = 0;
  for (; j + 8 <= g.width; j += 8) {
    const __m256 x = _mm256_loadu_ps(a + j);
    const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    const __m256 u = _mm256_mul_ps(_mm256_set1_ps(kGeluScale), _mm256_fmadd_ps(_mm256_set1_ps(kGeluCubic), x3, x));
    __m256 h = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, Tanh8(u))),
                             _mm256_loadu_ps(b + j));
    if (m != nullptr) h = _mm256_mul_ps(h, _mm256_loadu_ps(m + j));
    _mm256_storeu_ps(out + j, h);
  }
  GatedGeluForwardScalar(g, row, j, out);
}

__attribute__((target("avx2,fma"))) void GatedGeluBackwardAvx2(const GatedGeluArgs& g, int64_t row,
                                                               const float* grad, float* grad_projected) {
  const float* a = g.projected + row * g.ld;
  const float* b = a + g.width;
  const float* m = g.mask == nullptr ? nullptr : g.mask + row * g.width;
  float* da = grad_projected + row * 2 * g.width;
  float* db = da + g.width;
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  const __m256 scale = _mm256_set1_ps(kGeluScale), cubic = _mm256_set1_ps(kGeluCubic);
  const __m256 cubic3 = _mm256_set1_ps(3.0f * kGeluCubic);
  int64_t j = 0;
  for (; j + 8 <= g.width; j += 8) {
    const __m256 x = _mm256_loadu_ps(a + j);
    const __m256 x2 = _mm256_mul_ps(x, x);
    const __m256 u = _mm256_mul_ps(scale, _mm256_fmadd_ps(cubic, _mm256_mul_ps(x2, x), x));
    const __m256 t = Tanh8(u);
    __m256 gm = _mm256_loadu_ps(grad + j);
    if (m != nullptr) gm = _mm256_mul_ps(gm, _mm256_loadu_ps(m + j));
    const __m256 one_plus_t = _mm256_add_ps(one, t);
    const __m256 gelu = _mm256_mul_ps(_mm256_mul_ps(half, x), one_plus_t);
    // 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3c x^2)
    const __m256 du = _mm256_mul_ps(scale, _mm256_fmadd_ps(cubic3, x2, one));
    const __m256 sech2 = _mm256_fnmadd_ps(t, t, one);
    const __m256 dgelu =
        _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(half, x), sech2), du, _mm256_mul_ps(half, one_plus_t));
    _mm256_storeu_ps(db + j, _mm256_mul_ps(gm, gelu));
    _mm256_storeu_ps(da + j, _mm256_mul_ps(_mm256_mul_ps(gm, _mm256_loadu_ps(b + j)), dgelu));
  }
  GatedGeluBackwardScalar(g, row, j, grad, grad_projected);
}
#endif

torch::Tensor GatedGeluComposition(const torch::Tensor& projected, double p, bool train) {
  std::vector<torch::Tensor> ab = projected.chunk(2, -1);
  return Dropout(torch::gelu(ab[0], "tanh") * ab[1], p, train);
}

// row_fn(r) for every r in [0, rows), over libtorch's intra-op threads in chunks of about 16K elements.
template <typename RowFn>
void ForEachRow(int64_t rows, int64_t width, const RowFn& row_fn) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(width, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t r = begin; r < end; ++r) row_fn(r);
                   });
}

class GatedGeluFunction : public torch::autograd::Function<GatedGeluFunction> {
 public:
  // projected [..., 2F] with contiguous rows (any row stride).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& projected, double p, bool train) {
    const int64_t width = projected.size(-1) / 2;
    const int64_t rows = projected.numel() / std::max<int64_t>(2 * width, 1);
    std::vector<int64_t> sizes = projected.sizes().vec();
    sizes.back() = width;
    torch::Tensor hidden = torch::empty(sizes, projected.options());
    torch::Tensor mask;  // [..., F] contiguous, or undefined for no dropout
    if (NeedsDropout(projected, p, train)) {
      mask = p == 1 ? torch::zeros(sizes, projected.options()) : DropoutMask(hidden, p);
    }
    const torch::Tensor flat = projected.reshape({rows, 2 * width});
    const GatedGeluArgs args{flat.data_ptr<float>(), flat.stride(0), width,
                             mask.defined() ? mask.data_ptr<float>() : nullptr};
    float* out = hidden.data_ptr<float>();
    ForEachRow(rows, width, [&](int64_t r) {
#ifdef DISTILL_X86_SIMD
      if (UseAvx2Fma()) return GatedGeluForwardAvx2(args, r, out + r * width);
#endif
      GatedGeluForwardScalar(args, r, 0, out + r * width);
    });
    ctx->save_for_backward({flat, mask});
    ctx->saved_data["sizes"] = projected.sizes().vec();
    return hidden;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& flat = saved[0];
    const torch::Tensor& mask = saved[1];
    const int64_t rows = flat.size(0), width = flat.size(1) / 2;
    const torch::Tensor grad = grad_outputs[0].contiguous();
    torch::Tensor grad_projected = torch::empty({rows, 2 * width}, flat.options());
    const GatedGeluArgs args{flat.data_ptr<float>(), flat.stride(0), width,
                             mask.defined() ? mask.data_ptr<float>() : nullptr};
    const float* g = grad.data_ptr<float>();
    float* out = grad_projected.data_ptr<float>();
    ForEachRow(rows, width, [&](int64_t r) {
#ifdef DISTILL_X86_SIMD
      if (UseAvx2Fma()) return GatedGeluBackwardAvx2(args, r, g + r * width, out);
#endif
      GatedGeluBackwardScalar(args, r, 0, g + r * width, out);
    });
    return {grad_projected.view(ctx->saved_data["sizes"].toIntVector()), torch::Tensor(), torch::Tensor()};
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

torch::Tensor GatedGelu(const torch::Tensor& projected, double p, bool train) {
  TORCH_CHECK(projected.dim() >= 1 && projected.size(-1) % 2 == 0,
              "GatedGelu: the last dimension must be even (two halves), got ", projected.sizes());
  const bool needs_graph = torch::GradMode::is_enabled() && projected.requires_grad();
  if (!needs_graph || projected.scalar_type() != torch::kFloat32 || !projected.device().is_cpu() ||
      projected.stride(-1) != 1 || projected.numel() >= (int64_t{1} << 32)) {
    return GatedGeluComposition(projected, p, train);
  }
  return GatedGeluFunction::apply(projected, p, train);
}

}  // namespace distill::student
