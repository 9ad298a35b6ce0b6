// Emits the run mark (executor/core/run_mark.h) as one NVTX mark on the calling thread, so that a
// profiled run's database states its model and parallel configuration. Nothing is emitted when
// the options turn NVTX off. Never throws for valid options (the message is printed from the
// options' protobuf messages).
#pragma once

#include "executor/core/train_options.h"

namespace mpsim::executor {

void emit_run_mark(const TrainOptions& options);

}  // namespace mpsim::executor
