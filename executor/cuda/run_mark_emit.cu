// See run_mark_emit.h.
#include <nvtx3/nvToolsExt.h>

#include <string>

#include "executor/core/run_mark.h"
#include "executor/cuda/run_mark_emit.h"

namespace mpsim::executor {

void emit_run_mark(const TrainOptions& options) {
  if (!options.nvtx) return;
  const std::string message = format_run_mark(options.model, options.config);
  nvtxMarkA(message.c_str());
}

}  // namespace mpsim::executor
