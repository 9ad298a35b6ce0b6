// Op: one vertex of the training-iteration graph, a piece of work that runs on one stream of one
// simulated rank: a compute kernel (with FLOPs, HBM bytes and, for GEMMs, its shape) or a
// communication (with message bytes and the group it spans). Ops are plain values; the graph
// owns them. The op's name (op_name.h) is derived from its fields, never stored.
#pragma once

#include <cstdint>
#include <string_view>

#include "simulator/graph/op_label.h"

namespace mpsim::graph {

enum class OpKind : uint8_t {
  kGemm,
  kAttention,    // fused attention core (QK^T, softmax, AV)
  kNorm,         // LayerNorm / RMSNorm
  kElementwise,  // activation, dropout, residual add, rotary, embedding lookup
  kLoss,         // (vocab-parallel) cross entropy
  kOptimizer,    // Adam step over the rank's parameters
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kSend,       // pipeline point-to-point transfer to the neighbouring stage
  kStepBlock,  // a whole pipeline step folded into one op (GraphOptions::fold); pre-priced
  // Optimizer offload: a copy between GPU and host memory over the host link (PCIe, C2C), and
  // the optimizer's work on the host (bytes through host memory).
  kHostTransfer,
  kHostOptimizer,
};

enum class Pass : uint8_t {
  kForward,    // "fwd"
  kBackward,   // "bwd"
  kRecompute,  // "rcp": forward work re-run during the backward pass
  kStep,       // once per iteration: DP gradient reduction, optimizer
};

// Streams of a rank. Each stream runs its ops one at a time, in the order the graph issued them.
enum class Stream : uint8_t {
  kCompute,
  kTpComm,
  kDpComm,
  kPpForward,
  kPpBackward,
  kCpComm,
  kHost,  // optimizer offload: host-link copies and the host's optimizer step, in order
};
inline constexpr int kNumStreams = 7;

// Where a compute or TP op sits in the model.
enum class Site : uint8_t { kLayer, kEmbedding, kHead, kNone };

// Which group a communication op spans.
enum class Group : uint8_t { kNone, kTp, kDp, kPp, kEmbedding, kCp };

struct GemmShape {
  int64_t m = 0;  // rows of the output
  int64_t n = 0;  // columns of the output
  int64_t k = 0;  // reduction dimension
};

struct Op {
  OpKind kind = OpKind::kElementwise;
  Pass pass = Pass::kForward;
  Stream stream = Stream::kCompute;
  Site site = Site::kNone;
  Group group = Group::kNone;
  // The work inside its site, e.g. OpLabel::kAttnQkvDgrad ("attn.qkv.dgrad", see op_label.h).
  OpLabel label = OpLabel::kNone;
  // One piece of work split into `parts` (TP-communication overlap: GEMM chunks, ring-exchange
  // steps, pipelined reduce-scatter chunks); the name gets ".part<part>" where parts > 1.
  uint8_t part = 0;
  uint8_t parts = 1;
  int32_t rank = 0;          // simulated rank that runs the op (index into the graph's ranks)
  int32_t micro_batch = -1;  // -1 for once-per-iteration ops
  int32_t layer = -1;        // global transformer layer index, -1 outside layers
  int32_t last_layer = -1;   // kStepBlock: the last layer of the step (layer is the first)
  int32_t chunk = -1;        // model chunk (virtual pipeline stage) for interleaved schedules
  int32_t bucket = -1;       // DP gradient bucket index
  GemmShape gemm;            // GEMMs only
  // Attention only: batch x local heads, query length, head dim (kv length = query length).
  int64_t attn_batch_heads = 0;
  int64_t attn_seq = 0;
  int64_t attn_head_dim = 0;
  double flops = 0;         // floating point operations (compute ops)
  double bytes = 0;         // HBM bytes moved (compute ops) or message bytes (communication)
  int32_t group_size = 1;   // members of the communication group
  int32_t group_nodes = 1;  // distinct nodes the group spans
  int32_t collective = -1;  // links the member ops of one collective across simulated ranks
  bool fp8 = false;         // a GEMM with FP8 operands (Transformer Engine's recipe), BF16 out
  uint8_t attn_group = 1;   // attention only: query heads per key/value head (1 without GQA)
  double duration_s = 0;    // filled by the cost model
  // The fraction by which the op takes longer while a communication op of its rank runs on
  // another stream (filled by the cost model, CostModel::comm_interference; for a folded step,
  // by folding); the engine stretches the op for the time they overlap.
  double comm_interference = 0;
  // Memory on the op's rank (filled by simulator/memory): allocated when the op starts, released
  // when it ends. A forward op allocates what it saves for the backward pass; the backward op that
  // consumes it frees it; an op's own workspace is allocated and freed by the op itself.
  double alloc_bytes = 0;
  double free_bytes = 0;
};

inline bool is_communication(OpKind kind) {
  return kind == OpKind::kAllReduce || kind == OpKind::kAllGather ||
         kind == OpKind::kReduceScatter || kind == OpKind::kSend;
}

std::string_view to_string(OpKind kind);
std::string_view to_string(Pass pass);
std::string_view to_string(Stream stream);

}  // namespace mpsim::graph
