// LayerNorm and RMSNorm over the features of each row, forward and backward; the forward pass
// saves per-row statistics for the backward pass.
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// LayerNorm over each row (beta may be null for RMSNorm-free use; `rms` selects RMSNorm, which
// ignores beta and mean). Saves mean and rstd (fp32, [rows]) for the backward pass.
void norm_forward(const bf16* x, const bf16* gamma, const bf16* beta, bf16* y, float* mean,
                  float* rstd, int64_t rows, int64_t cols, float eps, bool rms,
                  cudaStream_t stream);
// dx = (dresidual ? dresidual : 0) + d norm(x)/dx . dy; dgamma += sum_r dy * xhat;
// dbeta += sum_r dy (dbeta null for RMSNorm). dx may alias dresidual.
void norm_backward(const bf16* dy, const bf16* x, const bf16* gamma, const float* mean,
                   const float* rstd, const bf16* dresidual, bf16* dx, float* dgamma, float* dbeta,
                   int64_t rows, int64_t cols, bool rms, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
