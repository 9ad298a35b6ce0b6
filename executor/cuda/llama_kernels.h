// Kernels of the Llama family that the GPT path does not need: rotary position embeddings and
// the SwiGLU activation. Layouts follow executor/core/gpt_params.h: QKV rows of one token hold,
// per kv head g of this rank, its r query heads, then its key, then its value (d each); SwiGLU's
// fc1 output holds feature j's gate in column 2j and its up projection in column 2j + 1.
// Asynchronous on `stream`; launch errors throw ExecutorError.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace mpsim::executor::kernels {

// In place on every query and key head of qkv [rows, kv_heads * (r + 2) * d], rows sequence-
// major (position = row / micro_batch): the rotate-half rotation of Llama by position * theta_i,
// theta_i = base^(-2i/d) for pairs (i, i + d/2). `inverse` rotates by the negative angle, which
// is the backward pass (the rotation is orthogonal).
void rotary(__nv_bfloat16* qkv, int64_t rows, int64_t micro_batch, int64_t kv_heads, int64_t group,
            int64_t head_dim, double base, bool inverse, cudaStream_t stream);

// y[r, j] = silu(x[r, 2j] + b[2j]) * (x[r, 2j + 1] + b[2j + 1]) for j < cols; bias may be null.
void swiglu_forward(const __nv_bfloat16* x, const __nv_bfloat16* bias, __nv_bfloat16* y,
                    int64_t rows, int64_t cols, cudaStream_t stream);
// dx [rows, 2 cols] from dy [rows, cols] and the forward input x (and bias).
void swiglu_backward(const __nv_bfloat16* dy, const __nv_bfloat16* x, const __nv_bfloat16* bias,
                     __nv_bfloat16* dx, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
