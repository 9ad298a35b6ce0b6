// learning_rate(): linear warm-up, then cosine decay to min_lr, against the closed form
// lr(t) = t/W * lr for t <= W, else min + (lr - min) * (1 + cos(pi * (t - W) / (T - W))) / 2,
// evaluated by hand at points where the cosine is known exactly.
#include "executor/core/train_options.h"

#include <gtest/gtest.h>

namespace mpsim::executor {
namespace {

constexpr double kTolerance = 1e-15;  // rates are ~1e-4: about 10 significant digits

TrainOptions schedule(double lr, double min_lr, int64_t warmup, int64_t steps) {
  TrainOptions o;
  o.lr = lr;
  o.min_lr = min_lr;
  o.warmup_steps = warmup;
  o.steps = steps;
  return o;
}

TEST(LearningRate, WarmUpThenCosine) {
  const TrainOptions o = schedule(1e-3, 1e-4, 10, 110);
  EXPECT_NEAR(learning_rate(o, 1), 1e-4, kTolerance);  // 1/10 of the peak
  EXPECT_NEAR(learning_rate(o, 5), 5e-4, kTolerance);
  EXPECT_NEAR(learning_rate(o, 10), 1e-3, kTolerance);  // peak at the end of warm-up
  // A quarter of the way: cos(pi/4) = sqrt(2)/2.
  EXPECT_NEAR(learning_rate(o, 35), 1e-4 + 9e-4 * (1 + 0.70710678118654752) / 2, kTolerance);
  EXPECT_NEAR(learning_rate(o, 60), 5.5e-4, kTolerance);  // halfway: the mean of peak and floor
  EXPECT_NEAR(learning_rate(o, 85), 1e-4 + 9e-4 * (1 - 0.70710678118654752) / 2, kTolerance);
  EXPECT_NEAR(learning_rate(o, 110), 1e-4, kTolerance);  // the floor at the last step
  EXPECT_NEAR(learning_rate(o, 200), 1e-4, kTolerance);  // and after it
}

TEST(LearningRate, NoWarmUp) {
  const TrainOptions o = schedule(6e-4, 0, 0, 4);
  EXPECT_NEAR(learning_rate(o, 0), 6e-4, kTolerance);
  // Step 2 of 4 is halfway; steps 1 and 3 are at cos(pi/4) and cos(3pi/4).
  EXPECT_NEAR(learning_rate(o, 1), 6e-4 * (1 + 0.70710678118654752) / 2, kTolerance);
  EXPECT_NEAR(learning_rate(o, 2), 3e-4, kTolerance);
  EXPECT_NEAR(learning_rate(o, 3), 6e-4 * (1 - 0.70710678118654752) / 2, kTolerance);
  EXPECT_NEAR(learning_rate(o, 4), 0, kTolerance);
}

TEST(LearningRate, RunNoLongerThanWarmUpStaysAtThePeakAfterIt) {
  const TrainOptions o = schedule(1e-3, 1e-5, 10, 10);
  EXPECT_NEAR(learning_rate(o, 5), 5e-4, kTolerance);
  EXPECT_NEAR(learning_rate(o, 10), 1e-3, kTolerance);
  EXPECT_NEAR(learning_rate(o, 11), 1e-3, kTolerance);
  const TrainOptions shorter = schedule(1e-3, 1e-5, 20, 10);
  EXPECT_NEAR(learning_rate(shorter, 10), 5e-4, kTolerance);
  EXPECT_NEAR(learning_rate(shorter, 21), 1e-3, kTolerance);
}

TEST(LearningRate, ConstantWhenFloorEqualsPeak) {
  const TrainOptions o = schedule(3e-4, 3e-4, 0, 50);
  for (int64_t step : {1, 17, 25, 50}) EXPECT_NEAR(learning_rate(o, step), 3e-4, kTolerance);
}

}  // namespace
}  // namespace mpsim::executor
