#ifndef DISTILL_SERVICES_TRAINER_TRAINING_LR_SCHEDULE_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_LR_SCHEDULE_H_

// The learning rate of each optimizer step: linear warmup from 0, then constant, linear or cosine decay
// towards 0 (Hugging Face's get_{constant,linear,cosine}_schedule_with_warmup, except that warmup starts at
// peak/warmup_steps rather than at 0, so no step is wasted at a zero rate).

#include <cstdint>

#include "distill/v1/trainer.pb.h"

namespace distill::trainer {

struct LrScheduleOptions {
  double peak = 0;                                   // the learning rate after warmup, > 0
  int64_t warmup_steps = 0;                          // >= 0
  v1::LrSchedule schedule = v1::LR_SCHEDULE_LINEAR;  // UNSPECIFIED = LINEAR
  int64_t total_steps = 1;                           // >= 1
};

// The rate of the optimizer step that follows `completed` steps (0 for the first step):
//   warmup (completed < warmup_steps): peak · (completed + 1) / warmup_steps;
//   then, with p = (completed − warmup_steps) / (total_steps − warmup_steps) in [0, 1):
//     CONSTANT peak;  LINEAR peak · (1 − p);  COSINE peak · (1 + cos(π p)) / 2.
// It would reach 0 at completed = total_steps, one step after the last. Never negative.
double LearningRate(const LrScheduleOptions& options, int64_t completed);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_LR_SCHEDULE_H_
