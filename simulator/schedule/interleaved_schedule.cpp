#include <algorithm>
#include <stdexcept>
#include <string>

#include "simulator/schedule/pipeline_schedule.h"

namespace mpsim::schedule {
namespace {

// Megatron-LM's interleaved 1F1B: the k-th forward (or backward) step of a rank works on the
// micro-batch and chunk below; groups of `stages` micro-batches go through one chunk before the
// next chunk starts. Backward steps visit chunks in reverse.
class InterleavedSchedule final : public PipelineSchedule {
 public:
  using PipelineSchedule::PipelineSchedule;
  std::string_view name() const override { return "interleaved"; }

  std::vector<PipelineStep> steps(int stage) const override {
    const int total = micro_batches_ * chunks_;
    const int warmup = std::min((stages_ - stage - 1) * 2 + (chunks_ - 1) * stages_, total);
    const int steady = total - warmup;
    std::vector<PipelineStep> out;
    out.reserve(2 * total);
    for (int k = 0; k < warmup; ++k) out.push_back(step(k, true));
    for (int k = 0; k < steady; ++k) {
      out.push_back(step(warmup + k, true));
      out.push_back(step(k, false));
    }
    for (int k = steady; k < total; ++k) out.push_back(step(k, false));
    return out;
  }

 private:
  PipelineStep step(int k, bool forward) const {
    const int group = stages_ * chunks_;
    const int in_group = k % group;
    int chunk = in_group / stages_;
    if (!forward) chunk = chunks_ - 1 - chunk;
    const int micro_batch = (k / group) * stages_ + in_group % stages_;
    return {forward, micro_batch, chunk};
  }
};

}  // namespace

std::unique_ptr<PipelineSchedule> make_interleaved_schedule(int stages, int micro_batches,
                                                            int chunks) {
  if (stages < 2 || chunks < 2 || micro_batches < 1 || micro_batches % stages != 0) {
    throw std::invalid_argument(
        "interleaved schedule needs stages >= 2, chunks >= 2 and micro-batches (" +
        std::to_string(micro_batches) + ") divisible by stages (" + std::to_string(stages) + ")");
  }
  return std::make_unique<InterleavedSchedule>(stages, micro_batches, chunks);
}

std::unique_ptr<PipelineSchedule> make_pipeline_schedule(spec::Schedule schedule, int stages,
                                                         int micro_batches, int chunks) {
  switch (schedule) {
    case spec::GPIPE:
      return make_gpipe_schedule(stages, micro_batches);
    case spec::INTERLEAVED_1F1B:
      return make_interleaved_schedule(stages, micro_batches, chunks);
    default:
      return make_one_f_one_b_schedule(stages, micro_batches);
  }
}

}  // namespace mpsim::schedule
