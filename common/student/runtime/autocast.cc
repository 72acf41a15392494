#include "common/student/runtime/autocast.h"

#include "ATen/autocast_mode.h"

namespace distill::student {

CudaAutocastScope::CudaAutocastScope(const torch::Device& device) : active_(device.is_cuda()) {
  if (!active_) return;
  previous_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
  previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::increment_nesting();
}

CudaAutocastScope::~CudaAutocastScope() {
  if (!active_) return;
  // The outermost scope drops the casts of the weights it cached.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(at::kCUDA, previous_enabled_);
  at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
}

}  // namespace distill::student
