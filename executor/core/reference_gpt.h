// The float64 CPU reference of the executor's GPT: the oracle the GPU trainer is tested against.
// It computes the same model as executor/cuda (see gpt_params.h for names, shapes and layouts) with
// plain loops in double precision, forward and backward, on unsharded tensors (the tp = 1
// catalogue). It is meant for tiny models only; clarity comes before speed.
//
// Model, for `batch` sequences of `seq` input tokens (targets are the inputs shifted by one):
//   x = embed.word[token] + embed.position[pos]
//   per layer: a = LN1(x); qkv = a Wqkv^T + bqkv (row head*3*d + {q,k,v}*d + j);
//              per head, causal softmax(q k^T / sqrt(d)) v, laid out head*d + j;
//              x += ctx Wproj^T + bproj;  m = LN2(x);  x += gelu_tanh(m Wfc1^T + b1) Wfc2^T + b2
//   y = LN_head(x); logits = y E^T over the first `vocab` rows of E (embed.word when tied,
//   head.logits.weight when untied; the padding rows of the padded vocabulary take no part and
//   get exactly zero gradient); loss = mean cross-entropy over batch * seq tokens.
// LayerNorm: eps 1e-5, biased variance. GeLU: 0.5 x (1 + tanh(0.7978845608 (x + 0.044715 x^3))).
//
// Failure: a missing tensor, a tensor of the wrong size, a token list of the wrong length or a
// token id outside [0, vocab) throws std::invalid_argument naming what was expected.
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
