#ifndef DISTILL_COMMON_STUDENT_MODEL_FEW_ROWS_LINEAR_H_
#define DISTILL_COMMON_STUDENT_MODEL_FEW_ROWS_LINEAR_H_

// The product of a few rows with a weight matrix, x · wᵀ, for decoding steps.
//
// A cached decoding step multiplies a handful of rows (one per sequence in the batch) by every weight of
// the decoder and by the output embedding. Such a product reads each weight element once and uses it a
// few times. A BLAS sgemm first copies ("packs") the weight into its own layout: for 16 rows that copy is
// a second pass over the weight, about as long as the product itself. This kernel reads the weight where
// it lies, as dot products of rows (both x and w are [.., K] row-major), and splits the weight's rows
// across libtorch's intra-op threads. It beats the wheel's MKL on t5-v1_1-small's decoding shapes, one row
// included (bench/runtime/README.md).

#include <optional>

#include "torch/types.h"

namespace distill::student {

// The most rows FewRowsLinear takes: a decoding step's batch times its beams. The kernel keeps all of x in
// cache while it streams w; larger products (training, the encoder) are what sgemm is built for.
inline constexpr int64_t kFewRowsMaxRows = 64;

// x [..., K] · w [N, K]ᵀ -> [..., N], or nullopt when the kernel does not apply and the caller should use
// torch::matmul: it applies to float32 CPU tensors outside autograd (grad mode off, or neither tensor
// requires grad) with at most kFewRowsMaxRows rows in x, a contiguous w, on CPUs with AVX-512F.
// Results equal torch::matmul's to float32 rounding (sums are taken in a different order).
//
// Thread-safe. Helper threads are shared by the whole process; a call that finds them busy with another
// caller's product computes on its own thread alone.
std::optional<torch::Tensor> FewRowsLinear(const torch::Tensor& x, const torch::Tensor& w);

// The threads FewRowsLinear splits a product across: the count SetFewRowsLinearThreads gave, else
// libtorch's intra-op thread count (the threads its own matrix products would use).
int FewRowsLinearThreads();
// Sets that count (0: follow libtorch's intra-op count again). Process-wide.
void SetFewRowsLinearThreads(int threads);

// The thread layout for decoding (the inference server, the benchmark's generation): libtorch's OpenMP pool gets 1 thread and FewRowsLinear's helpers `threads` (0: libtorch's
// current intra-op count). libgomp's idle workers spin after every parallel region, and a decoding step
// hands its products to FewRowsLinear's helpers between small elementwise ops: with both pools sized to
// the cores, the spinning OpenMP workers took the cores the helpers needed (bench/student/README.md).
// Returns the helpers' count.
int ConfigureDecodingThreads(int threads = 0);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_MODEL_FEW_ROWS_LINEAR_H_
