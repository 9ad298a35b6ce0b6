// The attention core's softmax with a causal mask, on scores of shape [batch, sq, sk] (bf16,
// row-major; sq = sk = seq), forward and backward.
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// probs = softmax(scale * scores) with a causal mask (key j > query i masked), in place allowed.
// Rows are computed in fp32.
void causal_softmax_forward(const bf16* scores, bf16* probs, int64_t batch, int64_t seq,
                            float scale, cudaStream_t stream);
// dscores = scale * probs * (dprobs - sum_j dprobs * probs), in place on dprobs allowed.
void causal_softmax_backward(const bf16* dprobs, const bf16* probs, bf16* dscores, int64_t batch,
                             int64_t seq, float scale, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
