// Cross-entropy over a vocabulary split across tensor-parallel (TP) ranks.
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// One collective: each TP rank reduces its logit columns to three floats per row
// (cross_entropy_partial), the TP group all-gathers those blocks, and every rank combines them
// locally into the global row max, sum of exp and the loss (cross_entropy_combine), then
// computes its columns' gradient from the combined max and sums (cross_entropy_backward).
// Megatron-LM uses three all-reduces (max, sum of exp, target logit) for the same result.
// logits: [rows, vocab_local] bf16, this rank's columns [vocab_start, vocab_start + vocab_local)
// of a vocabulary whose first `vocab` columns are real; padding columns (global index >= vocab)
// are excluded everywhere and get gradient 0. targets: [rows] global ids in [0, vocab).
//
// partial[0 .. rows): row max, [rows .. 2 rows): sum of exp(logit - row max),
// [2 rows .. 3 rows): the target's logit if this rank owns it, else 0; all over this rank's real
// columns. A rank with no real column writes max = -FLT_MAX and sum = 0, which combining ignores.
void cross_entropy_partial(const bf16* logits, const int32_t* targets, float* partial, int64_t rows,
                           int64_t vocab_local, int64_t vocab_start, int64_t vocab,
                           cudaStream_t stream);
// gathered: `ranks` consecutive partial blocks (3 * rows floats each). Writes
// row_max[rows] (global), sums[0 .. rows) = global sum of exp(logit - row_max),
// sums[rows .. 2 rows) = the target's logit, and adds sum_r (log sums[r] + row_max[r] - target
// logit) to loss_sum[0]. One block sums the loss in a fixed order: the same on every run.
void cross_entropy_combine(const float* gathered, int ranks, float* row_max, float* sums,
                           float* loss_sum, int64_t rows, cudaStream_t stream);
// In place: logits <- grad_scale * (softmax(logits) - onehot(target)) on local real columns,
// 0 on padding columns; row_max and sums as cross_entropy_combine writes them.
void cross_entropy_backward(bf16* logits, const int32_t* targets, const float* row_max,
                            const float* sums, int64_t rows, int64_t vocab_local,
                            int64_t vocab_start, int64_t vocab, float grad_scale,
                            cudaStream_t stream);

}  // namespace mpsim::executor::kernels
