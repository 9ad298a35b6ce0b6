// Memory per rank in closed form: model state (weights, gradients, optimizer state) by precision
// and ZeRO stage, and activations by recompute mode, TP and SP (Korthikanti et al. 2022,
// "Reducing Activation Recomputation in Large Transformer Models"), times the micro-batches in
// flight under the pipeline schedule. The engine's memory timeline (memory_timeline.h annotates
// the graph, simulator/engine replays it) uses the same per-tensor accounting, so the two agree to
// the byte; tests check this.
//
// Precision (Megatron-LM's mixed-precision Adam, counted as Megatron's distributed-optimizer
// documentation counts it): bf16 weights 2 B, fp32 main gradients 4 B, fp32 master weights +
// Adam m + v 12 B: 18 B per parameter unsharded; the distributed optimizer (ZeRO-1) keeps
// 6 + 12/DP; ZeRO-2 shards the gradients too (2 + 16/DP); ZeRO-3 also the weights (18/DP).
//
// Activations: each tensor a layer saves for its backward pass is counted once (see
// LayerTensors), at the model's element size, dropout masks at 1 B per element. The attention
// core is the config's (ParallelConfig.attention): the unfused core (Korthikanti's accounting)
// saves its softmax output, the softmax dropout mask and the dropout output (5 a s^2 b bytes in
// bf16); flash attention (the default) has no a s^2 tensor: the kernel saves its output (already
// counted as the output projection's input) and the fp32 log-sum-exp per head and query
// (4 a s b bytes) instead. Selective recompute keeps Megatron's meaning for both: the core's
// forward is recomputed in backward, so what it alone saves (the scores, or the log-sum-exp) is
// not kept.
//
// Not modelled (approximate against a real run): activation gradients and other transient
// buffers of the backward pass, ZeRO-3's gathered weights, communication buffers, the caching
// allocator's fragmentation, the CUDA context.
// All functions are pure; they expect a config returned by spec::validate_parallel_config.
#pragma once

#include <cstdint>

#include "simulator/graph/model_math.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::memory {

// What the cross entropy keeps for its backward pass, per micro-batch on the last stage.
enum class LossMemory : uint8_t {
  kFp32Logits,  // Megatron-LM's vocab-parallel cross entropy: the logits upcast to fp32 (4 s b V/t)
  kBf16Logits,  // the reference executor's: the bf16 logits, the row max and the sum of
                // exponentials per token in fp32 (2 s b V/t + 8 s b), softmax recomputed backward
};

// Parameters held by one rank of pipeline stage `stage` (0-based), summed over its model chunks:
// its layers' share under TP (column/row-parallel matrices and column-parallel biases split,
// norms and row-parallel biases replicated), the vocab-parallel embedding (padded vocab / TP) and
// learned positions on the first stage, the final norm and LM head on the last stage (the last
// stage keeps its own copy of a tied embedding when PP > 1). Exact.
int64_t stage_parameters(const graph::ModelDims& dims, const spec::ParallelConfig& config,
                         int64_t stage);

struct ModelStateBytes {
  double weights = 0;
  double gradients = 0;
  double optimizer = 0;    // fp32 master weights and Adam moments
  double fp8_weights = 0;  // FP8 recipe: the cached FP8 copy and transpose of linear weights
  double total() const { return weights + gradients + optimizer + fp8_weights; }
};
ModelStateBytes model_state_bytes(int64_t parameters, const spec::ParallelConfig& config);
// The model state of one rank of pipeline stage `stage`: model_state_bytes of its parameters,
// plus, under the FP8 recipe, the FP8 weight cache Transformer Engine keeps across micro-batches
// (one byte per linear-layer weight, and one more for its transpose, which Hopper's FP8 GEMMs
// need for the dgrad).
ModelStateBytes stage_model_state_bytes(const graph::ModelDims& dims,
                                        const spec::ParallelConfig& config, int64_t stage);

// Bytes of each tensor one transformer layer saves for its backward pass, per micro-batch on one
// rank, with nothing recomputed. TP splits what lives inside the TP region (Q, K, V, scores,
// the projection input, the MLP's hidden activations); SP also splits what lies between the
// regions (norm inputs, the linear layers' inputs, the residual dropout masks). Under the FP8
// recipe the four linear layers' inputs (qkv_input, proj_input, fc1_input, fc2_input) are saved
// as the FP8 tensors their GEMMs read, one byte per element; everything else stays BF16.
struct LayerTensors {
  double attn_norm_input = 0;  // = the layer's input (the checkpoint under full recompute)
  double qkv_input = 0;        // norm output, input of the QKV GEMM
  double qkv = 0;          // Q, K (QK^T inputs) and V (input of attention over V); with GQA and the
                           // fused core also the copy of the query heads
  double attn_scores = 0;  // softmax output + dropout mask + dropout output, or flash LSE
  // Input of the output projection: the attention output itself (the unfused core), its FP8
  // copy (FP8 recipe), or nothing more with the fused core in BF16, whose output it is.
  double proj_input = 0;
  double attn_output = 0;        // the fused core's output, which its backward reads again (BF16)
  double attn_dropout_mask = 0;  // dropout after the projection (0 without dropout)
  double mlp_norm_input = 0;
  double fc1_input = 0;
  double act_input = 0;  // fc1 output (2 ffn wide for SwiGLU)
  double fc2_input = 0;  // activation output (ffn wide)
  double mlp_dropout_mask = 0;
  double total() const;
};
LayerTensors layer_tensors(const graph::ModelDims& dims, const spec::ParallelConfig& config);

