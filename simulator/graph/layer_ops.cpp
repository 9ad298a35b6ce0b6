#include "simulator/graph/layer_ops.h"

#include <algorithm>

namespace mpsim::graph {
namespace {

constexpr double kLossGatherBytes = 12;  // per token and TP rank: max, sum of exp, target logit
constexpr double kLseBytes = 4;          // flash attention's fp32 log-sum-exp per head and query
// s x s tensors moved through HBM by the unfused core (see attention_core_work()).
constexpr double kUnfusedForwardScorePasses = 4;
constexpr double kUnfusedBackwardScorePasses = 7;
constexpr double kFlashBackwardWork = 2.5;  // five products against the forward's two
// Transformer Engine's userbuffers default for the pipelined GEMM + reduce-scatter (num_splits).
constexpr int64_t kReduceScatterSplits = 4;
// FP8 quantisation traffic per element (Transformer Engine 1.x on Hopper, whose FP8 GEMMs take
// only the "TN" layout, so a wgrad or dgrad operand needs a transposed FP8 copy): a cast reads
// BF16 and writes FP8 (3 bytes); a fused cast + transpose writes both copies (4); a transpose of
// an FP8 tensor reads and writes one byte each (2).
constexpr double kCastBytes = 3, kCastTransposeBytes = 4, kTransposeBytes = 2;

}  // namespace

LayerShapes layer_shapes(const ModelDims& d, const spec::ParallelConfig& config,
                         int64_t padded_vocab) {
  LayerShapes s;
  const int64_t t = config.tensor_parallel();
  s.micro_batch = config.micro_batch_size();
  s.sp = config.sequence_parallel();
  s.tp_comm_overlap = config.tp_comm_overlap() && s.sp && t > 1;
  s.cp = std::max<int64_t>(1, config.context_parallel());
  s.tokens = config.micro_batch_size() * d.seq / s.cp;
  s.tokens_sp = s.sp ? s.tokens / t : s.tokens;
  s.h = d.hidden;
  s.t = t;
  s.qkv_out = (d.hidden + 2 * d.kv_heads * d.head_dim) / t;
  s.ffn = d.ffn / t;
  s.fc1_out = d.swiglu ? 2 * s.ffn : s.ffn;
  s.heads = d.heads / t;
  s.kv_dim = d.kv_heads * d.head_dim / t;
  s.vocab = padded_vocab / t;
  s.e = d.bytes_per_element;
  return s;
}

OpLabel attention_core_label(spec::Attention attention) {
  return is_flash(attention) ? OpLabel::kAttnFlash : OpLabel::kAttnCore;
}

AttentionWork attention_core_work(bool flash, bool backward, int64_t batch_heads, int64_t seq,
                                  int64_t head_dim, double qkv, double out, double e) {
  const double bh = static_cast<double>(batch_heads), s = static_cast<double>(seq),
               d = static_cast<double>(head_dim);
  AttentionWork w;
  if (flash) {
    const double forward = 2 * bh * s * (s + 1) * d;
    const double lse = kLseBytes * bh * s;
    w.flops = backward ? kFlashBackwardWork * forward : forward;
    w.bytes = backward ? (2 * qkv + 2 * out) * e + lse : (qkv + out) * e + lse;
    return w;
  }
  const double forward = 4 * bh * s * s * d;
  const double scores = bh * s * s * e;
  w.flops = backward ? 2 * forward : forward;
  w.bytes = backward ? (2 * (qkv + out) + out) * e + kUnfusedBackwardScorePasses * scores
                     : (qkv + out) * e + kUnfusedForwardScorePasses * scores;
  return w;
}

OpVertex LayerOps::gemm(OpLabel label, int64_t m, int64_t n, int64_t k, int part, int parts) {
  Op op = emit_.make(OpKind::kGemm, label);
  op.part = static_cast<uint8_t>(part);
  op.parts = static_cast<uint8_t>(parts);
  op.gemm = {m, n, k};
  op.flops = 2.0 * m * n * k;
  // The layers' linear GEMMs run in FP8 under the FP8 recipe (not the LM head's).
  op.fp8 = d_.fp8 && op.site == Site::kLayer;
  const double in = op.fp8 ? 1 : s_.e;
  op.bytes = (static_cast<double>(m) * k + static_cast<double>(k) * n) * in +
             static_cast<double>(m) * n * s_.e;
  return emit_.compute(op);
}

void LayerOps::fp8_cast(OpLabel label, double bytes) {
  if (d_.fp8) memory_op(OpKind::kElementwise, label, bytes);
}

OpVertex LayerOps::memory_op(OpKind kind, OpLabel label, double bytes, double flops) {
  Op op = emit_.make(kind, label);
  op.bytes = bytes;
  op.flops = flops;
  return emit_.compute(op);
}

template <typename Send, typename Piece>
void LayerOps::ring(int pieces, Send send, Piece piece) {
  // Every step is issued with the first piece, not after the piece before it has run.
  const OpVertex issued_after = emit_.last_compute();
  OpVertex arrived = kNoOp;
  for (int i = 0; i < pieces; ++i) {
    OpVertex sent = kNoOp;
    if (i + 1 < pieces) {
      const OpVertex computed = emit_.last_compute();
      emit_.set_last_compute(issued_after);
      sent = send(i);
      emit_.set_last_compute(computed);
    }
    if (arrived != kNoOp) emit_.wait(arrived);
    piece(i);
    arrived = sent;
  }
}

void LayerOps::attention_block(bool backward, int part, int parts, double work_share) {
  Op op = emit_.make(OpKind::kAttention, attention_core_label(attention_));
  op.part = static_cast<uint8_t>(part);
  op.parts = static_cast<uint8_t>(parts);
  op.attn_batch_heads = s_.micro_batch * s_.heads;
  op.attn_group = static_cast<uint8_t>(d_.heads / d_.kv_heads);
  // A block's shape as a table looks it up: the local queries against one K/V chunk.
  op.attn_seq = d_.seq / s_.cp;
  op.attn_head_dim = d_.head_dim;
  // The whole sequence's core on this rank's heads; each block moves its queries, one K/V chunk
  // and its output (1/cp of the whole's bytes) and does work_share of its FLOPs.
  const double tokens = static_cast<double>(s_.tokens * s_.cp);
  const double qkv = tokens * (s_.heads * d_.head_dim + 2 * s_.kv_dim);
  const double out = tokens * s_.heads * d_.head_dim;
  const AttentionWork work = attention_core_work(
      is_flash(attention_), backward, op.attn_batch_heads, d_.seq, d_.head_dim, qkv, out, s_.e);
  op.flops = work.flops * work_share;
  op.bytes = work.bytes / static_cast<double>(s_.cp);
  emit_.compute(op);
}

void LayerOps::attention(bool backward) {
  const int cp = static_cast<int>(s_.cp);
  if (cp == 1) {
    attention_block(backward, 0, 1, 1.0);
    return;
  }
  // K and V of the local tokens (backward: with their gradients) per ring step.
  const double kv_bytes = 2.0 * static_cast<double>(s_.tokens) * s_.kv_dim * s_.e;
  const double step_bytes = backward ? 2 * kv_bytes : kv_bytes;
  ring(
      cp,
      [&](int i) {
        Op op = emit_.make(OpKind::kSend, attention_core_label(attention_));
        op.group = Group::kCp;
        op.bytes = step_bytes;
        op.group_size = 2;
        op.group_nodes = cp_nodes_ > 1 ? 2 : 1;
        op.part = static_cast<uint8_t>(i);
        op.parts = static_cast<uint8_t>(cp - 1);
        return emit_.communicate(op, Stream::kCpComm);
      },
      [&](int i) { attention_block(backward, i, cp, 1.0 / (static_cast<double>(cp) * cp)); });
}

OpVertex LayerOps::tp_async(OpKind kind, OpLabel label, double bytes, int part, int parts) {
  Op op = emit_.make(kind, label);
  op.group = Group::kTp;
  op.bytes = bytes;
  // A ring step is a transfer to one neighbour; the TP group still links it across its ranks.
  op.group_size = kind == OpKind::kSend ? 2 : static_cast<int32_t>(s_.t);
  op.group_nodes = tp_nodes_;
  op.part = static_cast<uint8_t>(part);
  op.parts = static_cast<uint8_t>(parts);
  return emit_.communicate(op, Stream::kTpComm);
}

void LayerOps::gathered_gemm(OpLabel gather, OpLabel label, int64_t m, int64_t n, int64_t k,
                             double gather_bytes, OpLabel cast, double cast_bytes) {
  if (!s_.tp_comm_overlap) {
    if (s_.sp) tp_blocking(OpKind::kAllGather, gather, gather_bytes);
    if (cast != OpLabel::kNone) fp8_cast(cast, cast_bytes);
    gemm(label, m, n, k);
    return;
  }
  if (cast != OpLabel::kNone) fp8_cast(cast, cast_bytes);
  const int t = static_cast<int>(s_.t);
  ring(
      t, [&](int i) { return tp_async(OpKind::kSend, gather, gather_bytes / t, i, t - 1); },
      [&](int i) { gemm(label, m / t, n, k, i, t); });
}

void LayerOps::reduced_gemm(OpLabel label, int64_t m, int64_t n, int64_t k, OpLabel reduce) {
  const OpKind kind = s_.sp ? OpKind::kReduceScatter : OpKind::kAllReduce;
  if (!s_.tp_comm_overlap) {
    gemm(label, m, n, k);
    tp_blocking(kind, reduce, s_.activation_bytes());
    return;
  }
  // Each chunk's rows must split evenly over the TP group.
  int64_t splits = kReduceScatterSplits;
  while (splits > 1 && m % (splits * s_.t) != 0) splits /= 2;
  const int parts = static_cast<int>(splits);
  OpVertex reduced = kNoOp;
  for (int j = 0; j < parts; ++j) {
    gemm(label, m / splits, n, k, j, parts);
    reduced = tp_async(kind, reduce, s_.activation_bytes() / parts, j, parts);
  }
  emit_.wait(reduced);
}

void LayerOps::tp_blocking(OpKind kind, OpLabel label, double bytes) {
  if (s_.t > 1) emit_.wait(tp_async(kind, label, bytes));
}

double LayerOps::residual_bytes(bool backward) const {
  const double mask = d_.dropout > 0 ? 1.0 : 0.0;  // one byte per element
  return static_cast<double>(s_.tokens_sp) * s_.h * ((backward ? 2 : 3) * s_.e + mask);
}

bool LayerOps::splits_queries() const { return is_flash(attention_) && d_.kv_heads < d_.heads; }

// The query heads read from the QKV rows and written to their own tensor (backward: the
// gradient's way back).
double LayerOps::split_bytes() const { return 2.0 * s_.tokens * s_.heads * d_.head_dim * s_.e; }

double LayerOps::rope_bytes() const {
  return 2.0 * s_.tokens * (s_.heads * d_.head_dim + s_.kv_dim) * s_.e;
}

void LayerOps::set_layer(int64_t layer, Pass pass) {
  Op& ctx = emit_.context();
  ctx.site = Site::kLayer;
  ctx.layer = static_cast<int32_t>(layer);
  ctx.pass = pass;
}

void LayerOps::forward_layer(int64_t layer, Pass pass) {
  set_layer(layer, pass);
  const bool sp = s_.sp;
  const double act = s_.activation_bytes();
  const double tokens = static_cast<double>(s_.tokens);
  const int64_t attn_width = s_.heads * d_.head_dim;
  // FP8: the norms write the QKV and fc1 inputs in FP8 themselves (Transformer Engine's
  // LayerNormLinear); the projection and fc2 inputs are cast.
  memory_op(OpKind::kNorm, OpLabel::kAttnNorm, norm_bytes(false));
  gathered_gemm(OpLabel::kAttnAllGather, OpLabel::kAttnQkv, s_.tokens, s_.qkv_out, s_.h,
                gemm_input_bytes(act));
  if (d_.rotary) memory_op(OpKind::kElementwise, OpLabel::kAttnRope, rope_bytes());
  if (splits_queries()) memory_op(OpKind::kElementwise, OpLabel::kAttnSplit, split_bytes());
  attention(false);
  fp8_cast(OpLabel::kAttnProjCast, kCastBytes * tokens * attn_width);
  reduced_gemm(OpLabel::kAttnProj, s_.tokens, s_.h, attn_width,
               sp ? OpLabel::kAttnReduceScatter : OpLabel::kAttnAllReduce);
  memory_op(OpKind::kElementwise, OpLabel::kAttnResidual, residual_bytes(false));
  memory_op(OpKind::kNorm, OpLabel::kMlpNorm, norm_bytes(false));
  gathered_gemm(OpLabel::kMlpAllGather, OpLabel::kMlpFc1, s_.tokens, s_.fc1_out, s_.h,
                gemm_input_bytes(act));
  memory_op(OpKind::kElementwise, OpLabel::kMlpAct,
            static_cast<double>(s_.tokens) * (s_.fc1_out + s_.ffn) * s_.e);
  fp8_cast(OpLabel::kMlpFc2Cast, kCastBytes * tokens * s_.ffn);
  reduced_gemm(OpLabel::kMlpFc2, s_.tokens, s_.h, s_.ffn,
               sp ? OpLabel::kMlpReduceScatter : OpLabel::kMlpAllReduce);
  memory_op(OpKind::kElementwise, OpLabel::kMlpResidual, residual_bytes(false));
}

// Backward of a column-parallel linear (QKV, fc1): data gradient, its TP reduction overlapped
// with the weight gradient (Megatron's async gradient all-reduce); with SP the input is
// re-gathered during the data-gradient GEMM.
void LayerOps::column_parallel_backward(OpLabel dgrad, OpLabel wgrad, OpLabel input_gather,
                                        OpLabel reduce, OpLabel cast, int64_t out_features) {
  OpVertex gather = kNoOp;
  // The saved input is FP8 under the FP8 recipe, and is re-gathered so.
  if (s_.sp)
    gather = tp_async(OpKind::kAllGather, input_gather, gemm_input_bytes(s_.activation_bytes()));
  // FP8: the output gradient cast and transposed, the input transposed for the wgrad.
  const double tokens = static_cast<double>(s_.tokens);
  fp8_cast(cast, tokens * (kCastTransposeBytes * out_features + kTransposeBytes * s_.h));
  gemm(dgrad, s_.tokens, s_.h, out_features);
  OpVertex reduction = kNoOp;
  if (s_.t > 1) {
    if (s_.sp) emit_.wait(gather);
    reduction = tp_async(s_.sp ? OpKind::kReduceScatter : OpKind::kAllReduce, reduce,
                         s_.activation_bytes());
  }
  gemm(wgrad, out_features, s_.h, s_.tokens);
  if (reduction != kNoOp) emit_.wait(reduction);
}

void LayerOps::backward_layer(int64_t layer) {
  if (recompute_ == spec::RECOMPUTE_FULL) forward_layer(layer, Pass::kRecompute);
  set_layer(layer, Pass::kBackward);
  const bool sp = s_.sp;
  const double act = s_.activation_bytes();
  const double tokens = static_cast<double>(s_.tokens);
  const int64_t attn_width = s_.heads * d_.head_dim;
  // FP8: the gathered output gradient of the projection and fc2 cast and transposed, their
  // saved inputs transposed for the wgrad; the gradients are gathered in BF16.
  memory_op(OpKind::kElementwise, OpLabel::kMlpResidual, residual_bytes(true));
  gathered_gemm(OpLabel::kMlpAllGather, OpLabel::kMlpFc2Dgrad, s_.tokens, s_.ffn, s_.h, act,
                OpLabel::kMlpFc2Cast,
                tokens * (kCastTransposeBytes * s_.h + kTransposeBytes * s_.ffn));
  gemm(OpLabel::kMlpFc2Wgrad, s_.h, s_.ffn, s_.tokens);
  memory_op(OpKind::kElementwise, OpLabel::kMlpAct,
            static_cast<double>(s_.tokens) * (2 * s_.fc1_out + s_.ffn) * s_.e);
  column_parallel_backward(
      OpLabel::kMlpFc1Dgrad, OpLabel::kMlpFc1Wgrad, OpLabel::kMlpInputAllGather,
      sp ? OpLabel::kMlpReduceScatter : OpLabel::kMlpAllReduce, OpLabel::kMlpFc1Cast, s_.fc1_out);
  memory_op(OpKind::kNorm, OpLabel::kMlpNorm, norm_bytes(true));
  memory_op(OpKind::kElementwise, OpLabel::kAttnResidual, residual_bytes(true));
  gathered_gemm(OpLabel::kAttnAllGather, OpLabel::kAttnProjDgrad, s_.tokens, attn_width, s_.h, act,
                OpLabel::kAttnProjCast,
                tokens * (kCastTransposeBytes * s_.h + kTransposeBytes * attn_width));
  gemm(OpLabel::kAttnProjWgrad, s_.h, attn_width, s_.tokens);
  if (recompute_ == spec::RECOMPUTE_SELECTIVE) {
    emit_.context().pass = Pass::kRecompute;
    attention(false);
    emit_.context().pass = Pass::kBackward;
  }
  attention(true);
  if (splits_queries()) memory_op(OpKind::kElementwise, OpLabel::kAttnSplit, split_bytes());
  if (d_.rotary) memory_op(OpKind::kElementwise, OpLabel::kAttnRope, rope_bytes());
  column_parallel_backward(OpLabel::kAttnQkvDgrad, OpLabel::kAttnQkvWgrad,
                           OpLabel::kAttnInputAllGather,
                           sp ? OpLabel::kAttnReduceScatter : OpLabel::kAttnAllReduce,
                           OpLabel::kAttnQkvCast, s_.qkv_out);
  memory_op(OpKind::kNorm, OpLabel::kAttnNorm, norm_bytes(true));
}

void LayerOps::embedding(bool backward) {
  Op& ctx = emit_.context();
  ctx.site = Site::kEmbedding;
  ctx.layer = -1;
  const double positions = d_.learned_positions ? 1 : 0;
  const double act = s_.activation_bytes();
  if (!backward) {
    memory_op(OpKind::kElementwise, OpLabel::kLookup, (2 + positions) * act);
    tp_blocking(s_.sp ? OpKind::kReduceScatter : OpKind::kAllReduce,
                s_.sp ? OpLabel::kReduceScatter : OpLabel::kAllReduce, act);
  } else {
    if (s_.sp) tp_blocking(OpKind::kAllGather, OpLabel::kAllGather, act);
    memory_op(OpKind::kElementwise, OpLabel::kLookup, (3 + positions) * act);
  }
}

void LayerOps::head(bool backward) {
  Op& ctx = emit_.context();
  ctx.site = Site::kHead;
  ctx.layer = -1;
  const double logits = static_cast<double>(s_.tokens) * s_.vocab;
  const double act = s_.activation_bytes();
  if (!backward) {
    memory_op(OpKind::kNorm, OpLabel::kNorm, norm_bytes(false));
    if (s_.sp) tp_blocking(OpKind::kAllGather, OpLabel::kAllGather, act);
    gemm(OpLabel::kLogits, s_.tokens, s_.vocab, s_.h);
    memory_op(OpKind::kLoss, OpLabel::kLoss, logits * s_.e + s_.tokens * 4.0, 4 * logits);
    tp_blocking(OpKind::kAllGather, OpLabel::kLossAllGather, s_.tokens * kLossGatherBytes * s_.t);
    return;
  }
  memory_op(OpKind::kLoss, OpLabel::kLoss, 2 * logits * s_.e, 2 * logits);
  gemm(OpLabel::kLogitsDgrad, s_.tokens, s_.h, s_.vocab);
  OpVertex reduction = kNoOp;
  if (s_.t > 1)
    reduction = tp_async(s_.sp ? OpKind::kReduceScatter : OpKind::kAllReduce,
                         s_.sp ? OpLabel::kReduceScatter : OpLabel::kAllReduce, act);
  gemm(OpLabel::kLogitsWgrad, s_.vocab, s_.h, s_.tokens);
  if (reduction != kNoOp) emit_.wait(reduction);
  memory_op(OpKind::kNorm, OpLabel::kNorm, norm_bytes(true));
}

}  // namespace mpsim::graph
