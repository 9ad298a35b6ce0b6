#include <algorithm>
#include <stdexcept>

#include "simulator/schedule/pipeline_schedule.h"

namespace mpsim::schedule {
namespace {

class OneFOneBSchedule final : public PipelineSchedule {
 public:
  using PipelineSchedule::PipelineSchedule;
  std::string_view name() const override { return "1f1b"; }
  std::vector<PipelineStep> steps(int stage) const override {
    const int warmup = std::min(stages_ - stage - 1, micro_batches_);
    const int steady = micro_batches_ - warmup;
    std::vector<PipelineStep> out;
    out.reserve(2 * micro_batches_);
    for (int i = 0; i < warmup; ++i) out.push_back({true, i, 0});
    for (int i = 0; i < steady; ++i) {
      out.push_back({true, warmup + i, 0});
      out.push_back({false, i, 0});
    }
    for (int i = steady; i < micro_batches_; ++i) out.push_back({false, i, 0});
    return out;
  }
};

}  // namespace

std::unique_ptr<PipelineSchedule> make_one_f_one_b_schedule(int stages, int micro_batches) {
  if (stages < 1 || micro_batches < 1) {
    throw std::invalid_argument("1f1b schedule needs stages >= 1 and micro-batches >= 1");
  }
  return std::make_unique<OneFOneBSchedule>(stages, micro_batches, 1);
}

}  // namespace mpsim::schedule
