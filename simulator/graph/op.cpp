#include "simulator/graph/op.h"

namespace mpsim::graph {

std::string_view to_string(OpKind kind) {
  switch (kind) {
    case OpKind::kGemm:
      return "gemm";
    case OpKind::kAttention:
      return "attention";
    case OpKind::kNorm:
      return "norm";
    case OpKind::kElementwise:
      return "elementwise";
    case OpKind::kLoss:
      return "loss";
    case OpKind::kOptimizer:
      return "optimizer";
    case OpKind::kAllReduce:
      return "allreduce";
    case OpKind::kAllGather:
      return "allgather";
    case OpKind::kReduceScatter:
      return "reducescatter";
    case OpKind::kSend:
      return "send";
    case OpKind::kStepBlock:
      return "step";
    case OpKind::kHostTransfer:
      return "hostcopy";
    case OpKind::kHostOptimizer:
      return "hostoptimizer";
  }
  return "?";
}

std::string_view to_string(Pass pass) {
  switch (pass) {
    case Pass::kForward:
      return "fwd";
    case Pass::kBackward:
      return "bwd";
    case Pass::kRecompute:
      return "rcp";
    case Pass::kStep:
      return "step";
  }
  return "?";
}

std::string_view to_string(Stream stream) {
  switch (stream) {
    case Stream::kCompute:
      return "compute";
    case Stream::kTpComm:
      return "tp comm";
    case Stream::kDpComm:
      return "dp comm";
    case Stream::kPpForward:
      return "pp send fwd";
    case Stream::kPpBackward:
      return "pp send bwd";
    case Stream::kCpComm:
      return "cp comm";
    case Stream::kHost:
      return "host";
  }
  return "?";
}

}  // namespace mpsim::graph
