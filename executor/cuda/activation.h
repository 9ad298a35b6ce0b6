// The MLP activations: GeLU with its bias fused (the GPT family) and SwiGLU (the Llama family;
// fc1's output holds feature j's gate in column 2j and its up projection in column 2j + 1, the
// layout of executor/core/gpt_params.h).
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// y = gelu(x + bias), tanh approximation (Megatron's fused bias-GeLU); bias may be null.
void bias_gelu_forward(const bf16* x, const bf16* bias, bf16* y, int64_t rows, int64_t cols,
                       cudaStream_t stream);
// dx = dy * gelu'(x + bias); dbias[c] += sum_r dx[r, c] when dbias is not null. dx may alias dy.
void bias_gelu_backward(const bf16* dy, const bf16* x, const bf16* bias, bf16* dx, float* dbias,
                        int64_t rows, int64_t cols, cudaStream_t stream);

// y[r, j] = silu(x[r, 2j] + b[2j]) * (x[r, 2j + 1] + b[2j + 1]) for j < cols; bias may be null.
void swiglu_forward(const bf16* x, const bf16* bias, bf16* y, int64_t rows, int64_t cols,
                    cudaStream_t stream);
// dx [rows, 2 cols] from dy [rows, cols] and the forward input x (and bias).
void swiglu_backward(const bf16* dy, const bf16* x, const bf16* bias, bf16* dx, int64_t rows,
                     int64_t cols, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
