// OpLabel: what an op does inside its site (a transformer layer, the embedding or the head), e.g.
// attn.qkv or mlp.fc1.wgrad. One enum with one name table, shared by everything that must agree
// on it: the graph builder that labels ops, the memory rules that say what each op saves and
// frees (simulator/memory), the cost model that picks a GEMM table by layout (simulator/cost),
// and the reference executor's NVTX ranges (executor/core/range_names.h). A label misspelt in
// any of them is a compile error, not a silent mismatch.
//
// The names are the `label` part of the op-name grammar (op_name.h, docs/op_names.md). Names are
// unique, so op_label_from_name() inverts label_name(); it returns std::nullopt for any other
// text. Nothing here fails otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace mpsim::graph {

enum class OpLabel : uint8_t {
  kNone,  // no label: pipeline sends, DP gradient buckets (their names carry no label)
  // Transformer layer, forward (and recomputed forward), in program order.
  kAttnNorm,
  kAttnAllGather,  // sequence parallelism: gather the normed input before QKV
  kAttnQkv,
  kAttnRope,
  kAttnSplit,  // grouped-query attention, fused core: the query heads copied out of the QKV rows
               // (Megatron-Core's reshape of the query); backward: their gradient copied back
  kAttnCore,   // unfused attention core (QK^T, softmax, x V); its backward keeps the label
  kAttnFlash,  // fused flash-attention core (one kernel per pass); its backward keeps the label
  kAttnProj,
  kAttnAllReduce,      // TP reduction of the attention output (backward: of the QKV input grad)
  kAttnReduceScatter,  // the same with sequence parallelism
  kAttnResidual,
  kMlpNorm,
  kMlpAllGather,
  kMlpFc1,
  kMlpAct,
  kMlpFc2,
  kMlpAllReduce,
  kMlpReduceScatter,
  kMlpResidual,
  // Transformer layer, backward only: the two gradient GEMMs of each linear and the re-gather
  // of a column-parallel linear's input under sequence parallelism.
  kMlpFc2Dgrad,
  kMlpFc2Wgrad,
  kMlpFc1Dgrad,
  kMlpFc1Wgrad,
  kMlpInputAllGather,
  kAttnProjDgrad,
  kAttnProjWgrad,
  kAttnQkvDgrad,
  kAttnQkvWgrad,
  kAttnInputAllGather,
  // Embedding and head.
  kLookup,  // embedding lookup (its backward: the scatter-add of gradients)
  kNorm,    // the head's final norm
  kLogits,
  kLogitsDgrad,
  kLogitsWgrad,
  kLoss,           // vocab-parallel cross entropy
  kLossAllGather,  // each TP rank's row max, sum of exponentials and target logit
  kAllReduce,      // embedding / head TP reduction
  kReduceScatter,  // the same with sequence parallelism
  kAllGather,      // embedding / head TP gather (sequence parallelism)
  // FP8 (Transformer Engine's recipe): the quantisation of a linear layer's GEMM operands, one
  // op per linear and pass (forward: its input; backward: its output gradient).
  kAttnQkvCast,
  kAttnProjCast,
  kMlpFc1Cast,
  kMlpFc2Cast,
  kFp8WeightCast,  // once per iteration: every FP8 weight of the rank, cast and transposed
  kFp8Amax,        // once per iteration: the amax reduction over the stage's TP x DP ranks
  // Optimizer offload, once per iteration: gradients to the host, the host's optimizer step,
  // the updated parameters back.
  kOffloadGrads,
  kHostOptimizer,
  kOffloadParams,
  // Whole pipeline steps and once-per-iteration work.
  kStep,                // a folded pipeline step (OpKind::kStepBlock)
  kGradsReduceScatter,  // ZeRO-2/3 per micro-batch gradient reduce-scatter
  kWeightsAllGather,    // ZeRO-3 per layer weight gather
  kOptimizer,
};
inline constexpr int kNumOpLabels = static_cast<int>(OpLabel::kOptimizer) + 1;

// The label as the op-name grammar spells it ("" for kNone).
std::string_view label_name(OpLabel label);

// The label spelt `name`, or std::nullopt if no label is.
std::optional<OpLabel> op_label_from_name(std::string_view name);

// Which pass of a linear layer a GEMM label belongs to: the data- and weight-gradient GEMMs of
// the backward pass (labels ending in .dgrad / .wgrad) or the forward product (any other label).
enum class GemmLayout : uint8_t { kForward, kDgrad, kWgrad };
GemmLayout gemm_layout(OpLabel label);

}  // namespace mpsim::graph
