// Biases and residual connections: the bias add and its gradient, and the fused
// bias + residual add that closes each attention and MLP block.
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// x[r, c] += bias[c] in place.
void bias_add(bf16* x, const bf16* bias, int64_t rows, int64_t cols, cudaStream_t stream);
// dbias[c] += sum_r dy[r, c].
void bias_grad(const bf16* dy, float* dbias, int64_t rows, int64_t cols, cudaStream_t stream);
// out = residual + x + bias (bias may be null). out may alias residual or x.
void bias_residual_forward(const bf16* x, const bf16* bias, const bf16* residual, bf16* out,
                           int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
