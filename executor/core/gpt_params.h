// The executor's parameter catalogue for decoder-only transformers of the GPT family (LayerNorm,
// GeLU MLP, learned positions, biases) and the Llama family (RMSNorm, SwiGLU MLP, rotary
// positions, grouped-query attention, no biases), and any mix of these choices: every tensor's
// name, unsharded shape, initialisation and how tensor parallelism splits it. The GPU model, the
// optimizer and the CPU reference all read it, so a name means the same tensor everywhere.
//
// Layout conventions (row-major, PyTorch's [out, in] for linear weights, y = x W^T + b);
// d = head size, r = heads / kv heads (1 without GQA), f = ffn size:
//   embed.word            [V, h]       vocabulary-parallel: rows split over TP (vocabulary padded
//                                      as Megatron-LM does; padding rows are never used)
//   embed.position        [s, h]       learned positions only; replicated
//   L<i>.attn.norm.weight [h], .bias [h] (LayerNorm only)   replicated
//   L<i>.attn.qkv.weight  [(heads + 2 kv) d, h]  column-parallel, grouped by kv head g: the r
//                                      query heads of g, then g's key, then g's value, so each TP
//                                      rank holds whole groups as one contiguous block; with r = 1
//                                      this is head-major [q, k, v] as in Megatron-LM
//   L<i>.attn.qkv.bias    [(heads + 2 kv) d]   (with biases) column-parallel
//   L<i>.attn.proj.weight [h, heads d] row-parallel (column = query head * d + j)
//   L<i>.attn.proj.bias   [h]          (with biases) replicated, added after the TP reduction
//   L<i>.mlp.norm.*                    as attn.norm
//   L<i>.mlp.fc1.weight   [f, h] (GeLU) or [2f, h] (SwiGLU: row 2j is feature j's gate, row
//                                      2j + 1 its up projection, so a contiguous TP split keeps
//                                      pairs together); column-parallel; bias likewise
//   L<i>.mlp.fc2.weight   [h, f]       row-parallel; bias [h] replicated
//   head.norm.*                        as attn.norm
//   head.logits.weight    [V, h]       only when embeddings are untied; vocabulary-parallel
// Initialisation (Megatron-LM / GPT-2): weights N(0, std), the two output projections
// (attn.proj, mlp.fc2) N(0, std / sqrt(2 L)), biases 0, norm weights 1; embeddings N(0, std).
// Weight decay applies to 2-D weights only. Vectors are [n, 1] so "split rows" covers them.
//
// make_gpt_catalogue() throws std::invalid_argument when TP does not split the model (kv heads
// or ffn size not divisible by tp) or the heads do not group (heads % kv heads != 0).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "simulator/graph/model_math.h"

namespace mpsim::executor {

enum class Split {
  kReplicated,  // every TP rank holds the whole tensor
  kRows,        // rows split evenly over TP (column-parallel linears, their biases, vocabulary)
  kColumns,     // columns split evenly over TP (row-parallel linears)
};

struct ParamSpec {
  std::string name;
  int64_t rows = 0, cols = 1;  // unsharded; rows of vocabulary tensors are the padded vocabulary
  Split split = Split::kReplicated;
  float mean = 0, std = 0;  // init: mean + std * N(0, 1); std 0 = constant
  bool decay = false;       // AdamW weight decay applies
  // Replicated over TP but computed from this rank's tokens only under sequence parallelism
  // (norms, row-parallel biases): the gradient needs a TP all-reduce when SP is on.
  bool sequence_parallel_grad = false;
  int layer = -1;  // transformer layer, -1 for embedding and head tensors

  // Shape of this TP rank's shard and where it sits in the unsharded tensor.
  int64_t local_rows(int tp) const { return split == Split::kRows ? rows / tp : rows; }
  int64_t local_cols(int tp) const { return split == Split::kColumns ? cols / tp : cols; }
  int64_t row_offset(int tp, int tp_rank) const {
    return split == Split::kRows ? tp_rank * (rows / tp) : 0;
  }
  int64_t col_offset(int tp, int tp_rank) const {
    return split == Split::kColumns ? tp_rank * (cols / tp) : 0;
  }
  int64_t local_size(int tp) const { return local_rows(tp) * local_cols(tp); }
};

struct GptCatalogue {
  graph::ModelDims dims;
  int64_t padded_vocab = 0;                    // rows of embed.word / head.logits.weight
  std::vector<ParamSpec> embedding;            // embed.word, embed.position
  std::vector<std::vector<ParamSpec>> layers;  // per layer, in the order above
  std::vector<ParamSpec> head;                 // head.norm.*, head.logits.weight when untied
};

// `tp` only decides the vocabulary padding (a multiple of 128 * tp).
GptCatalogue make_gpt_catalogue(const graph::ModelDims& dims, int tp, double init_std);

}  // namespace mpsim::executor
