// CostModel: how long an op takes on its stream when it runs alone. The engine asks once per op
// before simulating. The default model (make_roofline_cost_model) is a roofline over the
// hardware profile with shape-dependent GEMM efficiency and collectives by algorithm; a later
// issue adds a model backed by calibrated tables behind the same interface.
//
// Conventions: compute ops carry FLOPs and HBM bytes; communication ops carry `bytes` = the size
// of the whole buffer as nccl-tests counts it (all-reduce: the buffer reduced; all-gather: the
// gathered output; reduce-scatter: the input; send: the message), `group_size` members and
// `group_nodes` distinct nodes.
#pragma once

#include <memory>
#include <string>

#include "simulator/graph/op.h"
#include "simulator/spec/hardware.h"

namespace mpsim::cost {

class CostModel {
 public:
  virtual ~CostModel() = default;
  // Seconds; never negative. Must be deterministic.
  virtual double op_seconds(const graph::Op& op) const = 0;
  // One line saying what the model is, for reports.
  virtual std::string describe() const = 0;
};

enum class CollectiveAlgorithm {
  kAuto,          // the fastest of ring, tree and (across nodes) hierarchical, as NCCL's tuner picks
  kRing,
  kTree,
  kHierarchical,  // intra-node reduce-scatter, inter-node ring, intra-node all-gather
};

std::unique_ptr<CostModel> make_roofline_cost_model(const spec::Hardware& hardware,
                                                    CollectiveAlgorithm algorithm =
                                                        CollectiveAlgorithm::kAuto);

}  // namespace mpsim::cost
