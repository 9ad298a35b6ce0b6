// The FP8 recipe (ModelSpec dtype FP8, Transformer Engine's as simulator/graph/layer_ops.cpp and
// simulator/memory/memory_model.h describe it) against the same model in BF16: exactly the
// tensors the recipe keeps in FP8 take half the bytes, the work is the same, the recipe's own
// kernels and its amax reduction appear as often as it runs them.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "simulator/graph/op_name.h"
#include "simulator/graph/training_graph.h"
#include "simulator/memory/memory_model.h"
#include "simulator/memory/memory_timeline.h"
#include "tests/test_models.h"

namespace mpsim::memory {
namespace {

using graph::Op;
using graph::OpKind;
using graph::OpLabel;
using graph::OpVertex;

spec::ModelSpec with_dtype(spec::ModelSpec m, spec::DType dtype) {
  m.set_dtype(dtype);
  return m;
}

const spec::ModelSpec kModel = testing::llama(4, 512, 1408, 8, 4, 256, 1000);

spec::ParallelConfig layout(int64_t tp, int64_t dp, bool sp) {
  spec::ParallelConfig c = testing::config(tp, 1, dp, 2, 4 * dp);
  c.set_sequence_parallel(sp);
  return c;
}

TEST(Fp8Recipe, HalvesExactlyTheLinearLayersSavedInputs) {  // with the fused core
  for (bool sp : {false, true}) {
    const spec::ParallelConfig c = layout(2, 1, sp);
    const LayerTensors b = layer_tensors(graph::model_dims(with_dtype(kModel, spec::BF16)), c);
    const LayerTensors f = layer_tensors(graph::model_dims(with_dtype(kModel, spec::FP8)), c);
    EXPECT_DOUBLE_EQ(f.qkv_input, b.qkv_input / 2);
    // The fused core keeps its BF16 output either way; under FP8 the projection saves its FP8
    // copy beside it (in BF16 it reads that output).
    EXPECT_DOUBLE_EQ(f.attn_output, b.attn_output);
    EXPECT_DOUBLE_EQ(b.proj_input, 0);
    EXPECT_DOUBLE_EQ(f.proj_input, b.attn_output / 2);
    EXPECT_DOUBLE_EQ(f.fc1_input, b.fc1_input / 2);
    EXPECT_DOUBLE_EQ(f.fc2_input, b.fc2_input / 2);
    // BF16 as before: the norm inputs, Q/K/V for the BF16 attention, the fc1 output the
    // activation's backward reads, the log-sum-exp, the masks.
    EXPECT_DOUBLE_EQ(f.attn_norm_input, b.attn_norm_input);
    EXPECT_DOUBLE_EQ(f.mlp_norm_input, b.mlp_norm_input);
    EXPECT_DOUBLE_EQ(f.qkv, b.qkv);
    EXPECT_DOUBLE_EQ(f.attn_scores, b.attn_scores);
    EXPECT_DOUBLE_EQ(f.act_input, b.act_input);
    EXPECT_DOUBLE_EQ(f.attn_dropout_mask + f.mlp_dropout_mask,
                     b.attn_dropout_mask + b.mlp_dropout_mask);
  }
}

// The FP8 weight cache: one byte for the FP8 copy and one for its transpose per weight of the
// four linear layers (h (h + 2 kv d) + h^2 + 2 h ffn (SwiGLU fc1) + ffn h, over TP), per layer.
TEST(Fp8Recipe, WeightCacheIsTwoBytesPerLinearWeight) {
  const spec::ParallelConfig c = layout(2, 1, true);
  const graph::ModelDims fp8 = graph::model_dims(with_dtype(kModel, spec::FP8));
  const graph::ModelDims bf16 = graph::model_dims(with_dtype(kModel, spec::BF16));
  const double h = 512, kv = 4 * 64, ffn = 1408;
  const double linear = (h * (h + 2 * kv) + h * h + h * 2 * ffn + ffn * h) / 2;
  const ModelStateBytes f = stage_model_state_bytes(fp8, c, 0);
  const ModelStateBytes b = stage_model_state_bytes(bf16, c, 0);
  EXPECT_DOUBLE_EQ(f.fp8_weights, 2 * 4 * linear);
  EXPECT_DOUBLE_EQ(b.fp8_weights, 0);
  EXPECT_DOUBLE_EQ(f.total() - f.fp8_weights, b.total());
}

struct Counts {
  std::map<std::string, int> ops;  // by op name without micro-batch and layer
  double gemm_flops = 0, fp8_gemm_flops = 0, forward_gather_bytes = 0, backward_gather_bytes = 0,
         reduce_bytes = 0, weight_cast_bytes = 0;
  int amax = 0, amax_group = 0;
};

Counts count(const spec::ModelSpec& model, const spec::ParallelConfig& c) {
  const graph::TrainingGraph tg = graph::build_training_graph(model, c, {});
  Counts n;
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    if (op.rank != 0) continue;
    ++n.ops[std::string(graph::label_name(op.label))];
    if (op.kind == OpKind::kGemm) (op.fp8 ? n.fp8_gemm_flops : n.gemm_flops) += op.flops;
    if (op.label == OpLabel::kFp8WeightCast) n.weight_cast_bytes += op.bytes;
    if (op.label == OpLabel::kFp8Amax) {
      ++n.amax;
      n.amax_group = op.group_size;
      EXPECT_EQ(graph::op_name(op), "comm/dp/fp8.amax");
    }
    if (op.group != graph::Group::kTp || op.site != graph::Site::kLayer) continue;
    if (op.kind == OpKind::kAllGather) {
      const bool input = op.pass == graph::Pass::kForward ||
                         op.label == OpLabel::kAttnInputAllGather ||
                         op.label == OpLabel::kMlpInputAllGather;
      (input ? n.forward_gather_bytes : n.backward_gather_bytes) += op.bytes;
    }
    if (op.kind == OpKind::kReduceScatter) n.reduce_bytes += op.bytes;
  }
  return n;
}

TEST(Fp8Recipe, SameWorkHalfTheInputGathersAndTheRecipesKernels) {
  const spec::ParallelConfig c = layout(2, 2, true);
  Counts b = count(with_dtype(kModel, spec::BF16), c);
  Counts f = count(with_dtype(kModel, spec::FP8), c);
  // The layers' GEMMs move to FP8, the LM head stays: the same FLOPs in all.
  EXPECT_DOUBLE_EQ(f.gemm_flops + f.fp8_gemm_flops, b.gemm_flops);
  EXPECT_EQ(b.fp8_gemm_flops, 0);
  EXPECT_GT(f.gemm_flops, 0);  // the logits GEMMs
  // The FP8 inputs are gathered (forward, and re-gathered for the wgrad) in FP8; gradients are
  // gathered and reduced in BF16.
  EXPECT_DOUBLE_EQ(f.forward_gather_bytes, b.forward_gather_bytes / 2);
  EXPECT_DOUBLE_EQ(f.backward_gather_bytes, b.backward_gather_bytes);
  EXPECT_DOUBLE_EQ(f.reduce_bytes, b.reduce_bytes);
  // Per layer and micro-batch: two casts forward (projection and fc2 inputs; the norms write the
  // QKV and fc1 inputs in FP8), four backward (each linear's output gradient).
  const int layer_micro_batches = 4 * 2;  // 4 layers, 2 micro-batches per rank
  EXPECT_EQ(f.ops["attn.proj.cast"] + f.ops["mlp.fc2.cast"], 2 * 2 * layer_micro_batches);
  EXPECT_EQ(f.ops["attn.qkv.cast"] + f.ops["mlp.fc1.cast"], 2 * layer_micro_batches);
  EXPECT_EQ(b.ops.count("attn.qkv.cast"), 0u);
  // Once per iteration: the weight cast (BF16 read, FP8 copy and transpose written) and the
  // amax reduction over the TP x DP ranks.
  const double h = 512, kv = 4 * 64, ffn = 1408;
  const double linear = (h * (h + 2 * kv) + h * h + h * 2 * ffn + ffn * h) / 2;
  EXPECT_EQ(f.ops["fp8.weights"], 1);
  EXPECT_DOUBLE_EQ(f.weight_cast_bytes, 4 * 4 * linear);
  EXPECT_EQ(f.amax, 1);
  EXPECT_EQ(f.amax_group, 4);
  EXPECT_EQ(b.amax, 0);
  EXPECT_EQ(count(with_dtype(kModel, spec::FP8), layout(1, 1, false)).amax, 0);  // one rank
}

}  // namespace
}  // namespace mpsim::memory
