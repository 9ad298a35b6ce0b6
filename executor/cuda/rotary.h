// Rotary position embeddings (Llama's rotate-half form) on the query and key heads of the fused
// QKV activation. Layout of executor/core/gpt_params.h: the QKV row of one token holds, per kv
// head g of this rank, its r query heads, then its key, then its value (d each).
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// The rotation's cosines and sines, angles[t * d/2 + i] = (cos, sin)(t * theta_i), theta_i =
// base^(-2i/d), for positions t < seq (computed in double, stored as float): made once per model,
// read by every rotation.
void rotary_angles(float2* angles, int64_t seq, int64_t head_dim, double base, cudaStream_t stream);

// In place on every query and key head of qkv [rows, kv_heads * (r + 2) * d], rows sequence-
// major (position = row / micro_batch): the rotate-half rotation of Llama by position * theta_i
// for pairs (i, i + d/2), from `angles` (rotary_angles for at least rows / micro_batch positions).
// `inverse` rotates by the negative angle, which is the backward pass (the rotation is
// orthogonal).
void rotary(bf16* qkv, int64_t rows, int64_t micro_batch, int64_t kv_heads, int64_t group,
            int64_t head_dim, const float2* angles, bool inverse, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
