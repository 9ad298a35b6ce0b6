#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "simulator/cost/collective_cost.h"
#include "simulator/cost/cost_model.h"
#include "tests/cost/cost_test_hardware.h"

namespace mpsim::cost {
namespace {

using graph::Op;
using graph::OpKind;

spec::Hardware test_hardware() { return testing::cost_test_hardware(); }

Op gemm(int64_t m, int64_t n, int64_t k) {
  Op op;
  op.kind = OpKind::kGemm;
  op.gemm = {m, n, k};
  op.flops = 2.0 * m * n * k;
  op.bytes = 2.0 * (m * k + k * n + m * n);  // bf16 operands and result
  return op;
}

double rel(double x) { return 1e-12 * std::abs(x); }

TEST(RooflineCost, ComputeBoundGemm) {
  const spec::Hardware hw = test_hardware();
  const auto model = make_roofline_cost_model(hw);
  const Op op = gemm(8192, 8192, 8192);
  const double f = 8192.0 / (8192.0 + 256.0);
  const double eff = 0.8 * f * f * f;
  const double math = op.flops / (989e12 * eff);
  ASSERT_GT(math, op.bytes / (3.35e12 * 0.85));  // the shape is compute-bound
  EXPECT_NEAR(model->op_seconds(op), math + 4e-6, rel(math));
}

TEST(RooflineCost, NonSquareGemmEfficiencyByHand) {
  const auto model = make_roofline_cost_model(test_hardware());
  const Op op = gemm(4096, 12288, 1024);  // e.g. a QKV projection on 4 TP ranks
  const double eff = 0.8 * (4096.0 / 4352.0) * (12288.0 / 12544.0) * (1024.0 / 1280.0);
  const double math = op.flops / (989e12 * eff);
  ASSERT_GT(math, op.bytes / (3.35e12 * 0.85));
  EXPECT_NEAR(model->op_seconds(op), math + 4e-6, rel(math));
}

TEST(RooflineCost, GemmEfficiencyRisesWithSizeAndNeverExceedsMax) {
  spec::Hardware hw = test_hardware();
  hw.hbm_bytes_per_s = 1e30;  // take memory out so the time is pure math
  hw.kernel_launch_s = 0;
  const auto model = make_roofline_cost_model(hw);
  double previous = 0;
  for (int64_t d = 16; d <= 65536; d *= 2) {
    const Op op = gemm(d, d, d);
    const double eff = op.flops / (989e12 * model->op_seconds(op));
    EXPECT_GT(eff, previous) << "d=" << d;
    EXPECT_LE(eff, 0.8);
    previous = eff;
  }
  EXPECT_GT(previous, 0.79);  // approaches gemm_max for huge GEMMs
  // A skinny GEMM with the same FLOPs as a square one runs further from peak.
  const Op square = gemm(4096, 4096, 4096);
  const Op skinny = gemm(64, 4096, 4096 * 64);
  ASSERT_DOUBLE_EQ(square.flops, skinny.flops);
  EXPECT_GT(model->op_seconds(skinny), model->op_seconds(square));
}

TEST(RooflineCost, MemoryBoundOps) {
  const auto model = make_roofline_cost_model(test_hardware());
  for (OpKind kind : {OpKind::kNorm, OpKind::kElementwise, OpKind::kLoss, OpKind::kOptimizer}) {
    Op op;
    op.kind = kind;
    op.bytes = 1e9;
    op.flops = 1e8;
    const double expected = 1e9 / (3.35e12 * 0.85) + 4e-6;
    EXPECT_NEAR(model->op_seconds(op), expected, rel(expected)) << graph::to_string(kind);
  }
  // A skinny GEMM streaming its weights (matrix-vector) is memory-bound as well.
  const Op gemv = gemm(1, 16384, 16384);
  const double expected = gemv.bytes / (3.35e12 * 0.85) + 4e-6;
  EXPECT_NEAR(model->op_seconds(gemv), expected, rel(expected));
}

TEST(RooflineCost, MathHeavyElementwiseIsBoundedByCudaCorePeak) {
  const auto model = make_roofline_cost_model(test_hardware());
  Op op;
  op.kind = OpKind::kElementwise;
  op.bytes = 1e6;
  op.flops = 1e12;
  EXPECT_NEAR(model->op_seconds(op), 1e12 / 67e12 + 4e-6, 1e-15);
}

TEST(RooflineCost, Attention) {
  const auto model = make_roofline_cost_model(test_hardware());
  Op op;
  op.kind = OpKind::kAttention;
  op.attn_batch_heads = 32;
  op.attn_seq = 4096;
  op.attn_head_dim = 128;
  op.flops = 4.0 * 32 * 4096.0 * 4096 * 128;  // QK^T and AV
  op.bytes = 4.0 * 32 * 4096 * 128 * 2;       // q, k, v, o in bf16
  const double expected = op.flops / (989e12 * 0.6) + 4e-6;
  EXPECT_NEAR(model->op_seconds(op), expected, rel(expected));
}

// The flash core (label attn.flash) runs at the profile's flash efficiency, counting its own
// (causal) work; the unfused core at attention_max.
TEST(RooflineCost, FlashAttentionAtItsOwnEfficiency) {
  const auto model = make_roofline_cost_model(test_hardware());
  Op op;
  op.kind = OpKind::kAttention;
  op.label = graph::OpLabel::kAttnFlash;
  op.attn_batch_heads = 32;
  op.attn_seq = 4096;
  op.attn_head_dim = 128;
  op.flops = 2.0 * 32 * 4096.0 * 4097 * 128;
  op.bytes = 4.0 * 32 * 4096 * 128 * 2 + 4.0 * 32 * 4096;
  const double flash = op.flops / (989e12 * 0.5) + 4e-6;
  EXPECT_NEAR(model->op_seconds(op), flash, rel(flash));
  op.label = graph::OpLabel::kAttnCore;
  const double unfused = op.flops / (989e12 * 0.6) + 4e-6;
  EXPECT_NEAR(model->op_seconds(op), unfused, rel(unfused));
}

TEST(RooflineCost, ComputeDtypeSelectsThePeak) {
  const spec::Hardware hw = test_hardware();
  const Op op = gemm(8192, 8192, 8192);
  const double f = 8192.0 / (8192.0 + 256.0);
  const double eff = 0.8 * f * f * f;
  // Under the FP8 recipe a GEMM marked fp8 runs at the FP8 peak (at gemm_max where the profile
  // has no gemm_max_fp8, else at that), any other op at the bf16 peak.
  auto fp8 = make_roofline_cost_model(hw, CollectiveAlgorithm::kAuto, spec::FP8);
  Op fp8_op = op;
  fp8_op.fp8 = true;
  EXPECT_NEAR(fp8->op_seconds(fp8_op), op.flops / (1979e12 * eff) + 4e-6, rel(op.flops / 1979e12));
  EXPECT_NEAR(fp8->op_seconds(op), op.flops / (989e12 * eff) + 4e-6, rel(op.flops / 989e12));
  spec::Hardware own = hw;
  own.gemm_max_fp8_efficiency = 0.7;
  fp8 = make_roofline_cost_model(own, CollectiveAlgorithm::kAuto, spec::FP8);
  EXPECT_NEAR(fp8->op_seconds(fp8_op), op.flops / (1979e12 * 0.7 * f * f * f) + 4e-6,
              rel(op.flops / 1979e12));
  spec::Hardware no_fp8 = hw;
  no_fp8.peak_fp8_flops = 0;
  EXPECT_THROW(make_roofline_cost_model(no_fp8, CollectiveAlgorithm::kAuto, spec::FP8),
               std::invalid_argument);
  spec::Hardware no_hbm = hw;
  no_hbm.hbm_bytes_per_s = 0;
  EXPECT_THROW(make_roofline_cost_model(no_hbm), std::invalid_argument);
}

TEST(RooflineCost, CommunicationUsesTheModelsAlgorithm) {
  const spec::Hardware hw = test_hardware();
  Op op;
  op.kind = OpKind::kAllReduce;
  op.bytes = 1e3;
  op.group_size = 8;
  op.group_nodes = 1;
  for (CollectiveAlgorithm alg : {CollectiveAlgorithm::kAuto, CollectiveAlgorithm::kRing,
                                  CollectiveAlgorithm::kTree, CollectiveAlgorithm::kHierarchical}) {
    const auto model = make_roofline_cost_model(hw, alg);
    EXPECT_DOUBLE_EQ(model->op_seconds(op), collective_seconds(op.kind, op.bytes, 8, 1, hw, alg));
  }
  // Ring all-reduce of 1 kB on 8 NVLink ranks, by hand: 2·7/8·S/B + 14·α.
  const auto ring = make_roofline_cost_model(hw, CollectiveAlgorithm::kRing);
  EXPECT_NEAR(ring->op_seconds(op), 2 * 7.0 / 8 * 1e3 / 450e9 + 14 * 2e-6, 1e-15);
}

TEST(RooflineCost, EmptyWorkCostsNothing) {
  const auto model = make_roofline_cost_model(test_hardware());
  Op compute;
  compute.kind = OpKind::kElementwise;
  EXPECT_EQ(model->op_seconds(compute), 0);
  Op solo;
  solo.kind = OpKind::kAllReduce;
  solo.bytes = 1e9;
  solo.group_size = 1;
  EXPECT_EQ(model->op_seconds(solo), 0);
  solo.kind = OpKind::kAllGather;
  solo.group_size = 8;
  solo.bytes = 0;
  EXPECT_EQ(model->op_seconds(solo), 0);
}

TEST(RooflineCost, Describe) {
  EXPECT_EQ(make_roofline_cost_model(test_hardware())->describe(),
            "roofline (bf16) on H100 SXM [h100-test], collectives: auto");
  EXPECT_EQ(
      make_roofline_cost_model(test_hardware(), CollectiveAlgorithm::kTree, spec::FP8)->describe(),
      "roofline (fp8 GEMMs, bf16 attention) on H100 SXM [h100-test], collectives: tree");
}

}  // namespace
}  // namespace mpsim::cost
