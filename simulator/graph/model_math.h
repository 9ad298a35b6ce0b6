// Closed forms for a model: parameter counts and model FLOPs per iteration, generalising
// Narayanan et al. 2021 (SC'21) to GQA, SwiGLU, arbitrary ffn sizes, untied embeddings and
// biases. For a GPT (4h GeLU MLP, MHA, tied, learned positions, biases) they reduce to
//   P     = 12 L h^2 (1 + 13/(12h) + (V + s)/(12 L h))
//   FLOPs = 72 B s L h^2 (1 + s/(6h) + V/(12 h L))      (per iteration, B sequences)
// Model FLOPs count one forward and two backward passes (no recomputation); hardware FLOPs add
// the recomputed forward work.
#pragma once

#include <cstdint>

#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::graph {

struct ModelDims {
  int64_t layers = 0, hidden = 0, ffn = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int64_t seq = 0, vocab = 0;  // vocab as given (unpadded)
  bool swiglu = false, tied = false, learned_positions = false, rotary = false, bias = false;
  bool layer_norm = true;  // false: RMSNorm (no bias)
  double dropout = 0;
  double rotary_base = 10000;  // theta base of rotary embeddings
  int bytes_per_element = 2;   // activations, weights and gradients as the GPU holds them
  // Transformer Engine's FP8 recipe (ModelSpec dtype FP8): the layers' linear GEMMs in FP8, the
  // rest (attention, norms, embedding, LM head, communication of gradients) in BF16.
  bool fp8 = false;
};

ModelDims model_dims(const spec::ModelSpec& model);

// Vocabulary padded as Megatron-LM does: to a multiple of 128 * tp.
int64_t padded_vocab(int64_t vocab, int64_t tp);

// Parameters of one transformer layer (attention, MLP, norms, biases).
int64_t layer_parameters(const ModelDims& d);
// One norm's parameters (LayerNorm: scale and shift; RMSNorm: scale).
int64_t norm_parameters(const ModelDims& d);
// One layer's parameters on one of `tp` tensor-parallel ranks, exactly: column-parallel QKV and
// fc1 (with their biases) and row-parallel projection and fc2 split, norms and the row-parallel
// biases replicated. The graph builder (DP buckets, optimizer) and the memory model share it.
int64_t layer_parameters_local(const ModelDims& d, int64_t tp);
// The weights of one layer's four linear layers (QKV, projection, fc1, fc2) on one of `tp` ranks:
// the ones an FP8 recipe runs in FP8.
int64_t layer_linear_weights_local(const ModelDims& d, int64_t tp);
// Whole model (embedding, position table, layers, final norm, untied LM head), unpadded vocab.
int64_t model_parameters(const ModelDims& d);

// Model FLOPs of one iteration over `sequences` sequences (fwd + bwd, 3x forward GEMM FLOPs),
// unpadded vocab, full (non-causal) attention score FLOPs as in the published formula.
double model_flops_per_iteration(const ModelDims& d, int64_t sequences);
// Forward FLOPs of one layer for one sequence; the recomputed forward for HFU.
double layer_forward_flops(const ModelDims& d);
double attention_core_forward_flops(const ModelDims& d);  // per layer per sequence

}  // namespace mpsim::graph
