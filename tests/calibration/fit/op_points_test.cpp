// Learning exact-shape tables from per-op times (op_points.h) on a small GPT graph (tp = 2, pp = 2,
// every rank simulated), with op times fabricated here from closed forms: the calibrated cost
// model built from the learned tables must give every graph op back its fabricated time; the
// median rule, the fastest member of a collective, the fallback of unmeasured ops, the notes and
// the merge rule are checked against values worked out here.
#include "calibration/fit/op_points.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "simulator/cost/calibrated_cost.h"
#include "simulator/cost/cost_model.h"
#include "simulator/graph/op_name.h"
#include "simulator/spec/spec_loader.h"
#include "tests/test_models.h"

namespace mpsim::calibration {
namespace {

using graph::Op;
using graph::OpKind;
using Times = std::vector<std::unordered_map<std::string, double>>;

double rel_err(double got, double want) { return std::abs(got - want) / std::abs(want); }

graph::TrainingGraph small_graph(int64_t gpus_per_node = 8) {
  return graph::build_training_graph(testing::gpt(4, 256, 4, 128, 3000),
                                     testing::executor_attention(testing::config(2, 2, 1, 1, 4)),
                                     {.all_ranks = true, .gpus_per_node = gpus_per_node});
}

// The op's own time: a function of the keys the cost model looks it up by.
double fabricated(const Op& op) {
  switch (op.kind) {
    case OpKind::kGemm:
      return 2.0 * op.gemm.m * op.gemm.n * op.gemm.k / 1e14;
    case OpKind::kAttention:
      return op.flops / 1e14;  // 4·bh·s²·d forward (and recompute), twice that backward
    case OpKind::kNorm:
    case OpKind::kElementwise:
    case OpKind::kLoss:
    case OpKind::kOptimizer:
      return 1e-6 + op.bytes / 2e12;
    default:  // communication
      return 5e-6 * op.group_size + op.bytes / 1e11;
  }
}

// A collective member that waited for its peer holds 20 µs of waiting. The two members of a TP
// all-reduce differ in tp, those of the tied-embedding all-reduce in pp, so the parity of
// tp + pp + collective id picks one member of each, either rank depending on the collective.
constexpr double kWait = 2e-5;
double with_wait(const graph::TrainingGraph& tg, const Op& op) {
  const graph::RankCoord& c = tg.ranks[op.rank];
  const bool waited = op.collective >= 0 && (c.tp + c.pp + op.collective) % 2 == 0;
  return fabricated(op) + (waited ? kWait : 0);
}

Times measure(const graph::TrainingGraph& tg) {
  Times times(tg.ranks.size());
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    times[op.rank][graph::op_name(op)] = with_wait(tg, op);
  }
  return times;
}

std::unique_ptr<cost::CostModel> model_from(const std::vector<spec::CalibratedTable>& tables) {
  spec::HardwareProfile profile = spec::load_hardware_profile("h100-sxm");
  merge_exact_tables(&profile, tables);
  return cost::make_calibrated_cost_model(spec::to_hardware(profile, "h100-sxm"));
}

std::unique_ptr<cost::CostModel> roofline() {
  return cost::make_roofline_cost_model(spec::load_hardware("h100-sxm"));
}

const spec::CalibratedTable* find_table(const std::vector<spec::CalibratedTable>& tables,
                                        const std::string& name) {
  for (const auto& t : tables) {
    if (t.op() == name) return &t;
  }
  return nullptr;
}

TEST(OpPoints, EveryMeasuredOpIsPricedAtItsMeasuredTime) {
  const graph::TrainingGraph tg = small_graph();
  std::vector<std::string> notes;
  const auto tables = learn_op_tables(tg, measure(tg), "test run", &notes);
  std::vector<std::string> names;
  for (const auto& t : tables) names.push_back(t.op());
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "allgather.nvlink.exact" /* the vocab-parallel loss */, "allreduce.nvlink.exact",
                "attention.bwd.bf16.exact", "attention.fwd.bf16.exact", "gemm.bf16.dgrad.exact",
                "gemm.bf16.fwd.exact", "gemm.bf16.wgrad.exact", "memory.elementwise.exact",
                "memory.loss.exact", "memory.norm.bwd.exact", "memory.norm.fwd.exact",
                "memory.optimizer.exact", "send.nvlink.exact"}));
  const auto model = model_from(tables);
  std::size_t ops = 0;
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    ++ops;
    EXPECT_LE(rel_err(model->op_seconds(op), fabricated(op)), 1e-9) << graph::op_name(op);
  }
  ASSERT_FALSE(notes.empty());
  EXPECT_EQ(notes[0], "joined " + std::to_string(ops) + " of " + std::to_string(ops) +
                          " graph ops by name; 0 without a measurement");
  EXPECT_NE(find_table(tables, "gemm.bf16.fwd.exact")->provenance().find("test run; "),
            std::string::npos);
}

