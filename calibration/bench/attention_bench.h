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
// [bh, s]; with `group` g > 1 query heads per key/value head the queries are packed [s, bh, d] and
// the keys and values interleaved [s, bh / g, 2, d], as the executor holds them. One shape's
// forward and backward, each where asked for and not measured already; the backward alone runs
// the forward first, outside any range, for what it saves. group 0 is the unfused core.
void measure_attention_shape(int64_t bh, int64_t s, int64_t d, int64_t group, bool forward,
                             bool backward, const std::string& extra_json, GemmContext& ctx,
                             Harness& harness);

}  // namespace mpsim::calibration::bench
