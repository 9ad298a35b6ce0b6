// The traits of each collective, in one table: how many steps its ring takes on n ranks, the
// share of the buffer each rank sends over those steps, and from them the bus-bandwidth factor
// as nccl-tests defines it. The roofline's ring formulas (collective_cost.h), the calibrated
// model's scaling of a measured group to other group sizes (calibrated_cost.h) and the
// calibration's fits of link numbers from measured collectives read them here, so that the three
// agree on every collective.
//
// Definitions, with S the buffer bytes as nccl-tests counts them (cost_model.h) and n ranks:
//   steps(n)  ring steps: 2(n−1) for all-reduce (a reduce-scatter then an all-gather around the
//             ring), n−1 for all-gather and reduce-scatter, 1 for send (one transfer);
//   share(n)  bytes each rank sends in all, over S: 2(n−1)/n, (n−1)/n, 1. nccl-tests calls this
//             the bus-bandwidth factor: busBw = algBw · share(n), with algBw = S / T, the rate
//             each rank's link carries, comparable across group sizes.
// A ring on a link of bandwidth B and per-step latency α then takes
//   T = share(n) · S/B + steps(n) · α.
//
// Failure: collective_traits throws std::invalid_argument for a kind that is not a communication
// op (graph::is_communication). The members are pure arithmetic on n >= 1 and never throw.
#pragma once

#include <array>
#include <stdexcept>
#include <string>
#include <string_view>

#include "simulator/graph/op.h"

namespace mpsim::cost {

struct CollectiveTraits {
  graph::OpKind kind;
  std::string_view name;  // as messages name it: "all-reduce"
  // Passes of the ring over the buffer: 2 for all-reduce, 1 for all-gather and reduce-scatter.
  double ring_passes;
  // A point-to-point transfer (send): one step and the whole buffer, whatever the group.
  bool point_to_point;

  // Ring steps on n ranks (see the file comment).
  double steps(int n) const { return point_to_point ? 1.0 : ring_passes * (n - 1); }
  // Bytes each rank sends, as a share of S; nccl-tests' bus-bandwidth factor.
  double share(int n) const { return point_to_point ? 1.0 : ring_passes * (n - 1) / n; }
};

inline constexpr std::array<CollectiveTraits, 4> kCollectiveTraits = {{
    {graph::OpKind::kAllReduce, "all-reduce", 2, false},
    {graph::OpKind::kAllGather, "all-gather", 1, false},
    {graph::OpKind::kReduceScatter, "reduce-scatter", 1, false},
    {graph::OpKind::kSend, "send", 1, true},
}};

// The traits of `kind`; throws std::invalid_argument (naming `caller`) for a compute kind.
inline const CollectiveTraits& collective_traits(graph::OpKind kind,
                                                 std::string_view caller = "collective_traits") {
  for (const CollectiveTraits& traits : kCollectiveTraits) {
    if (traits.kind == kind) return traits;
  }
  throw std::invalid_argument(std::string(caller) + ": " + std::string(graph::to_string(kind)) +
                              " is not a communication op");
}

}  // namespace mpsim::cost
