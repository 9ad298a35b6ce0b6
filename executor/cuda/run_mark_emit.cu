// See run_mark_emit.h.
#include <nvtx3/nvToolsExt.h>

#include <string>

#include "executor/core/run_mark.h"
#include "executor/cuda/run_mark_emit.h"

namespace mpsim::executor {

void emit_run_mark(const TrainOptions& options) {
  if (!options.nvtx) return;
  // The core the stage runs, stated: a mark without it reads as the unfused core of old runs.
  spec::ParallelConfig config = options.config;
  if (config.attention() == spec::ATTENTION_UNSPECIFIED)
    config.set_attention(spec::ATTENTION_FLASH);
  const std::string message = format_run_mark(options.model, config);
  nvtxMarkA(message.c_str());
}

}  // namespace mpsim::executor
