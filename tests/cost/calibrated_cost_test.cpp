// The calibrated cost model against synthetic tables built here from known closed forms: table
// values at grid points, the closed form inside where it is a power law, the fitted curve's
// prediction of the closed form outside, the roofline where no table applies, the ring scaling of
// collectives to unmeasured group sizes, and the refusals.
#include "simulator/cost/calibrated_cost.h"

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

#include "simulator/cost/cost_model.h"
#include "tests/cost/calibrated_test_tables.h"
#include "tests/cost/cost_test_hardware.h"

namespace mpsim::cost {
namespace {

using namespace mpsim::cost::calibrated_test;

// ---- compute ------------------------------------------------------------------------------------

TEST(CalibratedCost, GemmGridPointsAreTheTableValues) {
  const auto model = make_calibrated_cost_model(calibrated_hardware());
  for (double m : kGemmAxis) {
    for (double n : kGemmAxis) {
      for (double k : {256.0, 1024.0, 8192.0}) {
        const double want = gemm_closed_form({m, n, k});
        EXPECT_LE(rel_err(model->op_seconds(gemm(m, n, k)), want), 1e-12)
            << m << " " << n << " " << k;
      }
    }
  }
}

TEST(CalibratedCost, GemmPowerLawReproducedInsideTheGrid) {
  spec::Hardware hw = test_hardware();
  hw.calibrated = {gemm_table(gemm_power_law)};
  const auto model = make_calibrated_cost_model(hw);
  std::mt19937_64 rng(7);
  auto draw = [&] {  // an integer size log-uniform in [256, 8192]
    const double u = static_cast<double>(rng() >> 11) * 0x1p-53;
    return std::round(256 * std::pow(32.0, u));
  };
  for (int i = 0; i < 200; ++i) {
    const Keys x = {draw(), draw(), draw()};
    EXPECT_LE(rel_err(model->op_seconds(gemm(x[0], x[1], x[2])), gemm_power_law(x)), 1e-9)
        << x[0] << " " << x[1] << " " << x[2];
  }
}

// Outside the grid the fitted efficiency curve has the closed form's shape, so noise-free data
// give back its parameters and the closed form: within 1e-8 (the fit runs to machine precision
// here, about 1e-15; calibrated_tables_test.cpp holds the fit to 1e-6 on its parameters).
TEST(CalibratedCost, GemmOutsideTheGridFollowsTheFittedCurve) {
  const auto model = make_calibrated_cost_model(calibrated_hardware());
  for (const Keys& x : std::vector<Keys>{{16, 4096, 4096},
                                         {65536, 65536, 65536},
                                         {128, 100000, 64},
                                         {8192, 8192, 131072},
                                         {1, 1, 1}}) {
    EXPECT_LE(rel_err(model->op_seconds(gemm(x[0], x[1], x[2])), gemm_closed_form(x)), 1e-8)
        << x[0] << " " << x[1] << " " << x[2];
  }
}

TEST(CalibratedCost, AttentionForwardAndRecomputeUseFwdBackwardUsesBwd) {
  const auto model = make_calibrated_cost_model(calibrated_hardware());
  for (const Keys& x : std::vector<Keys>{{8, 512, 32}, {32, 2048, 64}, {64, 4096, 128}}) {
    const double fwd = attention_forward_closed_form(x);
    EXPECT_LE(rel_err(model->op_seconds(attention(x, Pass::kForward)), fwd), 1e-12);
    EXPECT_LE(rel_err(model->op_seconds(attention(x, Pass::kRecompute)), fwd), 1e-12);
    EXPECT_LE(rel_err(model->op_seconds(attention(x, Pass::kBackward)),
                      attention_backward_closed_form(x)),
              1e-12);
  }
  // Outside: the fitted curves (same 1e-8 as for GEMMs).
  for (const Keys& x : std::vector<Keys>{{256, 2048, 128}, {16, 32768, 64}, {2, 128, 256}}) {
    EXPECT_LE(
        rel_err(model->op_seconds(attention(x, Pass::kForward)), attention_forward_closed_form(x)),
        1e-8);
    EXPECT_LE(rel_err(model->op_seconds(attention(x, Pass::kBackward)),
                      attention_backward_closed_form(x)),
              1e-8);
  }
}

// The flash core is priced by the flash tables, the unfused core by the unfused ones; without
// flash tables the flash core takes the roofline at the flash efficiency.
TEST(CalibratedCost, FlashCoreUsesTheFlashTablesOnly) {
  spec::Hardware hw = calibrated_hardware();
  const auto unfused_only = make_calibrated_cost_model(hw);
  hw.calibrated.push_back(flash_table(false));
  hw.calibrated.push_back(flash_table(true));
  const auto model = make_calibrated_cost_model(hw);
  const auto roofline = make_roofline_cost_model(hw);
  for (const Keys& x : std::vector<Keys>{{8, 512, 32}, {32, 2048, 64}, {64, 4096, 128}}) {
    // The group keys the fused core's tables only (2 lies between the grid's 1 and 4).
    for (const int group : {1, 2, 4, 8}) {
      Op fwd = attention(x, Pass::kForward), bwd = attention(x, Pass::kBackward);
      fwd.attn_group = bwd.attn_group = static_cast<uint8_t>(group);
      EXPECT_LE(rel_err(model->op_seconds(fwd), attention_forward_closed_form(x)), 1e-12);
      fwd.label = bwd.label = graph::OpLabel::kAttnFlash;
      Keys keyed = x;
      keyed.push_back(group);
      EXPECT_LE(rel_err(model->op_seconds(fwd), flash_forward_closed_form(keyed)), 1e-12);
      EXPECT_LE(rel_err(model->op_seconds(bwd), flash_backward_closed_form(keyed)), 1e-12);
      EXPECT_EQ(unfused_only->op_seconds(fwd), roofline->op_seconds(fwd));
      EXPECT_EQ(unfused_only->op_seconds(bwd), roofline->op_seconds(bwd));
    }
  }
  Op op = attention({8, 512, 32}, Pass::kRecompute);
  op.label = graph::OpLabel::kAttnFlash;
  EXPECT_EQ(op_table_name(op), kFlashForwardTable);
  op.pass = Pass::kBackward;
  EXPECT_EQ(op_table_name(op), kFlashBackwardTable);
}

// ---- memory-bound
// ---------------------------------------------------------------------------------

TEST(CalibratedCost, MemoryTableInsideAndAlphaBetaOutside) {
  const auto model = make_calibrated_cost_model(calibrated_hardware());
  for (double s : kMemoryAxis) {
    EXPECT_LE(rel_err(model->op_seconds(memory_op(OpKind::kElementwise, s)), kElementwise(s)),
              1e-12);
  }
  // Outside the measured sizes the α-β fit is exact on α-β data (to 1e-9).
  for (double s : {1.0, 256.0, 4.0 * (1 << 30), 64.0 * (1 << 30)}) {
    EXPECT_LE(rel_err(model->op_seconds(memory_op(OpKind::kElementwise, s)), kElementwise(s)), 1e-9)
        << s;
  }
}

TEST(CalibratedCost, MemoryPowerLawReproducedInsideTheGrid) {
  const auto power_law = [](double s) { return 1e-9 * std::pow(s, 0.9); };
  spec::Hardware hw = test_hardware();
  hw.calibrated = {memory_table(kNormTable, power_law)};
  const auto model = make_calibrated_cost_model(hw);
  for (double s = 1500; s < 1e9; s *= 3.7) {
    EXPECT_LE(rel_err(model->op_seconds(memory_op(OpKind::kNorm, s)), power_law(s)), 1e-9) << s;
  }
}

// ---- collectives
// ----------------------------------------------------------------------------------

TEST(CalibratedCost, MeasuredGroupInsideAndOutsideItsSizes) {
  const auto model = make_calibrated_cost_model(calibrated_hardware());
  for (double s : kMessageAxis) {
    EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kAllReduce, s, 2)), kAllReduce2(s)),
              1e-12);
    EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kAllGather, s, 2)), kAllGather2(s)),
              1e-12);
  }
  for (double s : {1.0, 512.0, 4.0 * (1 << 30)}) {
    EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kAllReduce, s, 2)), kAllReduce2(s)),
              1e-9)
        << s;
  }
  // Between sizes α + S/β is no power law; log-log interpolation on sizes a factor 2 apart stays
  // within 2 % of it (the worst is at the knee, S ≈ α·β).
  for (double s = 1500; s < 1e9; s *= 1.37) {
    EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kAllReduce, s, 2)), kAllReduce2(s)),
              0.02)
        << s;
  }
}

