// Tests of simulator/cost/lookup_tables.cpp through the calibrated cost model: exact tables
// (`<base>.exact`) price an op at its measured shape before any grid, fit or roofline, resolve by
// layout and pass, need no base table, and refuse malformed points naming table, point and key.
#include "simulator/cost/lookup_tables.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "simulator/cost/calibrated_cost.h"
#include "simulator/cost/cost_model.h"
#include "tests/cost/calibrated_test_tables.h"
#include "tests/cost/cost_test_hardware.h"

namespace mpsim::cost {
namespace {

using namespace mpsim::cost::calibrated_test;

// ---- exact tables ------------------------------------------------------------------------------

// An exact table (`<base>.exact`) of scattered points.
spec::CalibratedTable exact_table(std::string_view base, const std::vector<std::string>& names,
                                  const std::vector<std::pair<Keys, double>>& points) {
  spec::CalibratedTable table;
  table.set_op(exact_table_name(base));
  for (const auto& n : names) table.add_key_names(n);
  for (const auto& [keys, seconds] : points) {
    spec::CalibratedPoint* p = table.add_points();
    for (double k : keys) p->add_key(k);
    p->set_seconds(seconds);
  }
  return table;
}

spec::CalibratedTable gemm_exact(std::string_view base,
                                 const std::vector<std::pair<Keys, double>>& points) {
  return exact_table(base, {"m", "n", "k"}, points);
}

Op labelled_gemm(double m, double n, double k, std::string_view label) {
  Op op = gemm(m, n, k);
  op.label = graph::op_label_from_name(label).value_or(graph::OpLabel::kNone);
  return op;
}

TEST(CalibratedCost, ExactTableNames) {
  EXPECT_EQ(kExactTableSuffix, ".exact");
  EXPECT_EQ(exact_table_name(kGemmDgradTable), "gemm.bf16.dgrad.exact");
  EXPECT_EQ(exact_table_name(kAllReduceTable), "allreduce.nvlink.exact");
}

// A point of the exact table is the op's time, inside the grid (even at a grid point) and
// outside it; a shape one element away is the grid's (or the fit's) as without the exact table.
TEST(CalibratedCost, ExactPointsOverrideTheGridAndNearMissesFallBack) {
  spec::Hardware hw = test_hardware();
  hw.calibrated = {gemm_table()};
  const auto grid_only = make_calibrated_cost_model(hw);
  hw.calibrated.push_back(gemm_exact(
      kGemmTable,
      {{{1000, 2000, 3000}, 1.234e-3}, {{4096, 4096, 4096}, 7.5e-4}, {{16, 100000, 64}, 2.5e-5}}));
  const auto model = make_calibrated_cost_model(hw);
  EXPECT_LE(rel_err(model->op_seconds(gemm(1000, 2000, 3000)), 1.234e-3), 1e-9);
  EXPECT_LE(rel_err(model->op_seconds(gemm(4096, 4096, 4096)), 7.5e-4), 1e-9);  // a grid point
  EXPECT_LE(rel_err(model->op_seconds(gemm(16, 100000, 64)), 2.5e-5), 1e-9);    // outside the grid
  for (const Keys& x : std::vector<Keys>{
           {1000, 2000, 3001}, {999, 2000, 3000}, {4096, 4096, 2048}, {16, 100000, 65}}) {
    const Op op = gemm(x[0], x[1], x[2]);
    EXPECT_EQ(model->op_seconds(op), grid_only->op_seconds(op))
        << x[0] << " " << x[1] << " " << x[2];
  }
  // Every layout reads the default exact table when it has none of its own.
  EXPECT_LE(rel_err(model->op_seconds(labelled_gemm(1000, 2000, 3000, "mlp.fc1.wgrad")), 1.234e-3),
            1e-9);
  EXPECT_EQ(model->describe().rfind(
                "calibrated: gemm.bf16, gemm.bf16.exact (3 points), fitted curves outside their "
                "grids; ",
                0),
            0u)
      << model->describe();
}

// Exact tables resolve by layout table by table, as the grids do: a dgrad GEMM looks in
// gemm.bf16.dgrad.exact where it exists (and not also in gemm.bf16.exact), else in
// gemm.bf16.exact.
TEST(CalibratedCost, ExactGemmTablesByLayout) {
  spec::Hardware hw = test_hardware();
  hw.calibrated = {gemm_table(),
                   gemm_exact(kGemmTable, {{{1000, 2000, 3000}, 1e-3}, {{512, 512, 512}, 3e-3}}),
                   gemm_exact(kGemmDgradTable, {{{1000, 2000, 3000}, 2e-3}})};
  const auto model = make_calibrated_cost_model(hw);
  const auto grid_only = make_calibrated_cost_model([&] {
    spec::Hardware h = test_hardware();
    h.calibrated = {gemm_table()};
    return h;
  }());
  EXPECT_LE(rel_err(model->op_seconds(labelled_gemm(1000, 2000, 3000, "mlp.fc2.dgrad")), 2e-3),
            1e-9);
  EXPECT_LE(rel_err(model->op_seconds(labelled_gemm(1000, 2000, 3000, "mlp.fc2")), 1e-3), 1e-9);
  EXPECT_LE(rel_err(model->op_seconds(labelled_gemm(1000, 2000, 3000, "mlp.fc2.wgrad")), 1e-3),
            1e-9);
  const Op dgrad = labelled_gemm(512, 512, 512, "attn.proj.dgrad");
  EXPECT_EQ(model->op_seconds(dgrad), grid_only->op_seconds(dgrad));
  EXPECT_LE(rel_err(model->op_seconds(labelled_gemm(512, 512, 512, "attn.proj")), 3e-3), 1e-9);
}

// Without a base table the exact points still price their ops; every other op takes what it
// would take without the base (the roofline here, or the default table by pass).
TEST(CalibratedCost, ExactTablesWithoutTheirBase) {
  spec::Hardware hw = test_hardware();
  const auto roofline = make_roofline_cost_model(hw);
  auto norm = [](double bytes, Pass pass) {
    Op op = memory_op(OpKind::kNorm, bytes);
    op.pass = pass;
    return op;
  };
  Op allreduce = collective(OpKind::kAllReduce, 1 << 20, 2);
  allreduce.collective = 7;
  hw.calibrated = {gemm_exact(kGemmWgradTable, {{{1024, 1024, 8192}, 4e-4}}),
                   exact_table(kAttentionBackwardTable, {"batch_heads", "seq", "head_dim"},
                               {{{32, 2048, 128}, 9e-4}}),
                   exact_table(kNormBackwardTable, {"bytes"}, {{{3e6}, 6e-6}}),
                   exact_table(kOptimizerTable, {"bytes"}, {{{2e9}, 1.5e-3}}),
                   exact_table(kAllReduceTable, {"group_size", "bytes"}, {{{2, 1 << 20}, 1.1e-5}}),
                   memory_table(kNormTable, kElementwise)};
  const auto model = make_calibrated_cost_model(hw);
  EXPECT_LE(rel_err(model->op_seconds(labelled_gemm(1024, 1024, 8192, "mlp.fc1.wgrad")), 4e-4),
            1e-9);
  const Op other_layout = labelled_gemm(1024, 1024, 8192, "mlp.fc1");
  EXPECT_EQ(model->op_seconds(other_layout), roofline->op_seconds(other_layout));
  EXPECT_LE(rel_err(model->op_seconds(attention({32, 2048, 128}, Pass::kBackward)), 9e-4), 1e-9);
  const Op forward = attention({32, 2048, 128}, Pass::kForward);
  EXPECT_EQ(model->op_seconds(forward), roofline->op_seconds(forward));
  EXPECT_LE(rel_err(model->op_seconds(norm(3e6, Pass::kBackward)), 6e-6), 1e-9);
  // Forward norms and other sizes: memory.norm, the default table.
  spec::Hardware norm_only = test_hardware();
  norm_only.calibrated = {memory_table(kNormTable, kElementwise)};
  const auto by_norm_table = make_calibrated_cost_model(norm_only);
  for (const Op& op : {norm(3e6, Pass::kForward), norm(4e6, Pass::kBackward)}) {
    EXPECT_EQ(model->op_seconds(op), by_norm_table->op_seconds(op));
  }
  EXPECT_LE(rel_err(model->op_seconds(memory_op(OpKind::kOptimizer, 2e9)), 1.5e-3), 1e-9);
  EXPECT_LE(rel_err(model->op_seconds(allreduce), 1.1e-5), 1e-9);
  for (const Op& op :
       {collective(OpKind::kAllReduce, 1 << 20, 4), collective(OpKind::kAllReduce, 1 << 21, 2),
        collective(OpKind::kAllReduce, 1 << 20, 2, 2),  // across nodes
        memory_op(OpKind::kOptimizer, 2.5e9)}) {
    EXPECT_EQ(model->op_seconds(op), roofline->op_seconds(op)) << graph::to_string(op.kind);
  }
  EXPECT_EQ(model->op_seconds(collective(OpKind::kAllReduce, 1 << 20, 1)), 0);
  const std::string text = model->describe();
  EXPECT_EQ(text.rfind("calibrated: memory.norm, gemm.bf16.wgrad.exact (1 point), "
                       "attention.bwd.bf16.exact (1 point), memory.optimizer.exact (1 point), "
                       "memory.norm.bwd.exact (1 point), allreduce.nvlink.exact (1 point), "
                       "fitted curves outside their grids; ",
                       0),
            0u)
      << text;
}

// A measured collective group beside exact points: the exact point where keys match, the group's
// grid or the ring scaling elsewhere.
TEST(CalibratedCost, ExactCollectivePointsBesideTheTable) {
  spec::Hardware hw = calibrated_hardware();
  const auto base = make_calibrated_cost_model(hw);
  hw.calibrated.push_back(
      exact_table(kAllReduceTable, {"group_size", "bytes"}, {{{2, 3e6}, 2e-5}, {{8, 3e6}, 4e-5}}));
  const auto model = make_calibrated_cost_model(hw);
  EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kAllReduce, 3e6, 2)), 2e-5), 1e-9);
  EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kAllReduce, 3e6, 8)), 4e-5), 1e-9);
  for (const Op& op :
       {collective(OpKind::kAllReduce, 3e6, 4), collective(OpKind::kAllReduce, 3.5e6, 2),
        collective(OpKind::kAllGather, 3e6, 2)}) {
    EXPECT_EQ(model->op_seconds(op), base->op_seconds(op)) << graph::to_string(op.kind);
  }
}

