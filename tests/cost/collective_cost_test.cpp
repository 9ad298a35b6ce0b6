#include "simulator/cost/collective_cost.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

namespace mpsim::cost {
namespace {

using graph::OpKind;

// H100-like numbers; only their roles matter (NVLink fast and near, the network slow and far).
constexpr double kNvlB = 450e9, kNvlA = 2e-6;
constexpr double kNetB = 50e9, kNetA = 8e-6;

spec::Hardware test_hardware() {
  spec::Hardware hw;
  hw.name = "test";
  hw.gpus_per_node = 8;
  hw.nvlink_bytes_per_s = kNvlB;
  hw.nvlink_latency_s = kNvlA;
  hw.network_bytes_per_s = kNetB;
  hw.network_latency_s = kNetA;
  return hw;
}

double rel(double x) { return 1e-12 * std::abs(x); }

// Closed forms written out again here, independently of the library.
double ring_ar(double s, int n, double b, double a) {
  return 2.0 * (n - 1) / n * s / b + 2.0 * (n - 1) * a;
}
double ring_ag(double s, int n, double b, double a) {
  return double(n - 1) / n * s / b + double(n - 1) * a;
}

const std::vector<std::pair<double, int>> kSizes = {
    {3, 3}, {1 << 20, 2}, {64.0 * (1 << 20), 4}, {1024.0 * (1 << 20), 8}, {1e5, 5}};

constexpr CollectiveAlgorithm kAll[] = {CollectiveAlgorithm::kAuto, CollectiveAlgorithm::kRing,
                                        CollectiveAlgorithm::kTree,
                                        CollectiveAlgorithm::kHierarchical};

TEST(CollectiveCost, RingAllReduceMatchesClosedForm) {
  const spec::Hardware hw = test_hardware();
  for (auto [s, n] : kSizes) {
    const double expected = ring_ar(s, n, kNvlB, kNvlA);
    EXPECT_NEAR(collective_seconds(OpKind::kAllReduce, s, n, 1, hw, CollectiveAlgorithm::kRing),
                expected, rel(expected))
        << "S=" << s << " n=" << n;
  }
}

TEST(CollectiveCost, RingAllGatherAndReduceScatterMatchClosedForm) {
  const spec::Hardware hw = test_hardware();
  for (auto [s, n] : kSizes) {
    const double expected = ring_ag(s, n, kNvlB, kNvlA);
    for (OpKind kind : {OpKind::kAllGather, OpKind::kReduceScatter}) {
      EXPECT_NEAR(collective_seconds(kind, s, n, 1, hw, CollectiveAlgorithm::kRing), expected,
                  rel(expected));
      // Inside one node there is no hierarchical variant, so auto is the ring.
      EXPECT_NEAR(collective_seconds(kind, s, n, 1, hw, CollectiveAlgorithm::kAuto), expected,
                  rel(expected));
    }
  }
}

TEST(CollectiveCost, GroupSpanningNodesIsLimitedByTheNetwork) {
  const spec::Hardware hw = test_hardware();
  const double s = 256e6;
  const int n = 16;
  const double across =
      collective_seconds(OpKind::kAllReduce, s, n, 2, hw, CollectiveAlgorithm::kRing);
  EXPECT_NEAR(across, ring_ar(s, n, kNetB, kNetA), rel(across));
  EXPECT_GT(across,
            collective_seconds(OpKind::kAllReduce, s, n, 1, hw, CollectiveAlgorithm::kRing));
  const double ag = collective_seconds(OpKind::kAllGather, s, n, 2, hw, CollectiveAlgorithm::kRing);
  EXPECT_NEAR(ag, ring_ag(s, n, kNetB, kNetA), rel(ag));
  EXPECT_GT(ag, collective_seconds(OpKind::kAllGather, s, n, 1, hw, CollectiveAlgorithm::kRing));
}

TEST(CollectiveCost, TreeAllReduceMatchesClosedForm) {
  const spec::Hardware hw = test_hardware();
  // ceil(log2 n) for n = 2, 5, 8, 64.
  const std::vector<std::pair<int, int>> depth = {{2, 1}, {5, 3}, {8, 3}, {64, 6}};
  for (auto [n, d] : depth) {
    const double s = 1e6;
    const double expected = 2 * s / kNvlB + 2.0 * d * kNvlA;
    EXPECT_NEAR(collective_seconds(OpKind::kAllReduce, s, n, 1, hw, CollectiveAlgorithm::kTree),
                expected, rel(expected))
        << "n=" << n;
  }
}

TEST(CollectiveCost, HierarchicalAllReduceFormula) {
  const spec::Hardware hw = test_hardware();
  const double s = 1e9;
  const int k = 4, g = 8, n = k * g;
  // Intra-node reduce-scatter + inter-node all-reduce of S/g over k + intra-node all-gather.
  const double expected = (g - 1.0) / g * s / kNvlB + (g - 1) * kNvlA +
                          2.0 * (k - 1) / k * (s / g) / kNetB + 2.0 * (k - 1) * kNetA +
                          (g - 1.0) / g * s / kNvlB + (g - 1) * kNvlA;
  const double t =
      collective_seconds(OpKind::kAllReduce, s, n, k, hw, CollectiveAlgorithm::kHierarchical);
  EXPECT_NEAR(t, expected, rel(expected));
  // Large buffers across nodes: the hierarchical algorithm beats a flat ring on the network.
  EXPECT_LT(t, collective_seconds(OpKind::kAllReduce, s, n, k, hw, CollectiveAlgorithm::kRing));
  EXPECT_NEAR(collective_seconds(OpKind::kAllReduce, s, n, k, hw, CollectiveAlgorithm::kAuto), t,
              rel(t));
}

TEST(CollectiveCost, HierarchicalAllGatherFormula) {
  const spec::Hardware hw = test_hardware();
  const double s = 1e9;
  const int k = 2, g = 8, n = k * g;
  const double expected = (k - 1.0) / k * (s / g) / kNetB + (k - 1) * kNetA +
                          (g - 1.0) / g * s / kNvlB + (g - 1) * kNvlA;
  for (OpKind kind : {OpKind::kAllGather, OpKind::kReduceScatter}) {
    EXPECT_NEAR(collective_seconds(kind, s, n, k, hw, CollectiveAlgorithm::kHierarchical), expected,
                rel(expected));
  }
}

TEST(CollectiveCost, HierarchicalFallsBackToRingWhereItDoesNotApply) {
  const spec::Hardware hw = test_hardware();
  const double s = 1e8;
  // One node: hierarchical is the ring on NVLink.
  EXPECT_NEAR(
      collective_seconds(OpKind::kAllReduce, s, 8, 1, hw, CollectiveAlgorithm::kHierarchical),
      ring_ar(s, 8, kNvlB, kNvlA), rel(ring_ar(s, 8, kNvlB, kNvlA)));
  // 12 ranks over 5 nodes: not evenly split, priced as a flat ring on the network.
  EXPECT_NEAR(
      collective_seconds(OpKind::kAllReduce, s, 12, 5, hw, CollectiveAlgorithm::kHierarchical),
      ring_ar(s, 12, kNetB, kNetA), rel(ring_ar(s, 12, kNetB, kNetA)));
  EXPECT_NEAR(
      collective_seconds(OpKind::kAllGather, s, 12, 5, hw, CollectiveAlgorithm::kHierarchical),
      ring_ag(s, 12, kNetB, kNetA), rel(ring_ag(s, 12, kNetB, kNetA)));
}

TEST(CollectiveCost, AutoIsTheFastestAlgorithm) {
  const spec::Hardware hw = test_hardware();
  const std::vector<std::pair<int, int>> groups = {{2, 1},  {8, 1},  {4, 2},
                                                   {16, 2}, {64, 8}, {12, 5}};
  for (OpKind kind : {OpKind::kAllReduce, OpKind::kAllGather, OpKind::kReduceScatter}) {
    for (auto [n, nodes] : groups) {
      for (double s : {1e2, 1e4, 1e6, 1e8, 1e10}) {
        const double a = collective_seconds(kind, s, n, nodes, hw, CollectiveAlgorithm::kAuto);
        double best = INFINITY;
        for (CollectiveAlgorithm alg : kAll) {
          const double t = collective_seconds(kind, s, n, nodes, hw, alg);
          EXPECT_LE(a, t) << "n=" << n << " nodes=" << nodes << " S=" << s;
          best = std::min(best, t);
        }
        EXPECT_DOUBLE_EQ(a, best);
      }
    }
  }
}

TEST(CollectiveCost, AutoIsTheRingForLargeBuffersInsideANode) {
  const spec::Hardware hw = test_hardware();
  const double s = 1024.0 * (1 << 20);
  const double expected = ring_ar(s, 8, kNvlB, kNvlA);
  EXPECT_NEAR(collective_seconds(OpKind::kAllReduce, s, 8, 1, hw, CollectiveAlgorithm::kAuto),
              expected, rel(expected));
  EXPECT_LT(expected,
            collective_seconds(OpKind::kAllReduce, s, 8, 1, hw, CollectiveAlgorithm::kTree));
}

TEST(CollectiveCost, TreeWinsForTinyMessagesOnManyRanks) {
  const spec::Hardware hw = test_hardware();
  const double s = 1024;
  for (auto [n, nodes] : std::vector<std::pair<int, int>>{{8, 1}, {64, 8}}) {
    const double tree =
        collective_seconds(OpKind::kAllReduce, s, n, nodes, hw, CollectiveAlgorithm::kTree);
    EXPECT_LT(tree,
              collective_seconds(OpKind::kAllReduce, s, n, nodes, hw, CollectiveAlgorithm::kRing));
    EXPECT_LT(tree, collective_seconds(OpKind::kAllReduce, s, n, nodes, hw,
                                       CollectiveAlgorithm::kHierarchical));
    EXPECT_DOUBLE_EQ(
        collective_seconds(OpKind::kAllReduce, s, n, nodes, hw, CollectiveAlgorithm::kAuto), tree);
  }
}

TEST(CollectiveCost, SendIsOneHop) {
  const spec::Hardware hw = test_hardware();
  const double s = 32e6;
  for (CollectiveAlgorithm alg : kAll) {
    EXPECT_NEAR(collective_seconds(OpKind::kSend, s, 2, 1, hw, alg), s / kNvlB + kNvlA, 1e-15);
    EXPECT_NEAR(collective_seconds(OpKind::kSend, s, 2, 2, hw, alg), s / kNetB + kNetA, 1e-15);
  }
}

TEST(CollectiveCost, NothingToMoveCostsNothing) {
  const spec::Hardware hw = test_hardware();
  for (OpKind kind :
       {OpKind::kAllReduce, OpKind::kAllGather, OpKind::kReduceScatter, OpKind::kSend}) {
    for (CollectiveAlgorithm alg : kAll) {
      EXPECT_EQ(collective_seconds(kind, 0, 8, 1, hw, alg), 0);
      EXPECT_EQ(collective_seconds(kind, 0, 16, 2, hw, alg), 0);
      EXPECT_EQ(collective_seconds(kind, 1e9, 1, 1, hw, alg), 0);
    }
  }
}

TEST(CollectiveCost, BusBandwidthFollowsNcclTests) {
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(OpKind::kAllReduce, 8), 2.0 * 7 / 8);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(OpKind::kAllGather, 8), 7.0 / 8);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(OpKind::kReduceScatter, 4), 3.0 / 4);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(OpKind::kSend, 2), 1.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth(OpKind::kAllReduce, 1e9, 0.01, 4), 1e11 * 1.5);
  // An ideal ring (no latency) carries exactly the link bandwidth on every rank, for any n.
  spec::Hardware hw = test_hardware();
  hw.nvlink_latency_s = 0;
  for (int n : {2, 3, 8, 72}) {
    for (OpKind kind : {OpKind::kAllReduce, OpKind::kAllGather, OpKind::kReduceScatter}) {
      const double s = 1e9;
      const double t = collective_seconds(kind, s, n, 1, hw, CollectiveAlgorithm::kRing);
      EXPECT_NEAR(bus_bandwidth(kind, s, t, n), kNvlB, 1e-6 * kNvlB);
    }
  }
  // Measured on the project's 2xH100 machine (docs/design.md, "Facts measured on the project's
  // GPU machines"): 1 GiB fp32 all-reduce in 3.32 ms is a bus bandwidth of about 323 GB/s.
  EXPECT_NEAR(bus_bandwidth(OpKind::kAllReduce, 1024.0 * 1024 * 1024, 3.32e-3, 2), 323e9, 1e9);
}