// Ring scaling, written out independently of the model: a ring collective on n ranks takes
// steps(n) steps, each rank sending share(n)·S in all, so from the measured group m's
// t_m(S) = α + S/β:  t_n(S) = steps(n)/steps(m)·α + share(n)/share(m)·S/β.
//   all-reduce: steps = 2(n−1), share = 2(n−1)/n;  all-gather, reduce-scatter: n−1, (n−1)/n.
TEST(CalibratedCost, UnmeasuredGroupsFollowTheRingFormula) {
  const auto model = make_calibrated_cost_model(calibrated_hardware());
  for (int n : {3, 4, 8}) {
    for (double s : {4096.0, 1048576.0, 256e6, 4e9}) {
      const double ar = 2.0 * (n - 1) / 2 * kAllReduce2.alpha +
                        (2.0 * (n - 1) / n) / (2.0 * 1 / 2) * s / kAllReduce2.beta;
      EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kAllReduce, s, n)), ar), 1e-9)
          << n << " " << s;
      const double ag =
          (n - 1.0) / 1 * kAllGather2.alpha + ((n - 1.0) / n) / (1.0 / 2) * s / kAllGather2.beta;
      EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kAllGather, s, n)), ag), 1e-9)
          << n << " " << s;
    }
  }
  // n = 4 and 8 by hand: 3α + 1.5·S/β and 7α + 1.75·S/β.
  const double s = 64e6;
  EXPECT_NEAR(model->op_seconds(collective(OpKind::kAllReduce, s, 4)),
              3 * kAllReduce2.alpha + 1.5 * s / kAllReduce2.beta, 1e-12);
  EXPECT_NEAR(model->op_seconds(collective(OpKind::kAllReduce, s, 8)),
              7 * kAllReduce2.alpha + 1.75 * s / kAllReduce2.beta, 1e-12);
}

