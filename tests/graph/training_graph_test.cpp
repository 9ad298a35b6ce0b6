#include "simulator/graph/training_graph.h"

#include <gtest/gtest.h>

#include <map>

#include "simulator/graph/model_math.h"
#include "simulator/graph/op_name.h"
#include "tests/test_models.h"

namespace mpsim::graph {
namespace {

TrainingGraph build(const spec::ModelSpec& m, const spec::ParallelConfig& c, bool all = false) {
  return build_training_graph(m, c, {.all_ranks = all, .gpus_per_node = 8});
}

std::map<Group, int> count_groups(const TrainingGraph& tg) {
  std::map<Group, int> out;
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) ++out[tg.graph[v].group];
  return out;
}

TEST(TrainingGraph, TensorParallelOneHasNoTpOps) {
  const auto tg = build(testing::gpt(4, 256, 4, 128, 1000), testing::config(1, 2, 2, 1, 8));
  const auto groups = count_groups(tg);
  EXPECT_EQ(groups.count(Group::kTp), 0u);
  EXPECT_GT(groups.at(Group::kPp), 0);
  EXPECT_GT(groups.at(Group::kDp), 0);
}

TEST(TrainingGraph, PipelineParallelOneHasNoSends) {
  const auto tg = build(testing::gpt(4, 256, 4, 128, 1000), testing::config(2, 1, 2, 1, 8));
  const auto groups = count_groups(tg);
  EXPECT_EQ(groups.count(Group::kPp), 0u);
  EXPECT_EQ(groups.count(Group::kEmbedding), 0u);
  EXPECT_GT(groups.at(Group::kTp), 0);
}

TEST(TrainingGraph, MegatronTpCommunicationPerLayer) {
  // Without SP: 2 all-reduces forward and 2 backward per layer and micro-batch (plus the
  // embedding, loss and LM-head ones). With SP: all-gathers and reduce-scatters instead.
  const int layers = 4, micro_batches = 4;
  for (bool sp : {false, true}) {
    spec::ParallelConfig c = testing::config(2, 1, 1, 1, micro_batches);
    c.set_sequence_parallel(sp);
    const auto tg = build(testing::gpt(layers, 256, 4, 128, 1000), c);
    std::map<std::string, int> by_kind;
    for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
      const Op& op = tg.graph[v];
      if (op.group == Group::kTp && op.site == Site::kLayer)
        by_kind[std::string(to_string(op.kind))]++;
    }
    if (!sp) {
      EXPECT_EQ(by_kind["allreduce"], 4 * layers * micro_batches);
      EXPECT_EQ(by_kind.count("allgather"), 0u);
    } else {
      // forward: 2 AG + 2 RS; backward: 2 AG (grad) + 2 AG (input re-gather) + 2 RS.
      EXPECT_EQ(by_kind["allgather"], 6 * layers * micro_batches);
      EXPECT_EQ(by_kind["reducescatter"], 4 * layers * micro_batches);
      EXPECT_EQ(by_kind.count("allreduce"), 0u);
    }
  }
}

// The GEMM and attention FLOPs of the graph add up to the closed-form model FLOPs (computed with
// the padded vocabulary the graph uses), for every parallel layout: no work is lost or doubled.
// The unfused core computes the full s x s scores, as the model-FLOP formula counts them; flash
// attention does the causal half (s (s + 1) / 2 of the s^2 dot products) and five products
// backward instead of four, so per layer and sequence its 3 x 4 s^2 h become
// (1 + 2.5) x 2 s (s + 1) h.
TEST(TrainingGraph, GraphFlopsEqualModelFlopsTimesRanks) {
  const spec::ModelSpec model = testing::gpt(8, 512, 8, 256, 1000);
  struct Layout {
    int tp, pp, dp;
    spec::Schedule schedule;
    int vpp;
  };
  for (const Layout& l :
       {Layout{1, 1, 1, spec::ONE_F_ONE_B, 1}, Layout{2, 2, 2, spec::ONE_F_ONE_B, 1},
        Layout{4, 2, 1, spec::GPIPE, 1}, Layout{2, 2, 1, spec::INTERLEAVED_1F1B, 2}}) {
    const int gbs = 16;
    for (spec::Attention attention : {spec::ATTENTION_UNFUSED, spec::ATTENTION_FLASH}) {
      spec::ParallelConfig c = testing::config(l.tp, l.pp, l.dp, 2, gbs, l.schedule, l.vpp);
      c.set_attention(attention);
      const auto tg = build(model, c, true);
      double flops = 0;
      for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
        const Op& op = tg.graph[v];
        if (op.kind == OpKind::kGemm || op.kind == OpKind::kAttention) flops += op.flops;
      }
      ModelDims d = model_dims(model);
      d.vocab = padded_vocab(d.vocab, l.tp);
      double expected = model_flops_per_iteration(d, gbs);
      if (attention == spec::ATTENTION_FLASH) {
        const double s = 256, h = 512, per_layer = gbs * 8.0;  // sequences x layers
        expected += per_layer * (3.5 * 2 * s * (s + 1) * h - 3 * 4 * s * s * h);
      }
      EXPECT_NEAR(flops, expected, 1e-9 * expected)
          << l.tp << "x" << l.pp << "x" << l.dp << " attention " << attention;
    }
  }
}

