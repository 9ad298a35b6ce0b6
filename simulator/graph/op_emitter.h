// OpEmitter: appends one rank's ops to an op sink in program order, with the dependency edges
// the builder's rules give them. It is the small vocabulary the layer ops (layer_ops.h) and the
// rank's program (rank_program.h) are written in:
//   context()       the pass, site, layer, micro-batch and chunk stamped on the next ops;
//   compute(op)     a compute-stream op; it waits for everything registered with wait() since
//                   the last compute op, and becomes "the last compute op";
//   communicate()   a communication op on its own stream, issued after the last compute op
//                   (an edge from it); nothing waits for it until the caller passes it to wait();
//   receive_next()  the next compute op is the receiver of a pipeline transfer (OpSink::receives
//                   records the pair; the program adds the edge once every send exists).
// Stream order is vertex order, so no edge is needed within a stream. Collectives are linked
// through CommGroups. compute() and communicate() throw std::length_error once more than kMaxOps
// ops have been emitted through one shared op count.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "simulator/graph/comm_groups.h"
#include "simulator/graph/op.h"
#include "simulator/graph/op_label.h"
#include "simulator/graph/training_graph.h"

namespace mpsim::graph {

// Where ops and edges go: the training graph being built, or a scratch graph of one step.
struct OpSink {
  std::vector<Op> ops;
  std::vector<OpEdge> edges;
  std::vector<EdgeDelay> delays;  // parallel to edges
  // (pipeline transfer key, receiving vertex), see OpEmitter::receive_next.
  std::vector<std::pair<size_t, OpVertex>> receives;
  void edge(OpVertex from, OpVertex to, double delay = 0) {
    edges.push_back({from, to});
    delays.push_back({delay});
  }
};

class OpEmitter {
 public:
  // Ops go to `sink` for simulated rank `rank`; `op_count` counts ops across emitters.
  OpEmitter(OpSink& sink, CommGroups& groups, int64_t& op_count, int32_t rank)
      : sink_(sink), groups_(groups), op_count_(op_count), rank_(rank) {}

  Op& context() { return ctx_; }
  const Op& context() const { return ctx_; }
  int32_t rank() const { return rank_; }

  // An op of the current context with this kind and label, not yet emitted.
  Op make(OpKind kind, OpLabel label) const {
    Op op = ctx_;
    op.kind = kind;
    op.label = label;
    op.rank = rank_;
    return op;
  }
  OpVertex compute(Op op);
  OpVertex communicate(Op op, Stream stream);
  void wait(OpVertex v) { waits_.push_back(v); }
  // An explicit edge: `to` starts after `from` ends (both already emitted).
  void depend(OpVertex from, OpVertex to) { sink_.edge(from, to); }
  void receive_next(size_t key) { receive_key_ = static_cast<int64_t>(key); }

  OpVertex last_compute() const { return last_compute_; }
  // Makes later communication ops issue after `v` (DP buckets issue after the op that
  // produced their gradients).
  void set_last_compute(OpVertex v) { last_compute_ = v; }

 private:
  OpVertex add(const Op& op);

  OpSink& sink_;
  CommGroups& groups_;
  int64_t& op_count_;
  int32_t rank_ = 0;
  Op ctx_;
  OpVertex last_compute_ = kNoOp;
  std::vector<OpVertex> waits_;
  int64_t receive_key_ = -1;
};

}  // namespace mpsim::graph
