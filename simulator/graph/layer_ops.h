// LayerOps: the ops of one transformer layer, the embedding and the head of one micro-batch on
// one rank, following Megatron-LM (see training_graph.h for the list), written over an
// OpEmitter. The caller sets the context's micro-batch and chunk; the functions set pass, site
// and layer. Each op carries its FLOPs, HBM bytes and shapes; durations and memory are set later
// (cost model, memory timeline). TP communication is emitted only where the TP group has more
// than one rank (the loss all-gather always: its size then is one rank's). Nothing here throws
// except the emitter's op limit.
#pragma once

#include <cstdint>

#include "simulator/graph/model_math.h"
#include "simulator/graph/op_emitter.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::graph {

// Sizes of one micro-batch on one rank.
struct LayerShapes {
  int64_t micro_batch = 1;  // sequences
  int64_t tokens = 0;       // micro_batch * seq / cp
  int64_t tokens_sp = 0;    // tokens held by one rank between TP regions (tokens / t with SP)
  int64_t h = 0, t = 1;
  int64_t qkv_out = 0;  // (h + 2 * kv * head_dim) / t
  int64_t fc1_out = 0;  // ffn / t (2 * ffn / t for SwiGLU)
  int64_t ffn = 0;      // ffn / t
  int64_t heads = 0;    // heads / t
  int64_t kv_dim = 0;   // kv * head_dim / t
  int64_t vocab = 0;    // padded vocab / t
  double e = 2;         // bytes per element
  bool sp = false;      // sequence parallelism
  // Transformer Engine's TP-communication overlap (ParallelConfig::tp_comm_overlap; SP and t > 1).
  bool tp_comm_overlap = false;
  int64_t cp = 1;  // context parallelism: the sequence split over cp ranks

  double activation_bytes() const { return static_cast<double>(tokens) * h * e; }
  double activation_bytes_sp() const { return static_cast<double>(tokens_sp) * h * e; }
};
LayerShapes layer_shapes(const ModelDims& dims, const spec::ParallelConfig& config,
                         int64_t padded_vocab);

// Whether `attention` is the flash core (unspecified means flash, as validate_parallel_config
// fills it), and the label its core carries: kAttnFlash, else kAttnCore (unfused).
inline bool is_flash(spec::Attention attention) { return attention != spec::ATTENTION_UNFUSED; }
OpLabel attention_core_label(spec::Attention attention);

// What one attention core does, forward or backward, for `batch_heads` = micro-batch x local
// heads, given the elements of Q, K and V together (`qkv`) and of the output (`out`):
//   unfused: the full s x s scores, as Megatron-LM's batched GEMMs compute them (the causal
//     mask is applied in the softmax). FLOPs forward 4 bh s^2 d (Q K^T and P V), backward twice
//     that (dP, dV, dQ, dK). HBM bytes: Q, K, V and the output, plus the s x s tensors, e
//     bytes per element: forward the scores written and read by the softmax, the probabilities
//     written and read by P V (4 e bh s^2); backward the probabilities read twice (dV and the
//     softmax backward), dP written and read, dS written and read twice (dQ, dK) (7 e bh s^2).
//   flash: one kernel that skips the blocks above the diagonal: FLOPs forward
//     2 bh s (s + 1) d (the causal half of the two products, diagonal included), backward 2.5
//     times that (five products: the scores again, dV, dP, dQ, dK; Dao 2023, FlashAttention-2,
//     section 3.1.2). HBM bytes: forward Q, K, V read, the output written and the fp32 log-sum-exp
//     per head and query (4 bh s); backward Q, K, V, the output, its gradient and the
//     log-sum-exp read, dQ, dK, dV written.
struct AttentionWork {
  double flops = 0;
  double bytes = 0;
};
AttentionWork attention_core_work(bool flash, bool backward, int64_t batch_heads, int64_t seq,
                                  int64_t head_dim, double qkv, double out, double e);

class LayerOps {
 public:
  // `tp_nodes`, `cp_nodes`: distinct nodes the emitting rank's TP and CP groups span.
  LayerOps(OpEmitter& emit, const LayerShapes& shapes, const ModelDims& dims,
           spec::Recompute recompute, spec::Attention attention, int32_t tp_nodes,
           int32_t cp_nodes = 1)
      : emit_(emit),
        s_(shapes),
        d_(dims),
        recompute_(recompute),
        attention_(attention),
        tp_nodes_(tp_nodes),
        cp_nodes_(cp_nodes) {}

  // A layer's forward, or its recomputed forward (pass kRecompute).
  void forward_layer(int64_t layer, Pass pass);
  // A layer's backward, preceded by its recomputation under full recompute.
  void backward_layer(int64_t layer);
  void embedding(bool backward);
  void head(bool backward);

