// The attention family's measurement of one shape, shared by the grid (attention_bench.cu) and
// the point list (points_bench.cu).
//
// Failure: CUDA and cuBLAS failures throw executor::ExecutorError.
#pragma once

#include <cstdint>
#include <string>

#include "calibration/bench/harness.h"

namespace mpsim::calibration::bench {

// The executor's attention core with group r = 1 (executor/cuda/gpt_model.cu): qkv [s, bh, 3, d]
// (row = position, per head its q, k, v), context [s, bh, d]; unfused: scores/probabilities
// [bh, s, s]; flash (cuDNN's fused kernels, executor/cuda/flash_attention.h): the log-sum-exp
// [bh, s]. One shape's forward and backward, each where asked for and not measured already; the
// backward alone runs the forward first, outside any range, for what it saves.
void measure_attention_shape(int64_t bh, int64_t s, int64_t d, bool flash, bool forward,
                             bool backward, const std::string& extra_json, GemmContext& ctx,
                             Harness& harness);

}  // namespace mpsim::calibration::bench
