#include "services/trainer/training/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace distill::trainer {

double LearningRate(const LrScheduleOptions& o, int64_t completed) {
  completed = std::max<int64_t>(completed, 0);
  if (completed < o.warmup_steps) {
    return o.peak * static_cast<double>(completed + 1) / static_cast<double>(o.warmup_steps);
  }
  const int64_t decay_steps = std::max<int64_t>(o.total_steps - o.warmup_steps, 1);
  const double p = std::clamp(
      static_cast<double>(completed - o.warmup_steps) / static_cast<double>(decay_steps), 0.0, 1.0);
  switch (o.schedule) {
    case v1::LR_SCHEDULE_CONSTANT:
      return o.peak;
    case v1::LR_SCHEDULE_COSINE:
      return o.peak * 0.5 * (1.0 + std::cos(M_PI * p));
    default:
      return o.peak * (1.0 - p);
  }
}

}  // namespace distill::trainer
