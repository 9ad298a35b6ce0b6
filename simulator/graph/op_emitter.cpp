#include "simulator/graph/op_emitter.h"

#include <stdexcept>
#include <string>

namespace mpsim::graph {

OpVertex OpEmitter::add(const Op& op) {
  if (++op_count_ > kMaxOps) {
    throw std::length_error("configuration too large to simulate: more than " +
                            std::to_string(kMaxOps) + " ops");
  }
  sink_.ops.push_back(op);
  return static_cast<OpVertex>(sink_.ops.size() - 1);
}

OpVertex OpEmitter::compute(Op op) {
  op.stream = Stream::kCompute;
  const OpVertex v = add(op);
  for (OpVertex w : waits_) sink_.edge(w, v);
  waits_.clear();
  if (receive_key_ >= 0) {
    sink_.receives.emplace_back(static_cast<size_t>(receive_key_), v);
    receive_key_ = -1;
  }
  last_compute_ = v;
  return v;
}

OpVertex OpEmitter::communicate(Op op, Stream stream) {
  op.stream = stream;
  groups_.link(op);
  const OpVertex v = add(op);
  if (last_compute_ != kNoOp) sink_.edge(last_compute_, v);
  return v;
}

}  // namespace mpsim::graph
