// CostModel: how long an op takes on its stream when it runs alone. The engine asks once per op
// before simulating. The default model (make_roofline_cost_model) is a roofline over the
// hardware profile with shape-dependent GEMM efficiency and collectives by algorithm; the
// calibrated model (calibrated_cost.h) reads measured tables and falls back to the roofline where
// it has none. make_cost_model picks between them by whether the profile carries tables.
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
  // The fraction by which the op takes longer while a communication op of its rank runs on
  // another stream (Op::comm_interference; the engine applies it for the time they overlap).
  // Default: none.
  virtual double comm_interference(const graph::Op& /*op*/) const { return 0; }
  // One line saying what the model is, for reports.
  virtual std::string describe() const = 0;
};

// The profile's efficiency.comm_interference for the compute-bound kernels (GEMMs and the
// attention core), which share the GPU's SMs and HBM with the communication kernels; 0 for the
// rest (memory-bound kernels are short and communication ops are what interferes).
double compute_comm_interference(const spec::Hardware& hardware, const graph::Op& op);

enum class CollectiveAlgorithm {
  kAuto,  // the fastest of ring, tree and (across nodes) hierarchical, as NCCL's tuner picks
  kRing,
  kTree,
  kHierarchical,  // intra-node reduce-scatter, inter-node ring, intra-node all-gather
};

// The roofline model (roofline_cost.cpp; formulas in simulator/cost/README.md). GEMMs and
// attention run at the peak of `compute_dtype` (the model's dtype). The model copies the numbers
// it needs, so `hardware` need not outlive it. Throws std::invalid_argument when the profile has
// no positive peak for that dtype, HBM bandwidth, or GEMM/attention/memory efficiency.
std::unique_ptr<CostModel> make_roofline_cost_model(
    const spec::Hardware& hardware, CollectiveAlgorithm algorithm = CollectiveAlgorithm::kAuto,
    spec::DType compute_dtype = spec::BF16);

// The model a simulation uses by default: make_calibrated_cost_model (calibrated_cost.h) when the
// profile carries measured tables (`hardware.calibrated` non-empty), else
// make_roofline_cost_model. Same arguments and exceptions as the model it builds.
std::unique_ptr<CostModel> make_cost_model(
    const spec::Hardware& hardware, CollectiveAlgorithm algorithm = CollectiveAlgorithm::kAuto,
    spec::DType compute_dtype = spec::BF16);

}  // namespace mpsim::cost
