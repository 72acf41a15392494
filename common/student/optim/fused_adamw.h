#ifndef DISTILL_COMMON_STUDENT_OPTIM_FUSED_ADAMW_H_
#define DISTILL_COMMON_STUDENT_OPTIM_FUSED_ADAMW_H_

// AdamW as torch::optim::AdamW defines it (decoupled weight decay p *= 1 - lr * wd, bias-corrected moments,
// eps added after the square root, optional amsgrad), with the update of each float32 CPU parameter done
// in one pass over its elements instead of libtorch's chain of nine tensor ops (each a full memory pass,
// two of them allocating). Results equal torch::optim::AdamW's up to float rounding (the order of a few
// multiplications differs).
//
// The optimizer state is torch::optim::AdamW's own (AdamWParamState under the same keys), so save() and
// load() write and read exactly what torch::optim::AdamW does and checkpoints are interchangeable with it.
// Parameters that are not float32, contiguous CPU tensors, and amsgrad, take libtorch's op chain.
//
// Thread-safety: thread-compatible, like every torch::optim optimizer.

#include "torch/optim/adamw.h"

namespace distill::student {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;

  // One AdamW update of every parameter with a defined gradient (the others are skipped, as libtorch
  // does). Runs `closure` first, with autograd on, when given, and returns its loss.
  torch::Tensor step(LossClosure closure = nullptr) override;

  // Drops every parameter's gradient (set_to_none). The next backward then writes fresh gradients
  // instead of zero-filling the old ones and adding into them: two memory passes fewer per parameter
  // than zero_grad(). Code that reads gradients must accept undefined ones (as step() does).
  void ZeroGrad();
};

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_OPTIM_FUSED_ADAMW_H_