TEST(TrainingGraph, RecomputeAddsForwardWork) {
  const spec::ModelSpec model = testing::gpt(4, 256, 4, 128, 1000);
  std::map<spec::Recompute, int> rcp_ops;
  for (auto mode : {spec::RECOMPUTE_NONE, spec::RECOMPUTE_SELECTIVE, spec::RECOMPUTE_FULL}) {
    spec::ParallelConfig c = testing::config(2, 1, 1, 1, 2);
    c.set_recompute(mode);
    const auto tg = build(model, c);
    for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v)
      if (tg.graph[v].pass == Pass::kRecompute) ++rcp_ops[mode];
  }
  EXPECT_EQ(rcp_ops[spec::RECOMPUTE_NONE], 0);
  EXPECT_EQ(rcp_ops[spec::RECOMPUTE_SELECTIVE], 4 * 2);  // one attention core per layer and mb
  // full: the whole layer forward (10 compute ops + 2 TP all-reduces) per layer and mb
  EXPECT_EQ(rcp_ops[spec::RECOMPUTE_FULL], 12 * 4 * 2);
}

// Each attention kind's core, forward and backward, against the work written out by hand for a
// GQA model (h 256, 8 heads of 32, 2 KV heads, s 128, micro-batch 2, TP 2 so 4 local heads):
// unfused full s^2 scores and their HBM passes, flash the causal half and no s x s traffic.
TEST(TrainingGraph, AttentionCoresOfEachKind) {
  const spec::ModelSpec model = testing::llama(2, 256, 688, 8, 2, 128, 1000);
  const double bh = 2 * 4, s = 128, d = 32, e = 2, tokens = 2 * 128;
  const double qkv = tokens * (4 * d + 2 * 1 * d), out = tokens * 4 * d;
  for (spec::Attention attention : {spec::ATTENTION_UNFUSED, spec::ATTENTION_FLASH}) {
    spec::ParallelConfig c = testing::config(2, 1, 1, 2, 2);
    c.set_attention(attention);
    c.set_recompute(spec::RECOMPUTE_SELECTIVE);
    const auto tg = build(model, c);
    const bool flash = attention == spec::ATTENTION_FLASH;
    const OpLabel core = flash ? OpLabel::kAttnFlash : OpLabel::kAttnCore;
    std::map<Pass, int> count;
    for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
      const Op& op = tg.graph[v];
      if (op.kind != OpKind::kAttention) continue;
      EXPECT_EQ(op.label, core);
      const std::string name = op_name(op);  // e.g. rcp/mb0/L1/attn.flash
      EXPECT_EQ(name.substr(name.rfind('/') + 1), flash ? "attn.flash" : "attn.core");
      ++count[op.pass];
      const bool backward = op.pass == Pass::kBackward;
      double flops, bytes;
      if (flash) {
        flops = 2 * bh * s * (s + 1) * d * (backward ? 2.5 : 1);
        bytes = (backward ? 2 * qkv + 2 * out : qkv + out) * e + 4 * bh * s;
      } else {
        flops = 4 * bh * s * s * d * (backward ? 2 : 1);
        bytes =
            (backward ? 2 * qkv + 3 * out : qkv + out) * e + (backward ? 7 : 4) * e * bh * s * s;
      }
      EXPECT_DOUBLE_EQ(op.flops, flops) << label_name(core) << " pass " << int(op.pass);
      EXPECT_DOUBLE_EQ(op.bytes, bytes) << label_name(core) << " pass " << int(op.pass);
    }
    // Selective recompute keeps its meaning for both kinds: the core's forward again in backward.
    EXPECT_EQ(count[Pass::kForward], 2);
    EXPECT_EQ(count[Pass::kRecompute], 2);
    EXPECT_EQ(count[Pass::kBackward], 2);
  }
}

