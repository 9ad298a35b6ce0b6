#include <stdexcept>

#include "simulator/schedule/pipeline_schedule.h"

namespace mpsim::schedule {
namespace {

class GpipeSchedule final : public PipelineSchedule {
 public:
  using PipelineSchedule::PipelineSchedule;
  std::string_view name() const override { return "gpipe"; }
  std::vector<PipelineStep> steps(int /*stage*/) const override {
    std::vector<PipelineStep> out;
    out.reserve(2 * micro_batches_);
    for (int mb = 0; mb < micro_batches_; ++mb) out.push_back({true, mb, 0});
    for (int mb = 0; mb < micro_batches_; ++mb) out.push_back({false, mb, 0});
    return out;
  }
};

}  // namespace

std::unique_ptr<PipelineSchedule> make_gpipe_schedule(int stages, int micro_batches) {
  if (stages < 1 || micro_batches < 1) {
    throw std::invalid_argument("gpipe schedule needs stages >= 1 and micro-batches >= 1");
  }
  return std::make_unique<GpipeSchedule>(stages, micro_batches, 1);
}

}  // namespace mpsim::schedule
