// Vocabulary-parallel cross-entropy with one collective: each TP rank reduces its logit columns to
// three numbers per token (row max, sum of exp(logit - max), the target's logit if it owns the
// target), the TP group all-gathers them, and every rank combines them locally into the global
// max and sum that the backward pass (kernels::cross_entropy_backward) needs and into the loss.
// Megatron-LM uses three all-reduces for the same; the result is identical.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace mpsim::executor::kernels {

// partial[0..rows): row max, [rows..2rows): sum exp(logit - row max), [2rows..3rows): target
// logit or 0, over this rank's real columns (global index < vocab). A rank with no real column
// writes max = -inf, sum = 0.
void cross_entropy_partial(const __nv_bfloat16* logits, const int32_t* targets, float* partial,
                           int64_t rows, int64_t vocab_local, int64_t vocab_start, int64_t vocab,
                           cudaStream_t stream);
// gathered: `ranks` consecutive partial blocks (3 * rows each). Writes row_max[rows],
// sums[0..rows) = global sum of exp(logit - row_max), sums[rows..2rows) = target logit, and adds
// sum_r (log sum + max - target) to loss_sum[0].
void cross_entropy_combine(const float* gathered, int ranks, float* row_max, float* sums,
                           float* loss_sum, int64_t rows, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
