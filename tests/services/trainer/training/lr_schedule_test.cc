#include "services/trainer/training/lr_schedule.h"

#include <cmath>

#include "gtest/gtest.h"

namespace distill::trainer {
namespace {

LrScheduleOptions Options(v1::LrSchedule schedule, int64_t warmup = 4, int64_t total = 14) {
  LrScheduleOptions o;
  o.peak = 1e-3;
  o.warmup_steps = warmup;
  o.schedule = schedule;
  o.total_steps = total;
  return o;
}

TEST(LrScheduleTest, WarmupRisesLinearlyToThePeak) {
  const LrScheduleOptions o = Options(v1::LR_SCHEDULE_LINEAR);
  EXPECT_DOUBLE_EQ(LearningRate(o, 0), 0.25e-3);
  EXPECT_DOUBLE_EQ(LearningRate(o, 1), 0.5e-3);
  EXPECT_DOUBLE_EQ(LearningRate(o, 3), 1e-3);
}

TEST(LrScheduleTest, LinearDecaysTowardsZeroAfterTheLastStep) {
  const LrScheduleOptions o = Options(v1::LR_SCHEDULE_LINEAR);  // 10 decay steps
  EXPECT_DOUBLE_EQ(LearningRate(o, 4), 1e-3);
  EXPECT_DOUBLE_EQ(LearningRate(o, 9), 0.5e-3);
  EXPECT_NEAR(LearningRate(o, 13), 0.1e-3, 1e-15);
  EXPECT_DOUBLE_EQ(LearningRate(o, 14), 0);
  EXPECT_DOUBLE_EQ(LearningRate(o, 100), 0);
}

TEST(LrScheduleTest, Cosine) {
  const LrScheduleOptions o = Options(v1::LR_SCHEDULE_COSINE);
  EXPECT_DOUBLE_EQ(LearningRate(o, 4), 1e-3);
  EXPECT_NEAR(LearningRate(o, 9), 0.5e-3, 1e-15);  // halfway
  EXPECT_NEAR(LearningRate(o, 6), 1e-3 * 0.5 * (1 + std::cos(M_PI * 0.2)), 1e-15);
  EXPECT_NEAR(LearningRate(o, 14), 0, 1e-15);
}

TEST(LrScheduleTest, ConstantAndNoWarmup) {
  const LrScheduleOptions o = Options(v1::LR_SCHEDULE_CONSTANT, 0);
  for (int64_t step : {0, 5, 13}) EXPECT_DOUBLE_EQ(LearningRate(o, step), 1e-3);
  const LrScheduleOptions unspecified = Options(v1::LR_SCHEDULE_UNSPECIFIED, 0, 10);  // = LINEAR
  EXPECT_DOUBLE_EQ(LearningRate(unspecified, 0), 1e-3);
  EXPECT_DOUBLE_EQ(LearningRate(unspecified, 5), 0.5e-3);
}

TEST(LrScheduleTest, WarmupLongerThanTheRun) {
  const LrScheduleOptions o = Options(v1::LR_SCHEDULE_LINEAR, 100, 10);
  EXPECT_DOUBLE_EQ(LearningRate(o, 9), 0.1e-3);
}

}  // namespace
}  // namespace distill::trainer
