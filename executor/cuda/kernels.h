// The executor's own CUDA kernels: everything of a GPT training step that is not a GEMM or a
// collective. Tensors are row-major; activations are bf16 with `rows` = tokens (sequence-major:
// row = position * micro_batch + sequence) and `cols` = features. Gradients of parameters are
// fp32 "main grads" that kernels ACCUMULATE into (+=), so micro-batches add up without extra
// passes. Every launcher is asynchronous on `stream` and checks its launch with CUDA_CHECK
// (throws ExecutorError); none synchronises. Shapes are trusted (the model checks them once).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace mpsim::executor::kernels {

using bf16 = __nv_bfloat16;

// ---- element-wise and conversions ----------------------------------------------------------
void cast_fp32_to_bf16(const float* in, bf16* out, int64_t n, cudaStream_t stream);
void fill_fp32(float* out, float value, int64_t n, cudaStream_t stream);
// out = a + b (out may alias a or b).
void add_bf16(const bf16* a, const bf16* b, bf16* out, int64_t n, cudaStream_t stream);

// Deterministic parameter initialisation, the same on every GPU and in the CPU reference
// (executor/core/param_init.h): out[i] = mean + std * init_normal(seed, param_id, global index)
// where the local tensor [rows, cols] is the block starting at (row_offset, col_offset) of a
// global tensor with `global_cols` columns: global index = (row_offset + r) * global_cols +
// col_offset + c. std == 0 fills `mean`.
void init_parameter(float* out, int64_t rows, int64_t cols, int64_t row_offset, int64_t col_offset,
                    int64_t global_cols, uint64_t seed, uint64_t param_id, float mean, float std,
                    cudaStream_t stream);

// ---- embedding (vocabulary-parallel) -------------------------------------------------------
// out[r, :] = word[tokens[r] - vocab_start, :] if the token falls in this rank's slice
// [vocab_start, vocab_start + vocab_local), else 0; plus position[r / micro_batch, :] when
// `position` is not null. rows = seq * micro_batch.
void embedding_forward(const int32_t* tokens, const bf16* word, const bf16* position, bf16* out,
                       int64_t rows, int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                       int64_t vocab_local, cudaStream_t stream);
// dword[tokens[r] - vocab_start, :] += dout[r, :] for local tokens; dposition[r / micro_batch, :]
// += dout[r, :] when dposition is not null.
void embedding_backward(const int32_t* tokens, const bf16* dout, float* dword, float* dposition,
                        int64_t rows, int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                        int64_t vocab_local, cudaStream_t stream);

// ---- normalisation ---------------------------------------------------------------------------
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

// ---- biases, activations, residuals ------------------------------------------------------------
// x[r, c] += bias[c] in place.
void bias_add(bf16* x, const bf16* bias, int64_t rows, int64_t cols, cudaStream_t stream);
// dbias[c] += sum_r dy[r, c].
void bias_grad(const bf16* dy, float* dbias, int64_t rows, int64_t cols, cudaStream_t stream);
// y = gelu(x + bias), tanh approximation (Megatron's fused bias-GeLU); bias may be null.
void bias_gelu_forward(const bf16* x, const bf16* bias, bf16* y, int64_t rows, int64_t cols,
                       cudaStream_t stream);
// dx = dy * gelu'(x + bias); dbias[c] += sum_r dx[r, c] when dbias is not null. dx may alias dy.
void bias_gelu_backward(const bf16* dy, const bf16* x, const bf16* bias, bf16* dx, float* dbias,
                        int64_t rows, int64_t cols, cudaStream_t stream);
// out = residual + x + bias (bias may be null). out may alias residual or x.
void bias_residual_forward(const bf16* x, const bf16* bias, const bf16* residual, bf16* out,
                           int64_t rows, int64_t cols, cudaStream_t stream);

// ---- attention core (scores are [batch, sq, sk] bf16, row-major) ------------------------------
// probs = softmax(scale * scores) with a causal mask (key j > query i masked), in place allowed.
// Rows are computed in fp32.
void causal_softmax_forward(const bf16* scores, bf16* probs, int64_t batch, int64_t seq,
                            float scale, cudaStream_t stream);
// dscores = scale * probs * (dprobs - sum_j dprobs * probs), in place on dprobs allowed.
void causal_softmax_backward(const bf16* dprobs, const bf16* probs, bf16* dscores, int64_t batch,
                             int64_t seq, float scale, cudaStream_t stream);

// ---- cross-entropy over a vocabulary split across TP ranks --------------------------------------
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

// ---- optimizer
// ------------------------------------------------------------------------------------- out[0] +=
// sum_i x[i]^2 (fp32 accumulation per block, then atomicAdd).
void sum_squares(const float* x, int64_t n, float* out, cudaStream_t stream);
// AdamW (Loshchilov & Hutter) on fp32 master weights, as torch.optim.AdamW: g = grad * grad_scale;
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr * (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps)
// + weight_decay * w); then model[i] = bf16(w) when model is not null. step t counts from 1.
// decay_mask (nullable, one byte per element): 0 excludes the element from weight decay.
void adamw_step(float* master, const float* grad, float* m, float* v, bf16* model,
                const uint8_t* decay_mask, int64_t n, float lr, float beta1, float beta2, float eps,
                float weight_decay, int64_t step, float grad_scale, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