// The qkv GEMM of 2 layers × 4 micro-batches × 4 ranks: 32 instances of one shape, taking
// (1 + micro-batch) times the closed form, one of them 1000 times: sorted, the 16th and 17th are
// 2 and 3 times the closed form, so the median is 2.5 times it (the mean would be about 33).
TEST(OpPoints, SameShapeInstancesGiveTheirMedian) {
  const graph::TrainingGraph tg = small_graph();
  Times times = measure(tg);
  const Op* qkv = nullptr;
  int instances = 0;
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    if (op.kind != OpKind::kGemm || op.label != graph::OpLabel::kAttnQkv ||
        op.pass != graph::Pass::kForward)
      continue;
    qkv = &op;
    ++instances;
    const bool outlier = op.rank == 0 && op.micro_batch == 3 && op.layer == 0;
    times[op.rank][graph::op_name(op)] = fabricated(op) * (outlier ? 1000 : 1 + op.micro_batch);
  }
  ASSERT_EQ(instances, 32);
  // No other forward-layout GEMM has the qkv shape (else it would join the median).
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    if (op.kind != OpKind::kGemm || op.label == graph::OpLabel::kAttnQkv ||
        cost::gemm_layout_table(op.label) != cost::kGemmForwardTable)
      continue;
    ASSERT_FALSE(op.gemm.m == qkv->gemm.m && op.gemm.n == qkv->gemm.n && op.gemm.k == qkv->gemm.k)
        << graph::op_name(op);
  }
  const auto tables = learn_op_tables(tg, times, "", nullptr);
  const double want = 2.5 * fabricated(*qkv);
  EXPECT_LE(rel_err(model_from(tables)->op_seconds(*qkv), want), 1e-9);
  // An odd count: drop the outlier; 31 instances, the 16th is 3 times the closed form.
  for (auto& rank : times) {
    for (auto& [name, seconds] : rank) {
      if (name == "fwd/mb3/L0/attn.qkv") seconds = 0;  // no measurement
    }
  }
  EXPECT_LE(rel_err(model_from(learn_op_tables(tg, times, "", nullptr))->op_seconds(*qkv),
                    2 * fabricated(*qkv)),
            1e-9);
}

// Each TP all-reduce has one member on each of the two TP ranks; one of them waited 20 µs. The
// point is the fastest member's time, whichever rank it ran on.
TEST(OpPoints, CollectivesTakeTheFastestMember) {
  const graph::TrainingGraph tg = small_graph();
  const auto tables = learn_op_tables(tg, measure(tg), "", nullptr);
  const spec::CalibratedTable* allreduce = find_table(tables, "allreduce.nvlink.exact");
  ASSERT_NE(allreduce, nullptr);
  int members = 0;
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    if (op.kind != OpKind::kAllReduce) continue;
    ASSERT_GE(op.collective, 0);
    ++members;
    bool found = false;
    for (const auto& p : allreduce->points()) {
      if (p.key(0) == op.group_size && p.key(1) == op.bytes) {
        found = true;
        EXPECT_LE(rel_err(p.seconds(), fabricated(op)), 1e-12) << graph::op_name(op);
      }
    }
    EXPECT_TRUE(found) << graph::op_name(op);
  }
  EXPECT_GT(members, 0);
}

// Ops without a measurement fall back: the optimizers (every rank) leave no optimizer table, so
// the roofline prices them; a GEMM shape no op measured is the roofline's too.
TEST(OpPoints, UnmeasuredOpsFallBack) {
  const graph::TrainingGraph tg = small_graph();
  Times times = measure(tg);
  for (auto& rank : times) rank.erase("optimizer");
  std::vector<std::string> notes;
  const auto tables = learn_op_tables(tg, times, "", &notes);
  EXPECT_EQ(find_table(tables, "memory.optimizer.exact"), nullptr);
  const auto model = model_from(tables);
  const auto reference = roofline();
  int optimizers = 0;
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    if (op.kind == OpKind::kOptimizer) {
      ++optimizers;
      EXPECT_EQ(model->op_seconds(op), reference->op_seconds(op));
    }
    if (op.kind == OpKind::kGemm) {
      Op near = op;
      near.gemm.m += 1;
      EXPECT_EQ(model->op_seconds(near), reference->op_seconds(near)) << graph::op_name(op);
    }
  }
  EXPECT_EQ(optimizers, 4);
  ASSERT_FALSE(notes.empty());
  const std::size_t ops = boost::num_vertices(tg.graph);
  EXPECT_EQ(notes[0].rfind("joined " + std::to_string(ops - 4) + " of " + std::to_string(ops) +
                               " graph ops by name; 4 without a measurement (e.g. rank ",
                           0),
            0u)
      << notes[0];
  EXPECT_NE(notes[0].find(": optimizer)"), std::string::npos) << notes[0];
}

