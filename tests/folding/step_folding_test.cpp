// Folding pipeline steps (folding::StepFolding) must not change the simulated iteration: the
// folded graph gives the same iteration time as the graph of every op, for every schedule,
// recompute mode, SP, ZeRO stage and DP overlap setting.
#include "simulator/folding/step_folding.h"

#include <gtest/gtest.h>

#include "simulator/cost/cost_model.h"
#include "simulator/engine/engine.h"
#include "tests/test_models.h"

namespace mpsim::folding {
namespace {

using graph::Op;

// Depends on every field the graph fills, and makes communication slow enough to matter.
double synthetic_seconds(const Op& op) {
  if (op.kind == graph::OpKind::kStepBlock) return op.duration_s;
  if (graph::is_communication(op.kind))
    return op.group_size > 1 ? 3e-6 * op.group_nodes + op.bytes * 2e-11 : 0;
  return 1e-6 + op.flops * 1e-15 + op.bytes * 1e-12;
}

// GEMMs and attention slow down by `interference` beside communication.
class SyntheticCost final : public cost::CostModel {
 public:
  explicit SyntheticCost(double interference = 0) : interference_(interference) {}
  double op_seconds(const Op& op) const override { return synthetic_seconds(op); }
  double comm_interference(const Op& op) const override {
    const bool compute_bound =
        op.kind == graph::OpKind::kGemm || op.kind == graph::OpKind::kAttention;
    return compute_bound ? interference_ : 0;
  }
  std::string describe() const override { return "synthetic"; }

 private:
  double interference_;
};

double makespan(const spec::ModelSpec& model, const spec::ParallelConfig& c, bool fold,
                size_t* ops = nullptr, double interference = 0) {
  const SyntheticCost cost(interference);
  folding::StepFolding folding(cost);
  graph::GraphOptions options{
      .all_ranks = false, .gpus_per_node = 8, .fold = fold ? &folding : nullptr};
  graph::TrainingGraph tg = graph::build_training_graph(model, c, options);
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    graph::Op& op = tg.graph[v];
    op.duration_s = synthetic_seconds(op);
    if (op.kind != graph::OpKind::kStepBlock) op.comm_interference = cost.comm_interference(op);
  }
  if (ops) *ops = boost::num_vertices(tg.graph);
  return engine::run_engine(tg).makespan_s;
}

struct Case {
  int tp, pp, dp, mbs, gbs;
  spec::Schedule schedule;
  int vpp;
  bool sp;
  spec::Recompute recompute;
  int zero;
  bool overlap;
};

class StepFolding : public ::testing::TestWithParam<Case> {};

TEST_P(StepFolding, SameIterationTimeAsEveryOp) {
  const Case& k = GetParam();
  spec::ParallelConfig c = testing::config(k.tp, k.pp, k.dp, k.mbs, k.gbs, k.schedule, k.vpp);
  c.set_sequence_parallel(k.sp);
  c.set_recompute(k.recompute);
  c.set_zero_stage(k.zero);
  c.set_overlap_dp_comm(k.overlap);
  c.set_dp_bucket_params(3'000'000);
  for (const spec::ModelSpec& model :
       {testing::gpt(8, 1024, 16, 512, 1000), testing::llama(8, 1024, 2816, 16, 4, 512, 32000)}) {
    size_t detailed_ops = 0, folded_ops = 0;
    const double detailed = makespan(model, c, false, &detailed_ops);
    const double folded = makespan(model, c, true, &folded_ops);
    EXPECT_NEAR(folded, detailed, 1e-12 * detailed);
    if (k.zero != 3) {
      EXPECT_LT(folded_ops, detailed_ops);
    }
    // With interference a folded step slows down uniformly where its own ops would slow down
    // where they overlap the communication: an approximation, within 1 % here.
    const double f = 0.3;
    const double slowed = makespan(model, c, false, nullptr, f);
    EXPECT_GE(slowed, detailed);
    EXPECT_NEAR(makespan(model, c, true, nullptr, f), slowed, 0.01 * slowed);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, StepFolding,
    ::testing::Values(
        Case{1, 1, 1, 1, 4, spec::ONE_F_ONE_B, 1, false, spec::RECOMPUTE_NONE, 0, true},
        Case{2, 4, 1, 1, 16, spec::ONE_F_ONE_B, 1, false, spec::RECOMPUTE_NONE, 0, true},
        Case{2, 4, 2, 2, 32, spec::GPIPE, 1, true, spec::RECOMPUTE_SELECTIVE, 0, true},
        Case{4, 2, 2, 1, 16, spec::INTERLEAVED_1F1B, 2, true, spec::RECOMPUTE_FULL, 1, true},
        Case{2, 2, 4, 1, 32, spec::ONE_F_ONE_B, 1, false, spec::RECOMPUTE_NONE, 0, false},
        Case{1, 4, 2, 1, 16, spec::INTERLEAVED_1F1B, 2, false, spec::RECOMPUTE_NONE, 1, true},
        Case{2, 1, 4, 1, 16, spec::ONE_F_ONE_B, 1, true, spec::RECOMPUTE_NONE, 2, true},
        Case{2, 1, 4, 1, 16, spec::ONE_F_ONE_B, 1, false, spec::RECOMPUTE_FULL, 3, true}));

}  // namespace
}  // namespace mpsim::folding
