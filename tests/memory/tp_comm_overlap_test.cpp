// Transformer Engine's TP-communication overlap (ParallelConfig::tp_comm_overlap) against its
// closed forms: the ring-exchange all-gather in front of a GEMM (t GEMM chunks of time g, t - 1
// ring steps of time c, chunk 0 on the rank's own shard) takes t g when c <= g and (t - 1) c + g
// when c >= g; the pipelined GEMM + reduce-scatter (n chunks, n reduce-scatter pieces of time c)
// takes n g + c when c <= g and g + n c when c >= g. Everything else is free here.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <tuple>

#include "simulator/engine/engine.h"
#include "simulator/graph/op_name.h"
#include "simulator/memory/memory_timeline.h"
#include "tests/test_models.h"

namespace mpsim::engine {
namespace {

using graph::Op;
using graph::OpKind;
using graph::OpLabel;
using graph::OpVertex;

spec::ParallelConfig overlapped_config(int64_t t, bool overlap) {
  spec::ParallelConfig c = testing::config(t, 1, 1, 2, 2);
  c.set_sequence_parallel(true);
  c.set_tp_comm_overlap(overlap);
  return c;
}

graph::TrainingGraph overlapped_graph(int64_t t, bool overlap) {
  return graph::build_training_graph(testing::gpt(2, 512, 8, 256, 1000),
                                     overlapped_config(t, overlap), {});
}

bool first_forward(const Op& op) {
  return op.pass == graph::Pass::kForward && op.micro_batch == 0 && op.layer == 0;
}

struct Span {
  double start = std::numeric_limits<double>::infinity(), end = 0;
  int gemms = 0, comms = 0;
};

// Prices layer 0's forward `gemm` chunks at g and its `comm` pieces at c, everything else at 0,
// and returns the span from the first chunk's start to the last chunk's or piece's end.
Span run_pair(graph::TrainingGraph tg, OpLabel gemm, OpLabel comm, double g, double c) {
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    Op& op = tg.graph[v];
    op.duration_s = 0;
    if (!first_forward(op)) continue;
    if (op.label == gemm && op.kind == OpKind::kGemm) op.duration_s = g;
    if (op.label == comm && op.group == graph::Group::kTp) op.duration_s = c;
  }
  const EngineResult r = run_engine(tg);
  Span s;
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    if (!first_forward(op)) continue;
    const bool is_gemm = op.label == gemm && op.kind == OpKind::kGemm;
    const bool is_comm = op.label == comm && op.group == graph::Group::kTp;
    if (!is_gemm && !is_comm) continue;
    (is_gemm ? s.gemms : s.comms)++;
    if (is_gemm) s.start = std::min(s.start, r.start_s[v]);
    s.end = std::max(s.end, r.end_s[v]);
  }
  return s;
}

TEST(TpCommOverlap, RingExchangeAllGatherMatchesItsClosedForm) {
  for (int64_t t : {2, 4, 8}) {
    const graph::TrainingGraph tg = overlapped_graph(t, true);
    for (auto [g, c] : {std::pair{1.0, 0.4}, std::pair{1.0, 2.5}}) {
      const Span s = run_pair(tg, OpLabel::kAttnQkv, OpLabel::kAttnAllGather, g, c);
      EXPECT_EQ(s.gemms, t);
      EXPECT_EQ(s.comms, t - 1);
      const double expected = c <= g ? t * g : (t - 1) * c + g;
      EXPECT_NEAR(s.end - s.start, expected, 1e-12) << "t=" << t << " g=" << g << " c=" << c;
    }
  }
}

TEST(TpCommOverlap, PipelinedReduceScatterMatchesItsClosedForm) {
  const int n = 4;  // Transformer Engine's default number of splits
  for (int64_t t : {2, 4}) {
    const graph::TrainingGraph tg = overlapped_graph(t, true);
    for (auto [g, c] : {std::pair{1.0, 0.3}, std::pair{1.0, 1.7}}) {
      const Span s = run_pair(tg, OpLabel::kMlpFc2, OpLabel::kMlpReduceScatter, g, c);
      EXPECT_EQ(s.gemms, n);
      EXPECT_EQ(s.comms, n);
      const double expected = c <= g ? n * g + c : g + n * c;
      EXPECT_NEAR(s.end - s.start, expected, 1e-12) << "t=" << t << " g=" << g << " c=" << c;
    }
  }
}

// Splitting changes neither the work nor the bytes communicated nor the memory saved: the chunks'
// FLOPs add up to the GEMM's, the ring steps carry the (t - 1) / t of the gathered input that an
// all-gather brings in, the reduce-scatter pieces the whole reduced output, and the activations
// saved are the same; every chunk has its own name, which parses back to the label and part.
TEST(TpCommOverlap, SplitsKeepWorkBytesAndMemory) {
  const int64_t t = 4;
  graph::TrainingGraph plain = overlapped_graph(t, false), split = overlapped_graph(t, true);
  memory::annotate_memory(plain, overlapped_config(t, false), memory::LossMemory::kFp32Logits);
  memory::annotate_memory(split, overlapped_config(t, true), memory::LossMemory::kFp32Logits);
  auto sums = [](const graph::TrainingGraph& tg, OpLabel label) {
    double flops = 0, bytes = 0, saved = 0;
    for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
      const Op& op = tg.graph[v];
      if (op.layer != 0 || op.micro_batch != 0 || op.pass != graph::Pass::kForward) continue;
      if (op.label == label) {
        flops += op.flops;
        bytes += op.group == graph::Group::kTp ? op.bytes : 0;
        saved += op.alloc_bytes;
      }
    }
    return std::tuple{flops, bytes, saved};
  };
  for (OpLabel label : {OpLabel::kAttnQkv, OpLabel::kAttnProj, OpLabel::kMlpFc1, OpLabel::kMlpFc2,
                        OpLabel::kMlpReduceScatter}) {
    EXPECT_EQ(sums(plain, label), sums(split, label)) << graph::label_name(label);
  }
  const auto [f0, gathered, s0] = sums(plain, OpLabel::kAttnAllGather);
  const auto [f1, sent, s1] = sums(split, OpLabel::kAttnAllGather);
  EXPECT_DOUBLE_EQ(sent, gathered * (t - 1) / t);
  std::set<std::string> names;
  for (OpVertex v = 0; v < boost::num_vertices(split.graph); ++v) {
    const Op& op = split.graph[v];
    const std::string name = graph::op_name(op);
    EXPECT_TRUE(names.insert(name).second) << name;
    const auto parsed = graph::parse_op_name(name);
    ASSERT_TRUE(parsed) << name;
    if (op.kind == OpKind::kStepBlock || op.group == graph::Group::kDp) continue;
    EXPECT_EQ(parsed->part, op.parts > 1 ? op.part : -1) << name;
  }
}

}  // namespace
}  // namespace mpsim::engine