TEST(CalibratedCost, ExactComputeTablesAreNotUsedForAnotherDtype) {
  spec::Hardware hw = test_hardware();
  hw.calibrated = {gemm_exact(kGemmTable, {{{1000, 2000, 3000}, 1e-3}}),
                   exact_table(kElementwiseTable, {"bytes"}, {{{1e6}, 2e-6}})};
  const auto model = make_calibrated_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP16);
  const auto fp16 = make_roofline_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP16);
  EXPECT_EQ(model->op_seconds(gemm(1000, 2000, 3000)), fp16->op_seconds(gemm(1000, 2000, 3000)));
  EXPECT_LE(rel_err(model->op_seconds(memory_op(OpKind::kElementwise, 1e6)), 2e-6), 1e-9);
  EXPECT_NE(
      model->describe().find("ignored tables: gemm.bf16.exact (bf16 table, model dtype fp16)"),
      std::string::npos)
      << model->describe();
  // An exact table of no known base is ignored like any unknown table.
  hw.calibrated = {exact_table("interference.gemm.bf16", {"m", "n", "k"}, {{{1, 2, 3}, 1e-6}})};
  EXPECT_NE(make_calibrated_cost_model(hw)->describe().find(
                "ignored tables: interference.gemm.bf16.exact"),
            std::string::npos);
}