TEST(CalibratedCost, GroupsNeedNotShareSizesAndTheLargestIsTheScalingReference) {
  const AlphaBetaForm g8{12e-6, 380e9};
  spec::Hardware hw = test_hardware();
  hw.calibrated = {collective_table(
      kReduceScatterTable,
      {{2, kAllGather2, geometric(1024, 1 << 20, 4)}, {8, g8, geometric(4096, 1 << 30, 2)}})};
  const auto model = make_calibrated_cost_model(hw);
  EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kReduceScatter, 65536, 8)), g8(65536)),
            1e-12);
  EXPECT_LE(
      rel_err(model->op_seconds(collective(OpKind::kReduceScatter, 4096, 2)), kAllGather2(4096)),
      1e-12);
  // Group 4 scales from group 8: steps 3/7, share (3/4)/(7/8).
  const double s = 1e8;
  const double want = 3.0 / 7 * g8.alpha + (3.0 / 4) / (7.0 / 8) * s / g8.beta;
  EXPECT_LE(rel_err(model->op_seconds(collective(OpKind::kReduceScatter, s, 4)), want), 1e-9);
}

TEST(CalibratedCost, NothingMovesNothingCosts) {
  const auto model = make_calibrated_cost_model(calibrated_hardware());
  EXPECT_EQ(model->op_seconds(collective(OpKind::kAllReduce, 1e6, 1)), 0);  // group 1 measured
  EXPECT_EQ(model->op_seconds(collective(OpKind::kAllGather, 1e6, 1)), 0);  // group 1 not
  EXPECT_EQ(model->op_seconds(collective(OpKind::kAllReduce, 0, 4)), 0);
}

TEST(CalibratedCost, AcrossNodesIsTheRooflineNetworkPath) {
  const spec::Hardware hw = calibrated_hardware();
  const auto model = make_calibrated_cost_model(hw);
  const auto roofline = make_roofline_cost_model(hw);
  for (OpKind kind : {OpKind::kAllReduce, OpKind::kAllGather, OpKind::kSend}) {
    for (int nodes : {2, 4}) {
      const Op op = collective(kind, 256e6, 16, nodes);
      EXPECT_EQ(model->op_seconds(op), roofline->op_seconds(op));
      EXPECT_GT(model->op_seconds(op), 0);
    }
  }
}

// ---- fallbacks --------------------------------------------------------------------------------

TEST(CalibratedCost, WithoutTablesEveryOpIsTheRoofline) {
  const spec::Hardware hw = test_hardware();
  for (CollectiveAlgorithm algorithm : {CollectiveAlgorithm::kAuto, CollectiveAlgorithm::kRing}) {
    const auto model = make_calibrated_cost_model(hw, algorithm);
    const auto roofline = make_roofline_cost_model(hw, algorithm);
    for (const Op& op : every_kind_of_op()) {
      EXPECT_EQ(model->op_seconds(op), roofline->op_seconds(op)) << graph::to_string(op.kind);
    }
  }
}

