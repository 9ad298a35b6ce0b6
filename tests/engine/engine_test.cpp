#include "simulator/engine/engine.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/test_models.h"

namespace mpsim::engine {
namespace {

using graph::Op;
using graph::OpKind;
using graph::OpVertex;
using graph::Pass;
using graph::Site;
using graph::TrainingGraph;

// Uniform costs: every layer's forward compute takes tf_layer, its backward tb_layer (spread
// evenly over the layer's ops); everything else (embedding, head, communication, optimizer) is
// free. Returns nothing; durations are written into the graph.
void set_uniform_costs(TrainingGraph& tg, double tf_layer, double tb_layer) {
  std::map<Pass, int> ops_per_layer;
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    if (op.rank == 0 && op.micro_batch == 0 && op.site == Site::kLayer && op.layer == 0 &&
        op.stream == graph::Stream::kCompute)
      ++ops_per_layer[op.pass];
  }
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    Op& op = tg.graph[v];
    op.duration_s = 0;
    if (op.site != Site::kLayer || op.stream != graph::Stream::kCompute) continue;
    if (op.pass == Pass::kForward) op.duration_s = tf_layer / ops_per_layer[Pass::kForward];
    if (op.pass == Pass::kBackward) op.duration_s = tb_layer / ops_per_layer[Pass::kBackward];
  }
}

// A cost that depends on every field the graph fills, so asymmetries would show.
void set_synthetic_costs(TrainingGraph& tg) {
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    Op& op = tg.graph[v];
    if (graph::is_communication(op.kind)) {
      op.duration_s = op.group_size > 1 ? 2e-6 * op.group_nodes + op.bytes * 1e-11 : 0;
    } else {
      op.duration_s = 1e-6 + op.flops * 1e-15 + op.bytes * 1e-12;
    }
  }
}

double simulate_uniform(int p, int m, spec::Schedule schedule, int v, double tf, double tb) {
  const int layers = 2 * p * v;
  TrainingGraph tg = graph::build_training_graph(testing::gpt(layers, 256, 4, 128, 1000),
                                                 testing::config(1, p, 1, 1, m, schedule, v), {});
  set_uniform_costs(tg, tf, tb);
  return run_engine(tg).makespan_s;
}

// Narayanan et al. 2021: with m micro-batches on p stages, per-stage times t_f and t_b and free
// communication, 1F1B and GPipe take (m + p - 1)(t_f + t_b).
TEST(Engine, OneFOneBAndGpipeMatchClosedForm) {
  const double tf_layer = 1.0, tb_layer = 2.0;
  for (int p : {1, 2, 4, 8}) {
    for (int m : {1, 4, 8, 16}) {
      const double tf = 2 * tf_layer, tb = 2 * tb_layer;  // 2 layers per stage
      const double expected = (m + p - 1) * (tf + tb);
      EXPECT_NEAR(simulate_uniform(p, m, spec::ONE_F_ONE_B, 1, tf_layer, tb_layer), expected, 1e-9)
          << "1f1b p=" << p << " m=" << m;
      EXPECT_NEAR(simulate_uniform(p, m, spec::GPIPE, 1, tf_layer, tb_layer), expected, 1e-9)
          << "gpipe p=" << p << " m=" << m;
    }
  }
}

// Interleaving v chunks divides the bubble by v: m (t_f + t_b) + (p - 1)(t_f + t_b) / v.
TEST(Engine, InterleavedBubbleIsVTimesSmaller) {
  const int p = 4, m = 8;
  for (int v : {2, 4}) {
    // Keep the per-stage work fixed: 2 layers per chunk, so per-layer times scale by 1/v.
    const double tf = 2.0, tb = 4.0;  // per stage
    const double layers_per_stage = 2.0 * v;
    const double total = simulate_uniform(p, m, spec::INTERLEAVED_1F1B, v, tf / layers_per_stage,
                                          tb / layers_per_stage);
    const double bubble = total - m * (tf + tb);
    EXPECT_NEAR(bubble, (p - 1) * (tf + tb) / v, 1e-9) << "v=" << v;
    const double plain = simulate_uniform(p, m, spec::ONE_F_ONE_B, 1, tf / 2, tb / 2);
    EXPECT_NEAR((plain - m * (tf + tb)) / bubble, v, 1e-9);
  }
}

