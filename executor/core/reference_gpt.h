// The float64 CPU reference of the executor's decoder-only transformer (GPT, Llama and any mix the
// catalogue allows): the oracle the GPU trainer is tested against. It computes the same model as
// executor/cuda (see gpt_params.h for names, shapes and layouts) with plain loops in double
// precision, forward and backward, on unsharded tensors (the tp = 1 catalogue). It is meant for
// tiny models only; clarity comes before speed.
//
// Model, for `batch` sequences of `seq` input tokens (targets are the inputs shifted by one);
// d = head size, r = heads / kv heads, f = ffn size, biases only where the catalogue has them:
//   x = embed.word[token] (+ embed.position[pos] with learned positions)
//   per layer: a = Norm1(x); qkv = a Wqkv^T + bqkv, rows grouped by kv head as in gpt_params.h;
//              with rotary positions every query and key head is rotated (apply_rotary) by the
//              token's position in its sequence; query head q attends causally with its group's
//              (q / r) key and value, softmax(q k^T / sqrt(d)) v, laid out q*d + j;
//              x += ctx Wproj^T + bproj;  m = Norm2(x);  x += act(m Wfc1^T + b1) Wfc2^T + b2
//   y = Norm_head(x); logits = y E^T over the first `vocab` rows of E (embed.word when tied,
//   head.logits.weight when untied; the padding rows of the padded vocabulary take no part and
//   get exactly zero gradient); loss = mean cross-entropy over batch * seq tokens.
// Norm: LayerNorm (x - mean) rstd w + b with biased variance, or RMSNorm x rstd w with
// rstd = 1 / sqrt(mean(x^2) + eps); eps 1e-5 for both.
// act: GeLU 0.5 u (1 + tanh(0.7978845608 (u + 0.044715 u^3))), or SwiGLU
// act_j = silu(u_2j) u_2j+1 (fc1 row 2j is feature j's gate, 2j + 1 its up), silu(u) = u / (1 +
// e^-u).
//
// Failure: a missing tensor, a tensor of the wrong size, a catalogue whose matrices do not match
// its dimensions, a token list of the wrong length or a token id outside [0, vocab) throws
// std::invalid_argument naming what was expected.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "executor/core/gpt_params.h"

namespace mpsim::executor {

// Unsharded tensors keyed by catalogue name, row-major, rows * cols elements each.
using Tensors = std::map<std::string, std::vector<double>>;

// Every tensor of the catalogue, element i = mean + std * init_normal(seed, parameter_id(name), i)
// with i the element's row-major index in the unsharded tensor: the weights the GPU executor
// starts from (before their rounding to bf16), independent of TP layout and vocabulary padding.
Tensors init_reference_parameters(const GptCatalogue& catalogue, uint64_t seed);

// `x` rounded to float32 (nearest) and then to the nearest bfloat16 (round-to-nearest-even on the
// float32 bits: 8 significant bits); NaN and infinities pass through.
double round_to_bf16(double x);
// Every element rounded as above: the weights the GPU actually computes with.
Tensors round_to_bf16(const Tensors& tensors);

// Rotary position embedding of one head vector x[0, d) (d even) at `position`, in the
// rotate-half convention of Llama / Hugging Face: for i < d/2, angle = position * base^(-2i/d),
// x[i] <- x[i] cos - x[i + d/2] sin and x[i + d/2] <- x[i + d/2] cos + x[i] sin. A negative
// position rotates back (the inverse, which is also the transpose).
void apply_rotary(double* x, int64_t d, int64_t position, double base);

// Mean cross-entropy of `batch` sequences. `tokens` holds batch * (seq + 1) ids: sequence b is
// tokens[b*(seq+1) .. b*(seq+1)+seq], inputs its first seq ids, targets its last seq. When `grads`
// is not null it is overwritten with dLoss/dparam for every tensor of the catalogue (same shapes).
double reference_loss_and_grads(const GptCatalogue& catalogue, const Tensors& params,
                                const std::vector<int32_t>& tokens, int64_t batch, Tensors* grads);

// The batch * seq per-token cross-entropies (row-major [sequence][position]) whose mean
// reference_loss_and_grads returns.
std::vector<double> reference_token_losses(const GptCatalogue& catalogue, const Tensors& params,
                                           const std::vector<int32_t>& tokens, int64_t batch);

}  // namespace mpsim::executor