TEST(CalibratedCost, OpsWithoutATableAreTheRoofline) {
  spec::Hardware hw = test_hardware();
  hw.calibrated = {gemm_table()};
  const auto model = make_calibrated_cost_model(hw);
  const auto roofline = make_roofline_cost_model(hw);
  for (const Op& op : every_kind_of_op()) {
    if (op.kind == OpKind::kGemm) continue;
    EXPECT_EQ(model->op_seconds(op), roofline->op_seconds(op)) << graph::to_string(op.kind);
  }
  // A GEMM without a shape cannot be looked up.
  Op shapeless = gemm(1024, 1024, 1024);
  shapeless.gemm = {};
  EXPECT_EQ(model->op_seconds(shapeless), roofline->op_seconds(shapeless));
  // A collective table with only group 1 cannot be scaled.
  hw.calibrated = {collective_table(kAllReduceTable, {{1, kAllReduce1, kMessageAxis}})};
  const auto only_one = make_calibrated_cost_model(hw);
  const Op op = collective(OpKind::kAllReduce, 1e6, 4);
  EXPECT_EQ(only_one->op_seconds(op), roofline->op_seconds(op));
  EXPECT_NE(only_one->describe().find("other groups: roofline"), std::string::npos);
}

TEST(CalibratedCost, Bf16TablesAreNotUsedForAnotherDtype) {
  const spec::Hardware hw = calibrated_hardware();
  const auto model = make_calibrated_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP16);
  const auto roofline = make_roofline_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP16);
  const Op op = gemm(4096, 4096, 4096);
  EXPECT_EQ(model->op_seconds(op), roofline->op_seconds(op));
  EXPECT_NE(model->describe().find("ignored tables: gemm.bf16 (bf16 table, model dtype fp16)"),
            std::string::npos)
      << model->describe();
  // Bytes tables still apply.
  EXPECT_LE(rel_err(model->op_seconds(memory_op(OpKind::kElementwise, 4096)), kElementwise(4096)),
            1e-12);
}

TEST(CalibratedCost, DescribeNamesTablesUsedAndFallbacks) {
  spec::Hardware hw = calibrated_hardware();
  spec::CalibratedTable future;
  future.set_op("overlap.interference");
  hw.calibrated.push_back(future);
  const std::string text = make_calibrated_cost_model(hw)->describe();
  EXPECT_EQ(text,
            "calibrated: gemm.bf16, attention.fwd.bf16, attention.bwd.bf16, memory.elementwise, "
            "allreduce.nvlink (group_size 1, 2; other groups ring-scaled from 2), "
            "allgather.nvlink (group_size 2; other groups ring-scaled from 2), fitted curves "
            "outside their grids; roofline (bf16) on H100 SXM [h100-test], collectives: auto, "
            "for collectives across nodes and ops without a table (attention.flash.fwd.bf16, "
            "attention.flash.bwd.bf16, memory.norm, memory.loss, memory.optimizer, "
            "reducescatter.nvlink, send.nvlink); ignored tables: "
            "overlap.interference");
}

// Per-layout GEMM tables: a GEMM labelled "*.dgrad" / "*.wgrad" is priced by gemm.bf16.dgrad /
// gemm.bf16.wgrad, any other by gemm.bf16.fwd, each falling back to gemm.bf16 where absent. The
// tables here are the closed form scaled by 1 (default), 0.5 (fwd), 2 (dgrad), 3 (wgrad), so the
// table that answered is read off the ratio.
// The GEMM grid table of gemm_closed_form times `factor`, named `op`.
spec::CalibratedTable scaled(std::string_view op, double factor) {
  spec::CalibratedTable t =
      gemm_table([factor](const Keys& x) { return factor * gemm_closed_form(x); });
  t.set_op(std::string(op));
  return t;
}

