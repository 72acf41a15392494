#ifndef DISTILL_COMMON_STUDENT_MODEL_TRAINING_OPS_H_
#define DISTILL_COMMON_STUDENT_MODEL_TRAINING_OPS_H_

// Kernels the T5 model uses in place of compositions of libtorch ops, because a training step on the CPU is
// dominated by per-op overhead (dispatcher and autograd bookkeeping) at small shapes and by memory passes at
// larger ones. Each computes the same function as the composition it replaces (noted per function); the
// unit tests compare values and gradients against that composition.
//
// Thread-safety: the functions are thread-safe as far as libtorch ops are (Dropout takes the lock of
// libtorch's default CPU generator for its one draw).

#include "torch/types.h"

namespace distill::student {

// Inverted dropout, the function torch::dropout(x, p, train) computes: in training mode every element is
// kept independently with probability 1 - p and scaled by 1 / (1 - p), or set to 0; otherwise (or when
// p == 0) returns `x` itself. p must be in [0, 1]; p == 1 gives zeros.
//
// The mask comes from a counter-based hash (murmur3's finalizer, twice) of the element index and one
// 64-bit seed drawn from libtorch's default CPU generator, so torch::manual_seed (and restoring the
// generator's state) reproduces it exactly, whatever the thread count or CPU. The bits differ from
// torch::dropout's (which draws one Bernoulli per element from the generator, under its lock); the
// distribution is the same up to the keep probability's rounding to a multiple of 2^-32.
torch::Tensor Dropout(const torch::Tensor& x, double p, bool train);

// T5's RMS layer norm, weight * (x * rsqrt(mean(x^2, -1) + eps)) over the last dimension, computed exactly
// as that composition of libtorch ops (same kernels, so the same bits) but recorded as one autograd node
// whose backward is a single pass. float32 `x` [..., D] and `weight` [D]; other dtypes fall back to the
// plain composition (with the variance in float32, as transformers' T5LayerNorm computes it).
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// T5's attention between the projections: dropout(softmax(query @ key^T + bias)) @ value, with no
// 1/sqrt(d_kv) scaling. query [B, H, T, d], key and value [B, H, S, d], bias broadcastable to [B, H, T, S]
// (it may require grad: the relative position bias does) -> [B, H, T, d], laid out in memory as
// [B, T, H, d] so that transposing back to [B, T, H * d] is a view. With a graph to record, autograd gets
// one node instead of about ten, whose backward runs only the kernels the gradients need (four products,
// the mask product, softmax's backward and, when bias requires grad, its reduction), and every per-head
// product is one call to the BLAS sgemm libtorch uses, on the heads where they lie (the model's heads are
// transposed views of the projections): no copies, none of bmm's per-matrix bookkeeping. Values equal the
// composition's to rounding (bit-identical where libtorch's own matmul also calls sgemm per matrix; it
// sums tiny matrices in its own loop). Without a graph, or for other dtypes, runs the composition.
torch::Tensor AttentionCore(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                            const torch::Tensor& bias, double p, bool train);

// T5 v1.1's gated feed-forward between its projections: dropout(gelu_tanh(a) * b, p) where `projected`
// [..., 2F] is a and b side by side ([..., :F] and [..., F:]: the output of one matmul by the stacked
// wi_0 and wi_1 weights) -> [..., F]. With a graph to record (float32), autograd gets one node whose
// forward and backward are each one vectorised pass (tanh computed in place, to a few 1e-8 absolute), in
// place of gelu, the product and the dropout product with their three backwards and the split's
// concatenation; the gradient comes back as one [..., 2F] tensor. The dropout mask is Dropout's (same
// seed draw). Values equal the composition's to ~1e-6 relative. Otherwise runs the composition.
torch::Tensor GatedGelu(const torch::Tensor& projected, double p, bool train);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_MODEL_TRAINING_OPS_H_
