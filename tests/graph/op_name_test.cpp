#include "simulator/graph/op_name.h"

#include <gtest/gtest.h>

#include <set>

#include "simulator/graph/training_graph.h"
#include "tests/test_models.h"

namespace mpsim::graph {
namespace {

Op layer_op(Pass pass, int mb, int layer, OpLabel label) {
  Op op;
  op.pass = pass;
  op.micro_batch = mb;
  op.site = Site::kLayer;
  op.layer = layer;
  op.label = label;
  return op;
}

TEST(OpName, DesignExamples) {
  EXPECT_EQ(op_name(layer_op(Pass::kForward, 3, 17, OpLabel::kAttnQkv)), "fwd/mb3/L17/attn.qkv");
  EXPECT_EQ(op_name(layer_op(Pass::kBackward, 3, 17, OpLabel::kMlpFc2Wgrad)),
            "bwd/mb3/L17/mlp.fc2.wgrad");
  Op tp = layer_op(Pass::kForward, 3, 17, OpLabel::kAttnAllReduce);
  tp.group = Group::kTp;
  tp.kind = OpKind::kAllReduce;
  EXPECT_EQ(op_name(tp), "comm/tp/fwd/mb3/L17/attn.allreduce");
  Op dp;
  dp.kind = OpKind::kAllReduce;
  dp.group = Group::kDp;
  dp.bucket = 4;
  dp.pass = Pass::kStep;
  EXPECT_EQ(op_name(dp), "comm/dp/bucket4");
  dp.kind = OpKind::kReduceScatter;
  EXPECT_EQ(op_name(dp), "comm/dp/bucket4/reducescatter");
  Op pp;
  pp.kind = OpKind::kSend;
  pp.group = Group::kPp;
  pp.micro_batch = 3;
  EXPECT_EQ(op_name(pp), "comm/pp/send/fwd/mb3");
  pp.pass = Pass::kBackward;
  pp.chunk = 1;
  EXPECT_EQ(op_name(pp), "comm/pp/send/bwd/mb3/c1");
  Op optimizer;
  optimizer.kind = OpKind::kOptimizer;
  EXPECT_EQ(op_name(optimizer), "optimizer");
}

TEST(OpName, ParsesTheGrammar) {
  auto parsed = parse_op_name("rcp/mb12/L5/attn.core");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->family, ParsedOpName::Family::kCompute);
  EXPECT_EQ(parsed->pass, Pass::kRecompute);
  EXPECT_EQ(parsed->micro_batch, 12);
  EXPECT_EQ(parsed->layer, 5);
  EXPECT_EQ(parsed->label, "attn.core");
  parsed = parse_op_name("comm/dp/bucket7/allgather");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->family, ParsedOpName::Family::kDp);
  EXPECT_EQ(parsed->bucket, 7);
  EXPECT_EQ(parsed->label, "allgather");
  parsed = parse_op_name("fwd/mb0/head/logits");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->site, Site::kHead);
}

TEST(OpName, RejectsTextOutsideTheGrammar) {
  for (const char* bad : {"", "fwd", "fwd/mb/L1/x", "fwd/mb1/L1/", "xyz/mb1/L1/a", "fwd/mb1/Lx/a",
                          "comm/pp/send/sideways/mb1", "comm/dp/bucket", "comm/tp/fwd/mb1/L1",
                          "fwd/mb-1/L1/a", "comm/dp/bucket1/scatter"}) {
    EXPECT_FALSE(parse_op_name(bad).has_value()) << bad;
  }
}

// Every op of a rich configuration has a name that is unique on its rank and parses back to
// the op's own fields.
TEST(OpName, UniqueAndRoundTripsOverAWholeGraph) {
  for (bool sp : {false, true}) {
    spec::ParallelConfig c = testing::config(2, 2, 2, 1, 16, spec::INTERLEAVED_1F1B, 2);
    c.set_sequence_parallel(sp);
    c.set_recompute(sp ? spec::RECOMPUTE_FULL : spec::RECOMPUTE_SELECTIVE);
    c.set_zero_stage(1);
    const TrainingGraph tg = build_training_graph(testing::gpt(8, 256, 4, 128, 1000), c,
                                                  {.all_ranks = true, .gpus_per_node = 8});
    std::vector<std::set<std::string>> names(tg.ranks.size());
    for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
      const Op& op = tg.graph[v];
      const std::string name = op_name(op);
      EXPECT_TRUE(names[op.rank].insert(name).second) << "duplicate " << name;
      const auto parsed = parse_op_name(name);
      ASSERT_TRUE(parsed.has_value()) << name;
      if (op.kind == OpKind::kOptimizer) continue;
      EXPECT_EQ(parsed->micro_batch, op.micro_batch) << name;
      EXPECT_EQ(parsed->layer, op.layer) << name;
      if (op.group != Group::kPp && op.group != Group::kDp && op.group != Group::kEmbedding) {
        EXPECT_EQ(parsed->label, label_name(op.label)) << name;
      }
    }
  }
}

}  // namespace
}  // namespace mpsim::graph