TEST(CalibratedCost, GemmLayoutTablesByLabel) {
  auto labelled = [](std::string_view label) {
    Op op = gemm(2048, 1024, 4096);
    op.label = graph::op_label_from_name(label).value_or(graph::OpLabel::kNone);
    return op;
  };
  const double base = gemm_closed_form({2048, 1024, 4096});
  spec::Hardware hw = test_hardware();
  hw.calibrated = {scaled(kGemmTable, 1), scaled(kGemmDgradTable, 2), scaled(kGemmWgradTable, 3)};
  auto model = make_calibrated_cost_model(hw);
  EXPECT_LE(rel_err(model->op_seconds(labelled("mlp.fc1")), base), 1e-12);
  EXPECT_LE(rel_err(model->op_seconds(labelled("mlp.fc1.dgrad")), 2 * base), 1e-12);
  EXPECT_LE(rel_err(model->op_seconds(labelled("attn.qkv.wgrad")), 3 * base), 1e-12);
  EXPECT_LE(rel_err(model->op_seconds(labelled("logits.dgrad")), 2 * base), 1e-12);
  EXPECT_LE(rel_err(model->op_seconds(labelled("")), base), 1e-12);
  // A label that merely contains the word is no gradient GEMM.
  EXPECT_LE(rel_err(model->op_seconds(labelled("dgrad.fc")), base), 1e-12);

  hw.calibrated.push_back(scaled(kGemmForwardTable, 0.5));
  model = make_calibrated_cost_model(hw);
  EXPECT_LE(rel_err(model->op_seconds(labelled("mlp.fc2")), 0.5 * base), 1e-12);
  EXPECT_LE(rel_err(model->op_seconds(labelled("mlp.fc2.wgrad")), 3 * base), 1e-12);
  EXPECT_EQ(model->describe().rfind(
                "calibrated: gemm.bf16, gemm.bf16.fwd, gemm.bf16.dgrad, gemm.bf16.wgrad, ", 0),
            0u)
      << model->describe();

  // Without the default, a layout without its table takes the roofline.
  hw.calibrated = {scaled(kGemmDgradTable, 2)};
  model = make_calibrated_cost_model(hw);
  const auto roofline = make_roofline_cost_model(hw);
  EXPECT_LE(rel_err(model->op_seconds(labelled("mlp.fc1.dgrad")), 2 * base), 1e-12);
  EXPECT_EQ(model->op_seconds(labelled("mlp.fc1")), roofline->op_seconds(labelled("mlp.fc1")));
  EXPECT_EQ(model->op_seconds(labelled("mlp.fc1.wgrad")),
            roofline->op_seconds(labelled("mlp.fc1.wgrad")));

  // Outside the grid each layout's own fitted curve answers (the closed form, scaled).
  hw.calibrated = {scaled(kGemmTable, 1), scaled(kGemmWgradTable, 3)};
  model = make_calibrated_cost_model(hw);
  Op outside = gemm(16, 100000, 64);
  outside.label = graph::OpLabel::kMlpFc1Wgrad;
  EXPECT_LE(rel_err(model->op_seconds(outside), 3 * gemm_closed_form({16, 100000, 64})), 1e-8);

  // Another dtype: none of the bf16 GEMM tables is used.
  hw.calibrated = {scaled(kGemmTable, 1), scaled(kGemmDgradTable, 2)};
  model = make_calibrated_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP16);
  const auto fp16 = make_roofline_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP16);
  EXPECT_EQ(model->op_seconds(labelled("mlp.fc1.dgrad")),
            fp16->op_seconds(labelled("mlp.fc1.dgrad")));
  EXPECT_NE(model->describe().find("gemm.bf16.dgrad (bf16 table, model dtype fp16)"),
            std::string::npos)
      << model->describe();
}

