// The optimizer step: AdamW on fp32 master weights, writing the bf16 model weights.
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// AdamW (Loshchilov & Hutter) on fp32 master weights, as torch.optim.AdamW: g = grad * grad_scale;
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr * (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps)
// + weight_decay * w); then model[i] = bf16(w) when model is not null. step t counts from 1.
// decay_bits (nullable; one bit per element, bit k of word k / 32 at k % 32): element i decays
// when bit first_bit + i is set; null decays every element.
void adamw_step(float* master, const float* grad, float* m, float* v, bf16* model,
                const uint32_t* decay_bits, int64_t first_bit, int64_t n, float lr, float beta1,
                float beta2, float eps, float weight_decay, int64_t step, float grad_scale,
                cudaStream_t stream);

}  // namespace mpsim::executor::kernels
