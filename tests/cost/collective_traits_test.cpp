// Tests of simulator/cost/collective_traits.h: the steps and shares are nccl-tests' definitions
// (busBw = algBw · 2(n−1)/n for all-reduce, (n−1)/n for all-gather and reduce-scatter, 1 for
// send), and the roofline's ring formulas and bus bandwidth are exactly share·S/B + steps·α.
#include "simulator/cost/collective_traits.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "simulator/cost/collective_cost.h"

namespace mpsim::cost {
namespace {

using graph::OpKind;

TEST(CollectiveTraits, OneEntryPerCommunicationKind) {
  int count = 0;
  for (const CollectiveTraits& traits : kCollectiveTraits) {
    EXPECT_TRUE(graph::is_communication(traits.kind)) << traits.name;
    EXPECT_EQ(&collective_traits(traits.kind), &traits);
    ++count;
  }
  EXPECT_EQ(count, 4);
  EXPECT_THROW(collective_traits(OpKind::kGemm), std::invalid_argument);
}

TEST(CollectiveTraits, StepsAndSharesAreNcclTestsDefinitions) {
  for (int n : {1, 2, 3, 4, 8, 64}) {
    EXPECT_EQ(collective_traits(OpKind::kAllReduce).steps(n), 2.0 * (n - 1));
    EXPECT_EQ(collective_traits(OpKind::kAllReduce).share(n), 2.0 * (n - 1) / n);
    for (OpKind kind : {OpKind::kAllGather, OpKind::kReduceScatter}) {
      EXPECT_EQ(collective_traits(kind).steps(n), n - 1.0);
      EXPECT_EQ(collective_traits(kind).share(n), static_cast<double>(n - 1) / n);
    }
    EXPECT_EQ(collective_traits(OpKind::kSend).steps(n), 1.0);
    EXPECT_EQ(collective_traits(OpKind::kSend).share(n), 1.0);
  }
}

TEST(CollectiveTraits, RingFormulasAndBusBandwidthUseThem) {
  const Link link{2e11, 3e-6};
  const double bytes = 1 << 28;
  for (int n : {2, 3, 8}) {
    const CollectiveTraits& ar = collective_traits(OpKind::kAllReduce);
    const CollectiveTraits& ag = collective_traits(OpKind::kAllGather);
    const CollectiveTraits& rs = collective_traits(OpKind::kReduceScatter);
    EXPECT_EQ(ring_all_reduce_seconds(bytes, n, link),
              ar.share(n) * bytes / link.bytes_per_s + ar.steps(n) * link.latency_s);
    EXPECT_EQ(ring_all_gather_seconds(bytes, n, link),
              ag.share(n) * bytes / link.bytes_per_s + ag.steps(n) * link.latency_s);
    EXPECT_EQ(ring_reduce_scatter_seconds(bytes, n, link),
              rs.share(n) * bytes / link.bytes_per_s + rs.steps(n) * link.latency_s);
    for (const CollectiveTraits& traits : kCollectiveTraits) {
      EXPECT_EQ(bus_bandwidth_factor(traits.kind, n), traits.share(n));
    }
  }
  EXPECT_EQ(send_seconds(bytes, link), bytes / link.bytes_per_s + link.latency_s);
}

}  // namespace
}  // namespace mpsim::cost