// The FP8 recipe's GEMMs (Op::fp8) read the gemm.fp8 tables by layout, never the bf16 ones;
// without an FP8 table of its layout such a GEMM is the roofline at the FP8 peak. The fitted
// curve outside the grid is the FP8 table's own.
TEST(CalibratedCost, Fp8GemmsReadTheFp8TablesOnly) {
  auto labelled = [](graph::OpLabel label, bool fp8) {
    Op op = gemm(2048, 1024, 4096);
    op.label = label;
    op.fp8 = fp8;
    return op;
  };
  const double base = gemm_closed_form({2048, 1024, 4096});
  spec::Hardware hw = test_hardware();
  ASSERT_GT(hw.peak_fp8_flops, 0);
  hw.calibrated = {scaled(kGemmTable, 1), scaled(kGemmFp8ForwardTable, 0.5),
                   scaled(kGemmFp8WgradTable, 0.7)};
  auto model = make_calibrated_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP8);
  const auto roofline = make_roofline_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP8);
  EXPECT_LE(rel_err(model->op_seconds(labelled(graph::OpLabel::kMlpFc1, true)), 0.5 * base), 1e-12);
  EXPECT_LE(rel_err(model->op_seconds(labelled(graph::OpLabel::kMlpFc1Wgrad, true)), 0.7 * base),
            1e-12);
  // No FP8 dgrad table: the FP8 roofline, not the bf16 table.
  const Op dgrad = labelled(graph::OpLabel::kMlpFc1Dgrad, true);
  EXPECT_EQ(model->op_seconds(dgrad), roofline->op_seconds(dgrad));
  // The bf16 GEMMs (the LM head) keep the bf16 table.
  EXPECT_LE(rel_err(model->op_seconds(labelled(graph::OpLabel::kLogits, false)), base), 1e-12);
  EXPECT_EQ(model->describe().find("FP8 GEMMs: the roofline"), std::string::npos)
      << model->describe();
  EXPECT_EQ(op_table_name(labelled(graph::OpLabel::kAttnQkvDgrad, true)), kGemmFp8DgradTable);
  // Outside the grid: the FP8 table's fitted curve (the closed form, scaled, at the FP8 peak's
  // efficiency), exact on these closed-form data to 1e-8.
  Op outside = labelled(graph::OpLabel::kMlpFc1, true);
  outside.gemm = {16, 100000, 64};
  outside.flops = 2.0 * 16 * 100000 * 64;
  EXPECT_LE(rel_err(model->op_seconds(outside), 0.5 * gemm_closed_form({16, 100000, 64})), 1e-8);
}

// The FP8 recipe's casts read memory.fp8_cast where measured, else the element-wise table; other
// element-wise ops never read it.
TEST(CalibratedCost, Fp8CastsReadTheirTableElseTheElementwiseOne) {
  const AlphaBetaForm cast{4e-6, 1.5e12};
  spec::Hardware hw = calibrated_hardware();
  const auto without = make_calibrated_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP8);
  hw.calibrated.push_back(memory_table(kFp8CastTable, cast));
  const auto with = make_calibrated_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP8);
  for (const graph::OpLabel label : {graph::OpLabel::kAttnQkvCast, graph::OpLabel::kMlpFc2Cast,
                                     graph::OpLabel::kFp8WeightCast}) {
    Op op = memory_op(OpKind::kElementwise, 1 << 24);
    op.label = label;
    EXPECT_LE(rel_err(with->op_seconds(op), cast(1 << 24)), 1e-12) << graph::label_name(label);
    EXPECT_LE(rel_err(without->op_seconds(op), kElementwise(1 << 24)), 1e-12);
    EXPECT_EQ(op_table_name(op), kFp8CastTable);
  }
  Op act = memory_op(OpKind::kElementwise, 1 << 24);
  act.label = graph::OpLabel::kMlpAct;
  EXPECT_LE(rel_err(with->op_seconds(act), kElementwise(1 << 24)), 1e-12);
}

TEST(CalibratedCost, GemmLayoutTableNames) {
  EXPECT_EQ(gemm_layout_table(graph::OpLabel::kMlpFc1), "gemm.bf16.fwd");
  EXPECT_EQ(gemm_layout_table(graph::OpLabel::kMlpFc1Dgrad), "gemm.bf16.dgrad");
  EXPECT_EQ(gemm_layout_table(graph::OpLabel::kLogitsWgrad), "gemm.bf16.wgrad");
  EXPECT_EQ(gemm_layout_table(graph::OpLabel::kLogits), "gemm.bf16.fwd");
}

// The first table of each op's chain: GEMMs by layout, norms by pass, the rest by kind.
TEST(CalibratedCost, OpTableNames) {
  Op fc1 = gemm(8, 8, 8);
  fc1.label = graph::OpLabel::kMlpFc1;
  EXPECT_EQ(op_table_name(fc1), kGemmForwardTable);
  fc1.label = graph::OpLabel::kMlpFc1Dgrad;
  EXPECT_EQ(op_table_name(fc1), kGemmDgradTable);
  fc1.label = graph::OpLabel::kMlpFc1Wgrad;
  EXPECT_EQ(op_table_name(fc1), kGemmWgradTable);
  Op norm = memory_op(OpKind::kNorm, 1024);
  for (Pass pass : {Pass::kForward, Pass::kRecompute}) {
    norm.pass = pass;
    EXPECT_EQ(op_table_name(norm), kNormForwardTable);
  }
  norm.pass = Pass::kBackward;
  EXPECT_EQ(op_table_name(norm), kNormBackwardTable);
  EXPECT_EQ(op_table_name(attention({8, 1024, 128}, Pass::kBackward)), kAttentionBackwardTable);
  EXPECT_EQ(op_table_name(attention({8, 1024, 128}, Pass::kRecompute)), kAttentionForwardTable);
  for (OpKind kind : {OpKind::kElementwise, OpKind::kLoss, OpKind::kOptimizer}) {
    EXPECT_EQ(op_table_name(memory_op(kind, 1024)), calibrated_table_name(kind, Pass::kForward));
  }
  for (OpKind kind :
       {OpKind::kAllReduce, OpKind::kAllGather, OpKind::kReduceScatter, OpKind::kSend}) {
    EXPECT_EQ(op_table_name(collective(kind, 1024, 2)),
              calibrated_table_name(kind, Pass::kForward));
  }
  Op step;
  step.kind = OpKind::kStepBlock;
  EXPECT_EQ(op_table_name(step), "");
}