// Activation bytes one transformer layer keeps for the backward pass, per micro-batch, on one
// rank. For a GPT with dropout and bf16 with the unfused core (Korthikanti et al. eq. (1)-(5)):
//   no parallelism  s b h (34 + 5 a s / h)
//   TP              s b h (10 + 24/t + 5 a s / (h t))
//   TP + SP         s b h (34/t + 5 a s / (h t))
// Flash attention replaces each 5 a s / h term by 4 a / h (the fp32 log-sum-exp, / t with TP).
// Selective recompute drops those terms; full recompute keeps only the layer input 2 s b h
// (2 s b h / t with SP).
double layer_activation_bytes(const graph::ModelDims& dims, const spec::ParallelConfig& config);

// What the backward pass of one layer holds at most above layer_activation_bytes, at the moment
// it recomputes: full recompute, the whole layer's saved tensors except the input already held;
// selective, the attention scores less what the layer's backward freed before recomputing them
// (MLP tensors, the projection input, the dropout mask); 0 without recompute.
double recompute_working_set_bytes(const graph::ModelDims& dims,
                                   const spec::ParallelConfig& config);

// Per micro-batch, on the first stage: the embedding's dropout mask (1 B per element; / t with
// SP; 0 without dropout). The embedding output itself is layer 0's input, counted there.
double embedding_activation_bytes(const graph::ModelDims& dims, const spec::ParallelConfig& config);
// Per micro-batch, on the last stage: the final norm's input, the LM head's input and what the
// cross entropy keeps: by default the fp32 logits of Megatron's vocab-parallel cross entropy
// (4 s b V_padded / t; Korthikanti's 4 s b h / t (1 + V / h) with SP), or `loss`'s.
double head_activation_bytes(const graph::ModelDims& dims, const spec::ParallelConfig& config,
                             LossMemory loss = LossMemory::kFp32Logits);

// Micro-batches whose activations a rank of `stage` holds at most at once, in units of the whole
// stage's layers (L / p): GPipe m; 1F1B min(p - stage, m); interleaved 1F1B (v chunks), Megatron's
// warm-up of W = min((p - stage - 1) * 2 + (v - 1) * p, m v) chunk-steps plus the first steady
// forward, min(W + 1, m v) chunk-steps, divided by v. On the first stage with m > p this is
// p + (p - 1) / v, i.e. L (1 + (p - 1) / (p v)) layers' worth, Korthikanti et al.'s factor.
double in_flight_micro_batches(const spec::ParallelConfig& config, int64_t stage,
                               int64_t micro_batches);

struct RankMemory {
  ModelStateBytes model_state;
  double activations = 0;  // layers' saved activations at the peak
  double extra = 0;        // embedding / LM head buffers and one layer's recompute working set
  double total() const { return model_state.total() + activations + extra; }
};

// Closed-form peak for a rank of `stage`, with m = global batch / (micro-batch size * DP)
// micro-batches per pipeline:
//   activations = in_flight_micro_batches * (L / p) * layer_activation_bytes
//   extra       = max over the steady state's backwards j of
//                   n_emb(j) * embedding + n_head(j) * head + max(0, working set - own head(j))
// where n_emb / n_head are the micro-batches of the first / last model chunk held when backward j
// starts (first / last stage only; m, or min(p - stage, m) for 1F1B; they vary along the
// interleaved schedule, hence the max over one period of p v steps), and own head(j) the head
// buffers backward j frees before recomputing (last stage, last chunk). This is the peak of the
// engine's timeline exactly (same tensors, same schedule) for GPipe, 1F1B and interleaved 1F1B.
RankMemory closed_form_memory(const graph::ModelDims& dims, const spec::ParallelConfig& config,
                              int64_t stage, LossMemory loss = LossMemory::kFp32Logits);
// Max over stages.
double closed_form_peak_bytes(const graph::ModelDims& dims, const spec::ParallelConfig& config,
                              LossMemory loss = LossMemory::kFp32Logits);

}  // namespace mpsim::memory
