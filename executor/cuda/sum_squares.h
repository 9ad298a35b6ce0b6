// The sum of squares of fp32 values, from which the trainer forms the global gradient norm.
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// out[0] += sum_i x[i]^2 (fp32 accumulation per block, then atomicAdd).
void sum_squares(const float* x, int64_t n, float* out, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
