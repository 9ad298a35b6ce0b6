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
  int64_t tokens = 0;       // micro_batch * seq
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

  double activation_bytes() const { return static_cast<double>(tokens) * h * e; }
  double activation_bytes_sp() const { return static_cast<double>(tokens_sp) * h * e; }
};
LayerShapes layer_shapes(const ModelDims& dims, const spec::ParallelConfig& config,
                         int64_t padded_vocab);

class LayerOps {
 public:
  // `tp_nodes`: distinct nodes the emitting rank's TP group spans.
  LayerOps(OpEmitter& emit, const LayerShapes& shapes, const ModelDims& dims,
           spec::Recompute recompute, int32_t tp_nodes)
      : emit_(emit), s_(shapes), d_(dims), recompute_(recompute), tp_nodes_(tp_nodes) {}

  // A layer's forward, or its recomputed forward (pass kRecompute).
  void forward_layer(int64_t layer, Pass pass);
  // A layer's backward, preceded by its recomputation under full recompute.
  void backward_layer(int64_t layer);
  void embedding(bool backward);
  void head(bool backward);

 private:
  OpVertex gemm(OpLabel label, int64_t m, int64_t n, int64_t k);
  OpVertex memory_op(OpKind kind, OpLabel label, double bytes, double flops = 0);
  OpVertex attention(bool backward);
  // TP collective, issued asynchronously: the caller waits on the vertex where it is needed.
  OpVertex tp_async(OpKind kind, OpLabel label, double bytes);
  // TP collective that the next compute op waits for; nothing when t = 1.
  void tp_blocking(OpKind kind, OpLabel label, double bytes);
  void column_parallel_backward(OpLabel dgrad, OpLabel wgrad, OpLabel input_gather, OpLabel reduce,
                                int64_t out_features);
  double residual_bytes(bool backward) const;
  double norm_bytes(bool backward) const { return (backward ? 3 : 2) * s_.activation_bytes_sp(); }
  double rope_bytes() const;
  void set_layer(int64_t layer, Pass pass);

  OpEmitter& emit_;
  const LayerShapes& s_;
  const ModelDims& d_;
  spec::Recompute recompute_;
  int32_t tp_nodes_ = 1;
};

}  // namespace mpsim::graph
