#include "common/student/optim/fused_adamw.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "ATen/Parallel.h"
#include "c10/util/Exception.h"
#include "c10/util/string_utils.h"
#include "torch/types.h"
#include "torch/utils.h"

namespace distill::student {
namespace {

using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

struct Coefficients {
  float decay;          // 1 - lr * weight_decay
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float sqrt_bias_correction2;
  float step_size;      // lr / bias_correction1
  float eps;
};

// Elements [begin, end) of the whole update of one parameter: what the op chain in libtorch's
// AdamW::step does in nine passes (mul_, mul_, add_, mul_, addcmul_, sqrt, div, add_, addcdiv_), in one,
// with the same operations per element.
struct Buffers {
  float* __restrict p;
  const float* __restrict g;
  float* __restrict m;
  float* __restrict v;
};

void UpdateScalar(const Buffers& b, int64_t begin, int64_t end, const Coefficients& c) {
  for (int64_t i = begin; i < end; ++i) {
    const float gi = b.g[i];
    const float mi = b.m[i] * c.beta1 + gi * c.one_minus_beta1;
    const float vi = b.v[i] * c.beta2 + gi * gi * c.one_minus_beta2;
    b.m[i] = mi;
    b.v[i] = vi;
    const float denom = std::sqrt(vi) / c.sqrt_bias_correction2 + c.eps;
    b.p[i] = b.p[i] * c.decay - c.step_size * (mi / denom);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define DISTILL_ADAMW_AVX2 1
typedef float F32x8 __attribute__((vector_size(32)));

// UpdateScalar eight lanes at a time; the same IEEE operations (no FMA), so the same bits.
__attribute__((target("avx2"))) void UpdateAvx2(const Buffers& b, int64_t begin, int64_t end,
                                                const Coefficients& c) {
  const F32x8 zero = {};
  int64_t i = begin;
  for (; end - i >= 8; i += 8) {
    F32x8 g, m, v, p;
    std::memcpy(&g, b.g + i, sizeof(g));
    std::memcpy(&m, b.m + i, sizeof(m));
    std::memcpy(&v, b.v + i, sizeof(v));
    std::memcpy(&p, b.p + i, sizeof(p));
    m = m * (zero + c.beta1) + g * (zero + c.one_minus_beta1);
    v = v * (zero + c.beta2) + g * g * (zero + c.one_minus_beta2);
    const F32x8 denom = __builtin_ia32_sqrtps256(v) / (zero + c.sqrt_bias_correction2) + c.eps;
    p = p * (zero + c.decay) - (zero + c.step_size) * (m / denom);
    std::memcpy(b.m + i, &m, sizeof(m));
    std::memcpy(b.v + i, &v, sizeof(v));
    std::memcpy(b.p + i, &p, sizeof(p));
  }
  UpdateScalar(b, i, end, c);
}
#endif

void FusedUpdate(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg,
                 torch::Tensor& exp_avg_sq, const Coefficients& c) {
  const Buffers b{param.data_ptr<float>(), grad.data_ptr<float>(), exp_avg.data_ptr<float>(),
                  exp_avg_sq.data_ptr<float>()};
#ifdef DISTILL_ADAMW_AVX2
  const bool avx2 = __builtin_cpu_supports("avx2");
#else
  const bool avx2 = false;
#endif
  at::parallel_for(0, param.numel(), int64_t{1} << 15, [&](int64_t begin, int64_t end) {
#ifdef DISTILL_ADAMW_AVX2
    if (avx2) return UpdateAvx2(b, begin, end, c);
#endif
    UpdateScalar(b, begin, end, c);
  });
}

bool Fusable(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous() && !t.is_sparse();
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    auto& options = static_cast<AdamWOptions&>(group.options());
    const double lr = options.lr();
    const double weight_decay = options.weight_decay();
    const double beta1 = std::get<0>(options.betas());
    const double beta2 = std::get<1>(options.betas());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const torch::Tensor& grad = p.grad();
      TORCH_CHECK(!grad.is_sparse(), "FusedAdamW does not support sparse gradients");
      // The key libtorch's optimizers use, so save()/load() see the same state map.
      void* const key = p.unsafeGetTensorImpl();
      auto found = state_.find(key);
      if (found == state_.end()) {
        auto state = std::make_unique<AdamWParamState>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (options.amsgrad()) state->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        found = state_.emplace(key, std::move(state)).first;
      }
      auto& state = static_cast<AdamWParamState&>(*found->second);
      torch::Tensor& exp_avg = state.exp_avg();
      torch::Tensor& exp_avg_sq = state.exp_avg_sq();
      state.step(state.step() + 1);
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      const double step_size = lr / bias_correction1;

      if (!options.amsgrad() && Fusable(p) && Fusable(grad) && Fusable(exp_avg) && Fusable(exp_avg_sq) &&
          grad.numel() == p.numel()) {
        const Coefficients c{static_cast<float>(1 - lr * weight_decay),
                             static_cast<float>(beta1),
                             static_cast<float>(1 - beta1),
                             static_cast<float>(beta2),
                             static_cast<float>(1 - beta2),
                             static_cast<float>(std::sqrt(bias_correction2)),
                             static_cast<float>(step_size),
                             static_cast<float>(options.eps())};
        FusedUpdate(p, grad, exp_avg, exp_avg_sq, c);
        continue;
      }
      // libtorch's AdamW::step, verbatim in effect.
      if (weight_decay != 0) p.mul_(1 - lr * weight_decay);
      exp_avg.mul_(beta1).add_(grad, 1 - beta1);
      exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      torch::Tensor denom;
      if (options.amsgrad()) {
        torch::Tensor& max_exp_avg_sq = state.max_exp_avg_sq();
        torch::max_out(max_exp_avg_sq, exp_avg_sq, max_exp_avg_sq);
        denom = (max_exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options.eps());
      } else {
        denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options.eps());
      }
      p.addcdiv_(exp_avg, denom, -step_size);
    }
  }
  return loss;
}

void FusedAdamW::ZeroGrad() {
  for (auto& group : param_groups_) {
    for (auto& p : group.params()) p.mutable_grad() = torch::Tensor();
  }
}

}  // namespace distill::student