// Norms by pass: memory.norm.fwd for forward and recompute, memory.norm.bwd for backward, each
// falling back to memory.norm.
TEST(CalibratedCost, NormTablesByPass) {
  const AlphaBetaForm any{4e-6, 2e12}, forward{3e-6, 3e12}, backward{5e-6, 1.5e12};
  auto norm = [](double bytes, Pass pass) {
    Op op = memory_op(OpKind::kNorm, bytes);
    op.pass = pass;
    return op;
  };
  spec::Hardware hw = test_hardware();
  hw.calibrated = {memory_table(kNormTable, any), memory_table(kNormForwardTable, forward),
                   memory_table(kNormBackwardTable, backward)};
  auto model = make_calibrated_cost_model(hw);
  // Grid points (exact) and a size outside the grid (the α-β fit, exact on α-β data).
  for (double s : {4096.0, 4194304.0, 268435456.0, 4.0 * (1 << 30)}) {
    EXPECT_LE(rel_err(model->op_seconds(norm(s, Pass::kForward)), forward(s)), 1e-9) << s;
    EXPECT_LE(rel_err(model->op_seconds(norm(s, Pass::kRecompute)), forward(s)), 1e-9) << s;
    EXPECT_LE(rel_err(model->op_seconds(norm(s, Pass::kBackward)), backward(s)), 1e-9) << s;
  }
  // Element-wise ops are not norms.
  EXPECT_EQ(model->op_seconds(memory_op(OpKind::kElementwise, 1e6)),
            make_roofline_cost_model(hw)->op_seconds(memory_op(OpKind::kElementwise, 1e6)));

  hw.calibrated = {memory_table(kNormTable, any), memory_table(kNormBackwardTable, backward)};
  model = make_calibrated_cost_model(hw);
  EXPECT_LE(rel_err(model->op_seconds(norm(4194304, Pass::kForward)), any(4194304)), 1e-9);
  EXPECT_LE(rel_err(model->op_seconds(norm(4194304, Pass::kBackward)), backward(4194304)), 1e-9);
  EXPECT_EQ(model->describe().rfind("calibrated: memory.norm, memory.norm.bwd, ", 0), 0u)
      << model->describe();

  spec::CalibratedTable bad = memory_table(kNormForwardTable, forward);
  bad.set_key_names(0, "size");
  hw.calibrated = {bad};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table memory.norm.fwd: key_names (size) do "
            "not match, expected (bytes)");
}

TEST(CalibratedCost, MakeCostModelPicksByTables) {
  EXPECT_EQ(make_cost_model(test_hardware())->describe(),
            make_roofline_cost_model(test_hardware())->describe());
  EXPECT_EQ(make_cost_model(calibrated_hardware())->describe().rfind("calibrated: gemm.bf16", 0),
            0u);
}

TEST(CalibratedCost, TableNamesByOpKindAndPass) {
  EXPECT_EQ(calibrated_table_name(OpKind::kGemm, Pass::kBackward), "gemm.bf16");
  EXPECT_EQ(calibrated_table_name(OpKind::kAttention, Pass::kForward), "attention.fwd.bf16");
  EXPECT_EQ(calibrated_table_name(OpKind::kAttention, Pass::kRecompute), "attention.fwd.bf16");
  EXPECT_EQ(calibrated_table_name(OpKind::kAttention, Pass::kBackward), "attention.bwd.bf16");
  EXPECT_EQ(calibrated_table_name(OpKind::kOptimizer, Pass::kStep), "memory.optimizer");
  EXPECT_EQ(calibrated_table_name(OpKind::kReduceScatter, Pass::kStep), "reducescatter.nvlink");
  EXPECT_EQ(calibrated_table_name(OpKind::kStepBlock, Pass::kForward), "");
}