TEST(Engine, CollectiveStartsWhenLastMemberIsReady) {
  TrainingGraph tg;
  tg.ranks.resize(2);
  tg.num_collectives = 1;
  std::vector<Op> ops;
  auto add = [&](int rank, graph::Stream stream, double duration, int collective) {
    Op op;
    op.rank = rank;
    op.stream = stream;
    op.duration_s = duration;
    op.collective = collective;
    op.kind = collective >= 0 ? OpKind::kAllReduce : OpKind::kGemm;
    ops.push_back(op);
    return static_cast<OpVertex>(ops.size() - 1);
  };
  const OpVertex a = add(0, graph::Stream::kCompute, 1.0, -1);
  const OpVertex ca = add(0, graph::Stream::kTpComm, 2.0, 0);
  const OpVertex b = add(1, graph::Stream::kCompute, 3.0, -1);
  const OpVertex cb = add(1, graph::Stream::kTpComm, 2.0, 0);
  const OpVertex after = add(0, graph::Stream::kCompute, 1.0, -1);
  tg.graph = graph::make_op_graph(ops, {{a, ca}, {b, cb}, {ca, after}});
  const EngineResult r = run_engine(tg);
  EXPECT_DOUBLE_EQ(r.start_s[ca], 3.0);
  EXPECT_DOUBLE_EQ(r.start_s[cb], 3.0);
  EXPECT_DOUBLE_EQ(r.end_s[ca], 5.0);
  EXPECT_DOUBLE_EQ(r.start_s[after], 5.0);
  EXPECT_DOUBLE_EQ(r.makespan_s, 6.0);
}

TEST(Engine, StreamRunsOpsInProgramOrder) {
  TrainingGraph tg;
  tg.ranks.resize(1);
  Op op;
  op.duration_s = 1.0;
  tg.graph = graph::make_op_graph({op, op}, {});
  const EngineResult r = run_engine(tg);
  EXPECT_DOUBLE_EQ(r.start_s[0], 0.0);
  EXPECT_DOUBLE_EQ(r.start_s[1], 1.0);
}

TEST(Engine, EdgeDelayPostponesTheTarget) {
  // Rank 0 runs A (1 s); rank 1's B waits for A plus a 0.5 s transfer.
  TrainingGraph tg;
  tg.ranks.resize(2);
  Op a, b;
  a.duration_s = b.duration_s = 1.0;
  b.rank = 1;
  tg.graph = graph::make_op_graph({a, b}, {{0, 1}}, {{0.5}});
  const EngineResult r = run_engine(tg);
  EXPECT_DOUBLE_EQ(r.start_s[1], 1.5);
  EXPECT_DOUBLE_EQ(r.makespan_s, 2.5);
}

TEST(Engine, TracksMemoryPerRank) {
  // Rank 0: A allocates 10 (freed by C), B allocates and frees 5 of workspace while A's 10 is
  // held: the peak is 15 and everything is returned at the end.
  TrainingGraph tg;
  tg.ranks.resize(1);
  Op a, b, c;
  a.duration_s = b.duration_s = c.duration_s = 1.0;
  a.alloc_bytes = 10;
  b.alloc_bytes = 5;
  b.free_bytes = 5;
  c.free_bytes = 10;
  tg.graph = graph::make_op_graph({a, b, c}, {});
  const EngineResult r = run_engine(tg);
  EXPECT_DOUBLE_EQ(r.peak_bytes[0], 15.0);
  EXPECT_DOUBLE_EQ(r.final_bytes[0], 0.0);
}

// A compute op with interference f runs (1 + f) times slower only while communication runs: a
// GEMM of d seconds alone, beside a collective of c seconds started with it, does c / (1 + f) of
// its work in those c seconds and ends at c + (d - c / (1 + f)).
TEST(Engine, ComputeSlowsDownOnlyWhileCommunicationRuns) {
  const double d = 4.0, c = 1.5, f = 0.25;
  TrainingGraph tg;
  tg.ranks.resize(1);
  Op gemm;
  gemm.kind = OpKind::kGemm;
  gemm.duration_s = d;
  gemm.comm_interference = f;
  Op comm;
  comm.kind = OpKind::kAllReduce;
  comm.stream = graph::Stream::kDpComm;
  comm.duration_s = c;
  Op late = comm;  // starts after the first one, when 2 s of the GEMM remain alone
  tg.graph = graph::make_op_graph({gemm, comm}, {});
  EngineResult r = run_engine(tg);
  EXPECT_DOUBLE_EQ(r.end_s[1], c);
  EXPECT_DOUBLE_EQ(r.end_s[0], c + (d - c / (1 + f)));
  // A collective longer than the GEMM stretches all of it.
  tg.graph[1].duration_s = 2 * d;
  r = run_engine(tg);
  EXPECT_DOUBLE_EQ(r.end_s[0], d * (1 + f));
  // Communication starting mid-op, after a delayed edge: the GEMM runs alone for 1 s, then
  // beside the collective for the rest (no collective ends before it).
  tg.graph = graph::make_op_graph({gemm, Op{}, late}, {{1, 2}}, {{1.0}});
  tg.graph[1].duration_s = 0;
  tg.graph[1].stream = graph::Stream::kTpComm;
  tg.graph[2].duration_s = 10;
  r = run_engine(tg);
  EXPECT_DOUBLE_EQ(r.start_s[2], 1.0);
  EXPECT_DOUBLE_EQ(r.end_s[0], 1.0 + (d - 1.0) * (1 + f));
  // Without interference nothing changes.
  tg.graph[0].comm_interference = 0;
  r = run_engine(tg);
  EXPECT_DOUBLE_EQ(r.end_s[0], d);
  EXPECT_EQ(r.events, 7);  // three starts, three ends, one delayed release
}

