#include "simulator/graph/op_label.h"

#include <array>

namespace mpsim::graph {
namespace {

struct LabelInfo {
  OpLabel label;
  std::string_view name;
  GemmLayout layout = GemmLayout::kForward;
};

// The one name table, in enum order (checked below at compile time).
constexpr std::array<LabelInfo, kNumOpLabels> kLabels = {{
    {OpLabel::kNone, ""},
    {OpLabel::kAttnNorm, "attn.norm"},
    {OpLabel::kAttnAllGather, "attn.allgather"},
    {OpLabel::kAttnQkv, "attn.qkv"},
    {OpLabel::kAttnRope, "attn.rope"},
    {OpLabel::kAttnSplit, "attn.split"},
    {OpLabel::kAttnCore, "attn.core"},
    {OpLabel::kAttnFlash, "attn.flash"},
    {OpLabel::kAttnProj, "attn.proj"},
    {OpLabel::kAttnAllReduce, "attn.allreduce"},
    {OpLabel::kAttnReduceScatter, "attn.reducescatter"},
    {OpLabel::kAttnResidual, "attn.residual"},
    {OpLabel::kMlpNorm, "mlp.norm"},
    {OpLabel::kMlpAllGather, "mlp.allgather"},
    {OpLabel::kMlpFc1, "mlp.fc1"},
    {OpLabel::kMlpAct, "mlp.act"},
    {OpLabel::kMlpFc2, "mlp.fc2"},
    {OpLabel::kMlpAllReduce, "mlp.allreduce"},
    {OpLabel::kMlpReduceScatter, "mlp.reducescatter"},
    {OpLabel::kMlpResidual, "mlp.residual"},
    {OpLabel::kMlpFc2Dgrad, "mlp.fc2.dgrad", GemmLayout::kDgrad},
    {OpLabel::kMlpFc2Wgrad, "mlp.fc2.wgrad", GemmLayout::kWgrad},
    {OpLabel::kMlpFc1Dgrad, "mlp.fc1.dgrad", GemmLayout::kDgrad},
    {OpLabel::kMlpFc1Wgrad, "mlp.fc1.wgrad", GemmLayout::kWgrad},
    {OpLabel::kMlpInputAllGather, "mlp.input.allgather"},
    {OpLabel::kAttnProjDgrad, "attn.proj.dgrad", GemmLayout::kDgrad},
    {OpLabel::kAttnProjWgrad, "attn.proj.wgrad", GemmLayout::kWgrad},
    {OpLabel::kAttnQkvDgrad, "attn.qkv.dgrad", GemmLayout::kDgrad},
    {OpLabel::kAttnQkvWgrad, "attn.qkv.wgrad", GemmLayout::kWgrad},
    {OpLabel::kAttnInputAllGather, "attn.input.allgather"},
    {OpLabel::kLookup, "lookup"},
    {OpLabel::kNorm, "norm"},
    {OpLabel::kLogits, "logits"},
    {OpLabel::kLogitsDgrad, "logits.dgrad", GemmLayout::kDgrad},
    {OpLabel::kLogitsWgrad, "logits.wgrad", GemmLayout::kWgrad},
    {OpLabel::kLoss, "loss"},
    {OpLabel::kLossAllGather, "loss.allgather"},
    {OpLabel::kAllReduce, "allreduce"},
    {OpLabel::kReduceScatter, "reducescatter"},
    {OpLabel::kAllGather, "allgather"},
    {OpLabel::kAttnQkvCast, "attn.qkv.cast"},
    {OpLabel::kAttnProjCast, "attn.proj.cast"},
    {OpLabel::kMlpFc1Cast, "mlp.fc1.cast"},
    {OpLabel::kMlpFc2Cast, "mlp.fc2.cast"},
    {OpLabel::kFp8WeightCast, "fp8.weights"},
    {OpLabel::kFp8Amax, "fp8.amax"},
    {OpLabel::kOffloadGrads, "offload.grads"},
    {OpLabel::kHostOptimizer, "offload.optimizer"},
    {OpLabel::kOffloadParams, "offload.params"},
    {OpLabel::kStep, "step"},
    {OpLabel::kGradsReduceScatter, "grads.reducescatter"},
    {OpLabel::kWeightsAllGather, "weights.allgather"},
    {OpLabel::kOptimizer, "optimizer"},
}};

constexpr bool in_enum_order() {
  for (size_t i = 0; i < kLabels.size(); ++i)
    if (static_cast<size_t>(kLabels[i].label) != i) return false;
  return true;
}
static_assert(in_enum_order(), "kLabels must list every OpLabel once, in enum order");

constexpr bool names_unique() {
  for (size_t i = 0; i < kLabels.size(); ++i)
    for (size_t j = i + 1; j < kLabels.size(); ++j)
      if (kLabels[i].name == kLabels[j].name) return false;
  return true;
}
static_assert(names_unique(), "label names must be unique");

constexpr bool layouts_match_suffixes() {
  for (const LabelInfo& info : kLabels) {
    const bool dgrad = info.name.ends_with(".dgrad"), wgrad = info.name.ends_with(".wgrad");
    const GemmLayout expected =
        dgrad ? GemmLayout::kDgrad : (wgrad ? GemmLayout::kWgrad : GemmLayout::kForward);
    if (info.layout != expected) return false;
  }
  return true;
}
static_assert(layouts_match_suffixes(), "a gradient GEMM's label ends in .dgrad or .wgrad");

}  // namespace

std::string_view label_name(OpLabel label) { return kLabels[static_cast<size_t>(label)].name; }

std::optional<OpLabel> op_label_from_name(std::string_view name) {
  for (const LabelInfo& info : kLabels)
    if (info.name == name) return info.label;
  return std::nullopt;
}

GemmLayout gemm_layout(OpLabel label) { return kLabels[static_cast<size_t>(label)].layout; }

}  // namespace mpsim::graph