TEST(CalibratedCost, Deterministic) {
  const spec::Hardware hw = calibrated_hardware();
  const auto a = make_calibrated_cost_model(hw);
  const auto b = make_calibrated_cost_model(hw);
  EXPECT_EQ(a->describe(), b->describe());
  for (const Op& op : every_kind_of_op()) {
    const double first = a->op_seconds(op);
    EXPECT_EQ(first, b->op_seconds(op));
    EXPECT_EQ(first, a->op_seconds(op));
    EXPECT_GE(first, 0);
  }
}

// ---- refusals ---------------------------------------------------------------------------------

TEST(CalibratedCost, WrongKeyNamesRefusedNamingTableAndExpectedKeys) {
  spec::Hardware hw = test_hardware();
  hw.calibrated = {grid_table(kGemmTable, {"m", "n"}, {kGemmAxis, kGemmAxis},
                              [](const Keys& x) { return 1e-9 * x[0] * x[1]; })};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table gemm.bf16: key_names (m, n) do not "
            "match, expected (m, n, k)");

  hw.calibrated = {grid_table(kAttentionBackwardTable, {"bh", "s", "d"},
                              {{8, 16}, {512, 1024}, {64, 128}},
                              [](const Keys& x) { return 1e-12 * x[0] * x[1] * x[2]; })};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table attention.bwd.bf16: key_names (bh, s, "
            "d) do not match, expected (batch_heads, seq, head_dim)");

  spec::CalibratedTable swapped =
      collective_table(kAllReduceTable, {{2, kAllReduce2, kMessageAxis}});
  swapped.set_key_names(0, "bytes");
  swapped.set_key_names(1, "group_size");
  hw.calibrated = {swapped};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table allreduce.nvlink: key_names (bytes, "
            "group_size) do not match, expected (group_size, bytes)");

  hw.calibrated = {grid_table(kLossTable, {"size"}, {kMemoryAxis},
                              [](const Keys& x) { return 1e-6 + x[0] / 1e12; })};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table memory.loss: key_names (size) do not "
            "match, expected (bytes)");
}

TEST(CalibratedCost, MalformedTablesRefusedWithTheTableName) {
  spec::Hardware hw = test_hardware();
  spec::CalibratedTable gemm = gemm_table();
  gemm.mutable_points()->RemoveLast();  // m=8192, n=8192, k=8192
  hw.calibrated = {gemm};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table gemm.bf16: grid incomplete: m=8192, "
            "n=8192, k=8192 missing");

  // A group with a single size cannot be interpolated.
  hw.calibrated = {collective_table(kAllReduceTable,
                                    {{2, kAllReduce2, kMessageAxis}, {4, kAllReduce2, {1 << 20}}})};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table allreduce.nvlink (group_size 4): key "
            "bytes has a single value (1048576), expected at least 2 distinct values to "
            "interpolate along it");

  spec::CalibratedTable fractional = collective_table(kSendTable, {{2, kAllReduce2, kMessageAxis}});
  fractional.mutable_points(3)->set_key(0, 2.5);
  hw.calibrated = {fractional};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table send.nvlink: point 3: key group_size = "
            "2.5, expected a whole number of ranks >= 1");

  spec::CalibratedTable short_point =
      collective_table(kSendTable, {{2, kAllReduce2, kMessageAxis}});
  short_point.mutable_points(0)->mutable_key()->RemoveLast();
  hw.calibrated = {short_point};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table send.nvlink: point 0: 1 keys, expected "
            "2 (group_size, bytes)");

  // Times that shrink with size cannot be fitted by α-β.
  hw.calibrated = {memory_table(kNormTable, [](double s) { return 1e-3 - s * 1e-13; })};
  const std::string message = refusal([&] { make_calibrated_cost_model(hw); });
  EXPECT_EQ(message.rfind("calibrated cost model for 'h100-test': table memory.norm: alpha-beta "
                          "fit: time does not grow with size",
                          0),
            0u)
      << message;

  hw.calibrated = {gemm_table(), gemm_table()};
  EXPECT_EQ(refusal([&] { make_calibrated_cost_model(hw); }),
            "calibrated cost model for 'h100-test': table gemm.bf16 given twice, expected one "
            "table per op");
}

}  // namespace
}  // namespace mpsim::cost