TEST(CollectiveCost, RejectsInvalidArguments) {
  const spec::Hardware hw = test_hardware();
  EXPECT_THROW(collective_seconds(OpKind::kGemm, 1e6, 8, 1, hw, CollectiveAlgorithm::kAuto),
               std::invalid_argument);
  EXPECT_THROW(collective_seconds(OpKind::kAllReduce, -1, 8, 1, hw, CollectiveAlgorithm::kAuto),
               std::invalid_argument);
  EXPECT_THROW(collective_seconds(OpKind::kAllReduce, 1e6, 0, 1, hw, CollectiveAlgorithm::kAuto),
               std::invalid_argument);
  EXPECT_THROW(collective_seconds(OpKind::kAllReduce, 1e6, 4, 8, hw, CollectiveAlgorithm::kAuto),
               std::invalid_argument);
}

TEST(CollectiveCost, AlgorithmNames) {
  EXPECT_EQ(to_string(CollectiveAlgorithm::kAuto), "auto");
  EXPECT_EQ(to_string(CollectiveAlgorithm::kRing), "ring");
  EXPECT_EQ(to_string(CollectiveAlgorithm::kTree), "tree");
  EXPECT_EQ(to_string(CollectiveAlgorithm::kHierarchical), "hierarchical");
}

}  // namespace
}  // namespace mpsim::cost