// Grouped-query attention with the fused core copies the query heads out of the QKV rows and
// their gradient back (attn.split): one op per layer and pass, reading and writing the local
// query heads (tokens x 4 heads x 32 x 2 bytes, twice); none with the unfused core (batched GEMMs
// read the rows in place) or without grouping.
TEST(TrainingGraph, FusedCoreSplitsGroupedQueries) {
  const double tokens = 2 * 128, e = 2;
  for (const int64_t kv_heads : {2, 8}) {
    const spec::ModelSpec model = testing::llama(2, 256, 688, 8, kv_heads, 128, 1000);
    for (spec::Attention attention : {spec::ATTENTION_UNFUSED, spec::ATTENTION_FLASH}) {
      spec::ParallelConfig c = testing::config(2, 1, 1, 2, 2);
      c.set_attention(attention);
      const auto tg = build(model, c);
      std::map<Pass, int> count;
      for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
        const Op& op = tg.graph[v];
        if (op.label != OpLabel::kAttnSplit) continue;
        EXPECT_EQ(op.kind, OpKind::kElementwise);
        EXPECT_DOUBLE_EQ(op.bytes, 2 * tokens * 4 * 32 * e);
        ++count[op.pass];
      }
      const int expected = kv_heads < 8 && attention == spec::ATTENTION_FLASH ? 2 : 0;
      EXPECT_EQ(count[Pass::kForward], expected) << kv_heads << " " << attention;
      EXPECT_EQ(count[Pass::kBackward], expected) << kv_heads << " " << attention;
    }
  }
}

TEST(TrainingGraph, DpBucketsCarryEveryGradientOnce) {
  const spec::ModelSpec model = testing::gpt(8, 512, 8, 256, 1000);
  for (int zero : {0, 1}) {
    spec::ParallelConfig c = testing::config(1, 1, 4, 1, 8);
    c.set_zero_stage(zero);
    c.set_dp_bucket_params(1'000'000);
    const auto tg = build(model, c);
    double reduced = 0, gathered = 0;
    std::vector<double> buckets;
    for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
      const Op& op = tg.graph[v];
      if (op.group != Group::kDp) continue;
      EXPECT_EQ(op.group_size, 4);
      if (op.kind == OpKind::kAllGather)
        gathered += op.bytes;
      else {
        reduced += op.bytes;
        buckets.push_back(op.bytes);
      }
    }
    const ModelDims d = model_dims(model);
    // fp32 gradients of every parameter (positions and padded vocab included, no LM head: tied).
    const double params =
        8.0 * layer_parameters(d) + padded_vocab(1000, 1) * 512.0 + 256.0 * 512 + 2.0 * 512;
    EXPECT_NEAR(reduced, 4 * params, 1e-6 * params);
    EXPECT_NEAR(gathered, zero == 1 ? 2 * params : 0, 1e-6 * params);  // bf16 weights
    // Buckets close once they hold the bucket size (whole layers at a time); only the last is
    // smaller.
    ASSERT_GE(buckets.size(), 2u);
    for (size_t i = 0; i + 1 < buckets.size(); ++i) EXPECT_GE(buckets[i], 4 * 1'000'000.0);
  }
}

TEST(TrainingGraph, PlacementFollowsMegatronOrder) {
  spec::ParallelConfig c = testing::config(8, 4, 2, 1, 8);
  EXPECT_EQ(global_rank(c, 3, 0, 0), 3);
  EXPECT_EQ(global_rank(c, 0, 1, 0), 8);
  EXPECT_EQ(global_rank(c, 0, 0, 1), 16);
  c.set_rank_order(spec::TP_PP_DP);
  EXPECT_EQ(global_rank(c, 0, 1, 0), 32);
  EXPECT_EQ(global_rank(c, 0, 0, 1), 8);
}

TEST(TrainingGraph, GroupsSpanNodesByPlacement) {
  // TP 8 inside a node of 8; DP 2 with stride 8 spans 2 nodes; PP neighbours 16 ranks apart.
  const auto tg = build(testing::gpt(4, 512, 8, 128, 1000), testing::config(8, 2, 2, 1, 4));
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    if (op.group == Group::kTp) {
      EXPECT_EQ(op.group_nodes, 1);
    }
    if (op.group == Group::kDp || op.group == Group::kPp) {
      EXPECT_EQ(op.group_nodes, 2);
    }
  }
}

TEST(TrainingGraph, RefusesAbsurdSizesBeforeBuilding) {
  const spec::ModelSpec model = testing::gpt(96, 12288, 96);
  const spec::ParallelConfig c = testing::config(1, 1, 1024, 1, 1 << 24);
  EXPECT_GT(estimate_ops(model, c, {.all_ranks = true}), kMaxOps);
}

}  // namespace
}  // namespace mpsim::graph