 private:
  // A GEMM, or (parts > 1) chunk `part` of one split into `parts` along m (m is the chunk's).
  OpVertex gemm(OpLabel label, int64_t m, int64_t n, int64_t k, int part = 0, int parts = 1);
  OpVertex memory_op(OpKind kind, OpLabel label, double bytes, double flops = 0);
  // The attention core of the configured kind (see attention_core_work()). With context
  // parallelism, ring attention: the core in cp blocks, one per K/V chunk of the sequence, and
  // cp - 1 ring steps sending the rank's K and V (backward also their gradients) to the next CP
  // rank, block i waiting for step i (block 0 runs on the rank's own chunk); each block does
  // 1/cp^2 of the whole sequence's attention work, so a rank does 1/cp of it (Megatron-Core's
  // load-balanced split: each rank holds chunks i and 2 cp - 1 - i of 2 cp).
  void attention(bool backward);
  // A ring of `pieces` compute pieces and pieces - 1 transfers: send(i) emits step i (issued
  // at once, one after the other on its stream), piece(i) emits compute piece i, which waits for
  // step i - 1 (piece 0 needs none). Shared by the TP ring exchange and ring attention.
  template <typename Send, typename Piece>
  void ring(int pieces, Send send, Piece piece);
  // One attention block (part of parts) doing `work_share` of the whole sequence's core.
  void attention_block(bool backward, int part, int parts, double work_share);
  // TP collective, issued asynchronously: the caller waits on the vertex where it is needed.
  // A piece of a split one (part of parts) carries its own bytes.
  OpVertex tp_async(OpKind kind, OpLabel label, double bytes, int part = 0, int parts = 1);
  // A GEMM whose m rows are the sequence-parallel input gathered over the TP group: without SP
  // the GEMM alone; with SP the blocking all-gather, then the GEMM; with the TP-communication
  // overlap Transformer Engine's ring exchange: t - 1 ring steps, each sending one shard of the
  // input (1/t of it) to the next TP rank, and the GEMM in t chunks of m / t rows, chunk i
  // waiting for the shard of step i (chunk 0 runs on the rank's own shard at once). With chunk
  // time g and step time c the pair takes t g when c <= g and (t - 1) c + g when c >= g.
  // `gather_bytes`: the gathered input's bytes (FP8 inputs gather at one byte per element).
  // `cast` (FP8 backward, else kNone): the gradient's quantisation, after the gather or, with the
  // ring exchange, before it, of `cast_bytes`.
  void gathered_gemm(OpLabel gather, OpLabel label, int64_t m, int64_t n, int64_t k,
                     double gather_bytes, OpLabel cast = OpLabel::kNone, double cast_bytes = 0);
  // FP8 only (else nothing): the quantisation kernels of one linear layer, a memory-bound op
  // moving `bytes` (see fp8_cast_bytes in layer_ops.cpp).
  void fp8_cast(OpLabel label, double bytes);
  // The bytes of a gathered input of an FP8 GEMM (half of BF16's), else `bytes`.
  double gemm_input_bytes(double bytes) const { return d_.fp8 ? bytes / 2 : bytes; }
  // A GEMM whose output is reduced over the TP group (all-reduce, reduce-scatter with SP), the
  // next compute op waiting for the reduction; with the TP-communication overlap Transformer
  // Engine's pipelined reduce-scatter: the GEMM in kReduceScatterSplits chunks along m, each
  // chunk's reduce-scatter issued when the chunk is done. With chunk time g and reduce-scatter
  // piece time c over n chunks: n g + c when c <= g, g + n c when c >= g.
  void reduced_gemm(OpLabel label, int64_t m, int64_t n, int64_t k, OpLabel reduce);
  // TP collective that the next compute op waits for; nothing when t = 1.
  void tp_blocking(OpKind kind, OpLabel label, double bytes);
  void column_parallel_backward(OpLabel dgrad, OpLabel wgrad, OpLabel input_gather, OpLabel reduce,
                                OpLabel cast, int64_t out_features);
  double residual_bytes(bool backward) const;
  double norm_bytes(bool backward) const { return (backward ? 3 : 2) * s_.activation_bytes_sp(); }
  // Grouped-query attention with the fused core copies the query heads into their own tensor
  // (attn.split, forward and backward), as Megatron-Core's reshape of the query does.
  bool splits_queries() const;
  double split_bytes() const;
  double rope_bytes() const;
  void set_layer(int64_t layer, Pass pass);

  OpEmitter& emit_;
  const LayerShapes& s_;
  const ModelDims& d_;
  spec::Recompute recompute_;
  spec::Attention attention_ = spec::ATTENTION_FLASH;
  int32_t tp_nodes_ = 1;
  int32_t cp_nodes_ = 1;
};

}  // namespace mpsim::graph