TEST(Engine, ReportsDeadlockNamingTheStuckOp) {
  TrainingGraph tg;
  tg.ranks.resize(1);
  Op op;
  op.label = graph::OpLabel::kAttnQkv;
  op.site = Site::kLayer;
  op.layer = 0;
  op.micro_batch = 0;
  Op comm = op;
  comm.stream = graph::Stream::kTpComm;
  tg.graph = graph::make_op_graph({op, comm}, {{0, 1}, {1, 0}});
  try {
    run_engine(tg);
    FAIL() << "expected a deadlock error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("fwd/mb0/L0/attn.qkv"), std::string::npos) << e.what();
  }
}

// Simulating one rank per stage gives the same timeline as simulating every GPU, because TP and
// DP peers run the same program; checked on configurations that exercise every kind of op.
TEST(Engine, RepresentativeRanksAgreeWithAllRanks) {
  struct Case {
    int tp, pp, dp;
    bool sp;
    spec::Schedule schedule;
    int vpp;
    spec::Recompute recompute;
    int zero;
  };
  const spec::ModelSpec model = testing::gpt(8, 256, 4, 128, 1000);
  for (const Case& k : {Case{2, 2, 2, false, spec::ONE_F_ONE_B, 1, spec::RECOMPUTE_NONE, 0},
                        Case{2, 2, 2, true, spec::INTERLEAVED_1F1B, 2, spec::RECOMPUTE_FULL, 1},
                        Case{4, 1, 2, true, spec::GPIPE, 1, spec::RECOMPUTE_SELECTIVE, 3},
                        Case{1, 4, 2, false, spec::GPIPE, 1, spec::RECOMPUTE_NONE, 1}}) {
    spec::ParallelConfig c = testing::config(k.tp, k.pp, k.dp, 1, 8, k.schedule, k.vpp);
    c.set_sequence_parallel(k.sp);
    c.set_recompute(k.recompute);
    c.set_zero_stage(k.zero);
    TrainingGraph rep =
        graph::build_training_graph(model, c, {.all_ranks = false, .gpus_per_node = 4});
    TrainingGraph all =
        graph::build_training_graph(model, c, {.all_ranks = true, .gpus_per_node = 4});
    set_synthetic_costs(rep);
    set_synthetic_costs(all);
    const EngineResult r = run_engine(rep);
    const EngineResult a = run_engine(all);
    EXPECT_EQ(boost::num_vertices(all.graph), boost::num_vertices(rep.graph) * k.tp * k.dp);
    EXPECT_GT(all.num_collectives, 0);
    EXPECT_NEAR(r.makespan_s, a.makespan_s, 1e-12 * a.makespan_s)
        << k.tp << "x" << k.pp << "x" << k.dp;
  }
}

TEST(Engine, DeterministicEventLog) {
  spec::ParallelConfig c = testing::config(2, 2, 2, 1, 8);
  TrainingGraph tg = graph::build_training_graph(testing::gpt(4, 256, 4, 128, 1000), c,
                                                 {.all_ranks = true, .gpus_per_node = 8});
  set_synthetic_costs(tg);
  const EngineResult first = run_engine(tg);
  const EngineResult second = run_engine(tg);
  EXPECT_EQ(first.start_s, second.start_s);
  EXPECT_EQ(first.end_s, second.end_s);
  EXPECT_EQ(first.events, 2 * static_cast<int64_t>(boost::num_vertices(tg.graph)));
}

}  // namespace
}  // namespace mpsim::engine
