// The op-name grammar that joins the simulator's graph, the executor's NVTX ranges and the rows
// of validation reports. One name per op of one rank; a name is unique within a rank's iteration.
//
//   name     := compute | tp | pp | dp | "comm/embed/allreduce" | "optimizer"
//             | "fp8.weights" | "comm/dp/fp8.amax"   (the FP8 recipe's once-per-iteration ops)
//             | "host/offload." ("grads" | "optimizer" | "params")   (optimizer offload)
//   compute  := pass "/mb" N "/" site "/" label [part]   e.g. fwd/mb3/L17/attn.qkv
//   tp       := "comm/tp/" pass "/mb" N "/" site "/" label [part]
//                                                        e.g. comm/tp/fwd/mb3/L17/attn.allreduce
//   cp       := "comm/cp/" pass "/mb" N "/" site "/" label part   ring-attention K/V steps
//   pp       := "comm/pp/send/" ("fwd"|"bwd") "/mb" N [ "/c" N ]   e.g. comm/pp/send/fwd/mb3
//   dp       := "comm/dp/bucket" N [ "/reducescatter" | "/allgather" ]   all-reduce when bare
//             | "comm/dp/" pass "/mb" N "/L" N "/weights.allgather"      ZeRO-3 weight gathers
//   pass     := "fwd" | "bwd" | "rcp"          (rcp: forward work recomputed in the backward pass)
//   site     := "L" N | "embed" | "head"       (N: global layer index, from 0)
//             | "L" N "-" N                  (layer range of a folded pipeline step, label "step")
//   label    := module "." op [ ".dgrad" | ".wgrad" ]   e.g. attn.norm, mlp.fc1.wgrad, logits
//   part     := ".part" N    a chunk of work split for TP-communication overlap (Op::part)
//
// parse_op_name() inverts op_name(); it returns std::nullopt for text outside the grammar.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "simulator/graph/op.h"

namespace mpsim::graph {

std::string op_name(const Op& op);

struct ParsedOpName {
  enum class Family { kCompute, kTp, kPp, kDp, kEmbedding, kOptimizer, kCp, kHost };
  Family family = Family::kCompute;
  Pass pass = Pass::kForward;  // fwd/bwd/rcp; kStep for optimizer, dp buckets, embedding sync
  Site site = Site::kNone;
  int micro_batch = -1;
  int layer = -1;
  int last_layer = -1;  // folded steps: the range's last layer
  int chunk = -1;
  int bucket = -1;
  bool pp_backward = false;  // comm/pp/send/bwd
  std::string label;         // compute/tp label; "allreduce"|"reducescatter"|"allgather" for dp
  int part = -1;             // the ".part<N>" suffix's N; -1 without one
};

std::optional<ParsedOpName> parse_op_name(std::string_view name);

}  // namespace mpsim::graph
