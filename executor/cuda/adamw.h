// The optimizer step: AdamW on fp32 master weights, writing the bf16 model weights.
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// AdamW (Loshchilov & Hutter) on fp32 master weights, as torch.optim.AdamW: g = grad * grad_scale;
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr * (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps)
// + weight_decay * w); then model[i] = bf16(w) when model is not null. step t counts from 1.
// decay_mask (nullable, one byte per element): 0 excludes the element from weight decay.
void adamw_step(float* master, const float* grad, float* m, float* v, bf16* model,
                const uint8_t* decay_mask, int64_t n, float lr, float beta1, float beta2, float eps,
                float weight_decay, int64_t step, float grad_scale, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
