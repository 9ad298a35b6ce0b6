// The learning-rate schedule of TrainOptions; see train_options.h.
#include "executor/core/train_options.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace mpsim::executor {

double learning_rate(const TrainOptions& options, int64_t step) {
  const int64_t warmup = options.warmup_steps;
  if (warmup > 0 && step <= warmup) {
    return options.lr * static_cast<double>(std::max<int64_t>(step, 0)) /
           static_cast<double>(warmup);
  }
  if (options.steps <= warmup) return options.lr;  // no steps left to decay over
  const double progress = std::clamp(
      static_cast<double>(step - warmup) / static_cast<double>(options.steps - warmup), 0.0, 1.0);
  return options.min_lr +
         0.5 * (options.lr - options.min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace mpsim::executor
