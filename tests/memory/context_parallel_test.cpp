// Context parallelism (ParallelConfig::context_parallel) against closed forms: a rank's
// attention is 1/CP of the whole sequence's, in CP blocks fed by CP - 1 ring steps; with free
// communication the attention time splits exactly 1/CP; the tokens a rank holds, and so its
// activations, split 1/CP; gradients are reduced over DP x CP.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "simulator/engine/engine.h"
#include "simulator/graph/training_graph.h"
#include "simulator/memory/memory_model.h"
#include "tests/test_models.h"

namespace mpsim::memory {
namespace {

using graph::Op;
using graph::OpKind;
using graph::OpVertex;

const spec::ModelSpec kModel = testing::llama(2, 512, 1408, 8, 4, 8192, 1000);

spec::ParallelConfig with_cp(int64_t cp, int64_t tp = 1) {
  spec::ParallelConfig c = testing::config(tp, 1, 2, 1, 2);
  c.set_context_parallel(cp);
  c.set_num_gpus(tp * cp * 2);
  return c;
}

struct Attention {
  std::map<graph::Pass, int> blocks, steps;
  double flops = 0;      // layer 0's forward core on rank 0
  double span_s = 0;     // its first block's start to its last block's end, communication free
  int32_t dp_group = 0;  // the DP gradient reduction's group
};

Attention attention(const spec::ParallelConfig& c) {
  graph::TrainingGraph tg = graph::build_training_graph(kModel, c, {});
  Attention a;
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    Op& op = tg.graph[v];
    op.duration_s = 0;
    const bool layer0 = op.layer == 0 && op.micro_batch == 0;
    if (op.kind == OpKind::kAttention && layer0) {
      ++a.blocks[op.pass];
      if (op.pass == graph::Pass::kForward) {
        a.flops += op.flops;
        op.duration_s = op.flops * 1e-15;
      }
    }
    if (op.group == graph::Group::kCp && layer0) ++a.steps[op.pass];
    if (op.group == graph::Group::kDp && op.kind == OpKind::kAllReduce) a.dp_group = op.group_size;
  }
  const engine::EngineResult r = engine::run_engine(tg);
  double start = 1e300, end = 0;
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    if (op.kind != OpKind::kAttention || op.layer != 0 || op.micro_batch != 0 ||
        op.pass != graph::Pass::kForward)
      continue;
    start = std::min(start, r.start_s[v]);
    end = std::max(end, r.end_s[v]);
  }
  a.span_s = end - start;
  return a;
}

TEST(ContextParallel, AttentionSplitsOneOverCpInCpBlocksAndCpMinusOneRingSteps) {
  Attention whole = attention(with_cp(1));
  EXPECT_EQ(whole.blocks[graph::Pass::kForward], 1);
  EXPECT_EQ(whole.steps.size(), 0u);
  for (int64_t cp : {2, 4, 8}) {
    Attention a = attention(with_cp(cp));
    EXPECT_EQ(a.blocks[graph::Pass::kForward], cp);
    EXPECT_EQ(a.blocks[graph::Pass::kBackward], cp);
    EXPECT_EQ(a.steps[graph::Pass::kForward], cp - 1);
    EXPECT_EQ(a.steps[graph::Pass::kBackward], cp - 1);
    EXPECT_NEAR(a.flops, whole.flops / static_cast<double>(cp), 1e-9 * whole.flops);
    EXPECT_NEAR(a.span_s, whole.span_s / static_cast<double>(cp), 1e-12 * whole.span_s);
    EXPECT_EQ(a.dp_group, 2 * cp);  // DP 2 x CP
  }
}

TEST(ContextParallel, ActivationsAndTokensSplitOneOverCp) {
  const graph::ModelDims d = graph::model_dims(kModel);
  for (bool sp : {false, true}) {
    spec::ParallelConfig one = with_cp(1, 2), four = with_cp(4, 2);
    one.set_sequence_parallel(sp);
    four.set_sequence_parallel(sp);
    EXPECT_DOUBLE_EQ(layer_activation_bytes(d, four), layer_activation_bytes(d, one) / 4);
  }
  // The model state is the same per rank without sharding, and shards over DP x CP with ZeRO-1.
  spec::ParallelConfig one = with_cp(1), four = with_cp(4);
  EXPECT_DOUBLE_EQ(stage_model_state_bytes(d, four, 0).total(),
                   stage_model_state_bytes(d, one, 0).total());
  one.set_zero_stage(1);
  four.set_zero_stage(1);
  EXPECT_DOUBLE_EQ(stage_model_state_bytes(d, four, 0).optimizer,
                   stage_model_state_bytes(d, one, 0).optimizer / 4);
}

}  // namespace
}  // namespace mpsim::memory
