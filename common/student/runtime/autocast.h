#ifndef DISTILL_COMMON_STUDENT_RUNTIME_AUTOCAST_H_
#define DISTILL_COMMON_STUDENT_RUNTIME_AUTOCAST_H_

// Mixed precision for the forward pass on a GPU: inside the scope, libtorch's autocast runs matrix
// products in bfloat16 and keeps reductions, norms and losses in float32, while the parameters (the
// optimizer's master weights) stay float32. Backward runs outside the scope, as autocast expects. On the
// CPU the scope does nothing: there float32 is what the training kernels are written for.

#include "torch/types.h"

namespace distill::student {

class CudaAutocastScope {
 public:
  explicit CudaAutocastScope(const torch::Device& device);
  ~CudaAutocastScope();
  CudaAutocastScope(const CudaAutocastScope&) = delete;
  CudaAutocastScope& operator=(const CudaAutocastScope&) = delete;

  bool active() const { return active_; }

 private:
  bool active_ = false;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_RUNTIME_AUTOCAST_H_