TEST(CalibratedCost, MalformedExactTablesRefusedNamingTablePointAndKey) {
  spec::Hardware hw = test_hardware();
  auto refused = [&](const spec::CalibratedTable& table) {
    hw.calibrated = {table};
    return refusal([&] { make_calibrated_cost_model(hw); });
  };
  const std::string prefix = "calibrated cost model for 'h100-test': ";
  EXPECT_EQ(refused(exact_table(kGemmDgradTable, {"m", "n"}, {{{1, 2}, 1e-6}})),
            prefix +
                "table gemm.bf16.dgrad.exact: key_names (m, n) do not match, expected (m, "
                "n, k)");
  EXPECT_EQ(refused(exact_table(kSendTable, {"bytes", "group_size"}, {{{1e6, 2}, 1e-6}})),
            prefix +
                "table send.nvlink.exact: key_names (bytes, group_size) do not match, "
                "expected (group_size, bytes)");
  EXPECT_EQ(refused(gemm_exact(
                kGemmTable,
                {{{1, 2, 3}, 1e-6}, {{4, 5, 6}, 2e-6}, {{1, 2, 3}, 3e-6}, {{4, 5, 6}, 4e-6}})),
            prefix + "table gemm.bf16.exact: point 2: duplicate of point 0 (m=1, n=2, k=3)");
  EXPECT_EQ(refused(gemm_exact(kGemmTable, {{{1, 2, 3}, 1e-6}, {{4, 5, 6}, 0}})),
            prefix + "table gemm.bf16.exact: point 1: seconds = 0, expected a positive time");
  EXPECT_EQ(refused(gemm_exact(kGemmTable, {{{1, 2, 3}, -2e-6}})),
            prefix + "table gemm.bf16.exact: point 0: seconds = -2e-06, expected a positive time");
  EXPECT_EQ(refused(gemm_exact(kGemmTable, {{{1, 2, 3}, std::nan("")}})),
            prefix + "table gemm.bf16.exact: point 0: seconds = nan, expected a positive time");
  EXPECT_EQ(refused(gemm_exact(kGemmForwardTable, {{{1, 2, 3}, 1e-6}, {{1, -2, 3}, 1e-6}})),
            prefix + "table gemm.bf16.fwd.exact: point 1: key n = -2, expected a positive size");
  EXPECT_EQ(refused(exact_table(kNormForwardTable, {"bytes"}, {{{HUGE_VAL}, 1e-6}})),
            prefix +
                "table memory.norm.fwd.exact: point 0: key bytes = inf, expected a positive "
                "size");
  EXPECT_EQ(refused(exact_table(kLossTable, {"bytes"}, {{{0}, 1e-6}})),
            prefix + "table memory.loss.exact: point 0: key bytes = 0, expected a positive size");
  EXPECT_EQ(refused(gemm_exact(kGemmWgradTable, {{{1, 2}, 1e-6}})),
            prefix + "table gemm.bf16.wgrad.exact: point 0: 2 keys, expected 3 (m, n, k)");
  EXPECT_EQ(refused(exact_table(kAllGatherTable, {"group_size", "bytes"}, {{{2.5, 1e6}, 1e-6}})),
            prefix +
                "table allgather.nvlink.exact: point 0: key group_size = 2.5, expected a "
                "whole number of ranks >= 1");
  EXPECT_EQ(refused(exact_table(kAllGatherTable, {"group_size", "bytes"}, {{{2, -1}, 1e-6}})),
            prefix +
                "table allgather.nvlink.exact: point 0: key bytes = -1, expected a positive "
                "size");
  EXPECT_EQ(refused(exact_table(kAttentionForwardTable, {"batch_heads", "seq", "head_dim"}, {})),
            prefix +
                "table attention.fwd.bf16.exact: no points, expected at least one measured "
                "point");
  hw.calibrated = {gemm_exact(kGemmTable, {{{1, 2, 3}, 1e-6}}),
                   gemm_exact(kGemmTable, {{{4, 5, 6}, 1e-6}})};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            prefix + "table gemm.bf16.exact given twice, expected one table per op");
}

}  // namespace
}  // namespace mpsim::cost