TEST(OpPoints, NotesCountForeignNamesAndPointsPerTable) {
  const graph::TrainingGraph tg = small_graph();
  Times times = measure(tg);
  times[1]["fwd/mb0/L0/attn.bogus"] = 1e-3;
  std::vector<std::string> notes;
  const auto tables = learn_op_tables(tg, times, "", &notes);
  int attention_backward = 0;
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    attention_backward += op.kind == OpKind::kAttention && op.pass == graph::Pass::kBackward;
  }
  const std::vector<std::string> want = {
      "1 measured name matching no graph op (e.g. rank 1: fwd/mb0/L0/attn.bogus)",
      "attention.bwd.bf16.exact: 1 point from " + std::to_string(attention_backward) + " ops"};
  for (const std::string& line : want) {
    EXPECT_NE(std::find(notes.begin(), notes.end(), line), notes.end()) << line;
  }
}

// With two GPUs per node the pipeline stages sit on different nodes: sends and the tied-embedding
// all-reduce span nodes and get no table (the cost model prices them by the network).
TEST(OpPoints, CollectivesAcrossNodesAreSkipped) {
  const graph::TrainingGraph tg = small_graph(2);
  int across = 0;
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const Op& op = tg.graph[v];
    across += graph::is_communication(op.kind) && op.group_nodes > 1;
  }
  ASSERT_GT(across, 0);
  std::vector<std::string> notes;
  const auto tables = learn_op_tables(tg, measure(tg), "", &notes);
  EXPECT_EQ(find_table(tables, "send.nvlink.exact"), nullptr);
  EXPECT_NE(std::find(notes.begin(), notes.end(),
                      std::to_string(across) +
                          " measured collectives span nodes: no exact table (the cost model "
                          "prices them by the network)"),
            notes.end());
}

TEST(OpPoints, RefusesMeasurementsForAnotherRankCount) {
  const graph::TrainingGraph tg = small_graph();
  try {
    learn_op_tables(tg, Times(3), "", nullptr);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "learn_op_tables: 3 ranks of measured op times, expected one per graph rank (4)");
  }
}

spec::CalibratedTable table(const std::string& op, const std::vector<std::string>& names,
                            const std::vector<std::pair<std::vector<double>, double>>& points,
                            const std::string& provenance) {
  spec::CalibratedTable t;
  t.set_op(op);
  for (const auto& n : names) t.add_key_names(n);
  for (const auto& [keys, seconds] : points) {
    spec::CalibratedPoint* p = t.add_points();
    for (double k : keys) p->add_key(k);
    p->set_seconds(seconds);
  }
  t.set_provenance(provenance);
  return t;
}

TEST(OpPoints, MergeKeepsTheMeanOfAKeyFromTwoRuns) {
  spec::HardwareProfile profile;
  merge_exact_tables(
      &profile, {table("memory.loss.exact", {"bytes"}, {{{4096}, 2e-6}, {{1024}, 1e-6}}, "run A")});
  ASSERT_EQ(profile.calibrated_size(), 1);
  merge_exact_tables(
      &profile, {table("memory.loss.exact", {"bytes"}, {{{4096}, 4e-6}, {{8192}, 5e-6}}, "run B"),
                 table("send.nvlink.exact", {"group_size", "bytes"}, {{{2, 64}, 7e-6}}, "")});
  ASSERT_EQ(profile.calibrated_size(), 2);
  const spec::CalibratedTable& loss = profile.calibrated(0);
  ASSERT_EQ(loss.points_size(), 3);
  EXPECT_EQ(loss.points(0).key(0), 1024);
  EXPECT_EQ(loss.points(0).seconds(), 1e-6);
  EXPECT_EQ(loss.points(1).key(0), 4096);
  EXPECT_DOUBLE_EQ(loss.points(1).seconds(), 3e-6);
  EXPECT_EQ(loss.points(2).key(0), 8192);
  EXPECT_EQ(loss.provenance(), "run A; run B");
  EXPECT_EQ(profile.calibrated(1).op(), "send.nvlink.exact");

  auto refusal = [&](const spec::CalibratedTable& t) -> std::string {
    try {
      merge_exact_tables(&profile, {t});
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(refusal(table("memory.loss", {"bytes"}, {{{1}, 1e-6}}, "")),
            "merge_exact_tables: table memory.loss is not an exact table, expected a name "
            "<base>.exact");
  EXPECT_EQ(refusal(table("memory.loss.exact", {"size"}, {{{1}, 1e-6}}, "")),
            "merge_exact_tables: table memory.loss.exact: key_names (size) differ from the "
            "profile's (bytes)");
}

}  // namespace
}  // namespace mpsim::calibration
