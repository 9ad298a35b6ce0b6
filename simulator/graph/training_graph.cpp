#include "simulator/graph/training_graph.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "simulator/schedule/pipeline_schedule.h"

namespace mpsim::graph {
namespace {

constexpr double kGradBytes = 4;           // Megatron reduces bf16 models' gradients in fp32
constexpr double kAdamBytesPerParam = 30;  // grad 4 + (master, m, v) read+write 24 + bf16 param 2
constexpr double kAdamFlopsPerParam = 12;
constexpr double kLossGatherBytes =
    12;  // per token and TP rank: max, sum of exp, target logit (fp32)

// Sizes of one micro-batch on one rank.
struct LocalSizes {
  int64_t tokens = 0;     // b * s
  int64_t tokens_sp = 0;  // tokens held by one rank between TP regions (tokens / t with SP)
  int64_t h = 0, t = 1;
  int64_t qkv_out = 0;  // (h + 2 * kv * head_dim) / t
  int64_t fc1_out = 0;  // ffn / t (2 * ffn / t for SwiGLU)
  int64_t ffn = 0;      // ffn / t
  int64_t heads = 0;    // heads / t
  int64_t kv_dim = 0;   // kv * head_dim / t
  int64_t vocab = 0;    // padded vocab / t
  double e = 2;         // bytes per element
};

// A comm group's identity for linking the ops of one collective across simulated ranks.
struct CollectiveKey {
  uint64_t value;
  bool operator==(const CollectiveKey&) const = default;
};
struct CollectiveKeyHash {
  size_t operator()(CollectiveKey k) const { return std::hash<uint64_t>()(k.value); }
};

class Builder {
 public:
  Builder(const spec::ModelSpec& model, const spec::ParallelConfig& config,
          const GraphOptions& options)
      : config_(config),
        options_(options),
        estimate_ops_(estimate_ops(model, config, options)),
        sink_(&main_sink_) {
    out_.dims = model_dims(model);
    const ModelDims& d = out_.dims;
    t_ = config.tensor_parallel();
    p_ = config.pipeline_parallel();
    dp_ = config.data_parallel();
    v_ = std::max<int64_t>(1, config.virtual_pipeline_stages());
    m_ = config.global_batch_size() / (config.micro_batch_size() * dp_);
    sp_ = config.sequence_parallel();
    zero_ = config.zero_stage();
    interleaved_ = config.schedule() == spec::INTERLEAVED_1F1B;
    layers_per_chunk_ = d.layers / (p_ * v_);
    out_.micro_batches = m_;
    out_.padded_vocab = padded_vocab(d.vocab, t_);

    s_.tokens = config.micro_batch_size() * d.seq;
    s_.tokens_sp = sp_ ? s_.tokens / t_ : s_.tokens;
    s_.h = d.hidden;
    s_.t = t_;
    s_.qkv_out = (d.hidden + 2 * d.kv_heads * d.head_dim) / t_;
    s_.ffn = d.ffn / t_;
    s_.fc1_out = d.swiglu ? 2 * s_.ffn : s_.ffn;
    s_.heads = d.heads / t_;
    s_.kv_dim = d.kv_heads * d.head_dim / t_;
    s_.vocab = out_.padded_vocab / t_;
    s_.e = d.bytes_per_element;
    layer_params_local_ = static_cast<double>(layer_parameters_local(d, t_));
  }

  TrainingGraph build() {
    if (options_.all_ranks) {
      for (int32_t pp = 0; pp < p_; ++pp)
        for (int32_t dp = 0; dp < dp_; ++dp)
          for (int32_t tp = 0; tp < t_; ++tp) out_.ranks.push_back(coord(tp, dp, pp));
    } else {
      for (int32_t pp = 0; pp < p_; ++pp) out_.ranks.push_back(coord(0, 0, pp));
    }
    const size_t slots = options_.all_ranks ? static_cast<size_t>(t_ * dp_) : 1;
    sends_.assign(slots * p_ * v_ * m_ * 2, SendEnd{});
    // Reserving avoids re-copying every vertex's edge lists as the graph grows (a folded graph
    // is small enough not to need it).
    size_t reserve = static_cast<size_t>(std::min(estimate_ops_, kMaxOps));
    if (fold_enabled()) {
      // A step block and a send per step, the unfolded last backward under DP, step ops.
      const size_t ranks = out_.ranks.size();
      reserve = ranks *
                static_cast<size_t>(4 * m_ * v_ + (dp_ > 1 ? 48 * v_ * layers_per_chunk_ : 0) + 64);
    }
    main_sink_.ops.reserve(reserve);
    main_sink_.edges.reserve(reserve);
    main_sink_.delays.reserve(reserve);
    for (size_t r = 0; r < out_.ranks.size(); ++r) build_rank(static_cast<int32_t>(r));
    for (const auto& [key, vertex] : pending_recvs_) {
      const SendEnd& send = sends_[key];
      if (send.vertex == kNoOp) throw std::logic_error("pipeline send missing");
      main_sink_.edge(send.vertex, vertex, send.delay);
    }
    out_.graph = make_op_graph(std::move(main_sink_.ops), main_sink_.edges, main_sink_.delays);
    out_.num_collectives = static_cast<int32_t>(collectives_.size());
    return std::move(out_);
  }

 private:
  // ---- placement -------------------------------------------------------------------------
  RankCoord coord(int32_t tp, int32_t dp, int32_t pp) const {
    RankCoord c;
    c.tp = tp;
    c.dp = dp;
    c.pp = pp;
    c.global_rank = global_rank(config_, tp, dp, pp);
    c.node = static_cast<int32_t>(c.global_rank / options_.gpus_per_node);
    return c;
  }
  int32_t node_of(int32_t tp, int32_t dp, int32_t pp) const {
    return static_cast<int32_t>(global_rank(config_, tp, dp, pp) / options_.gpus_per_node);
  }
  int32_t nodes_spanned_tp(const RankCoord& c) const {
    std::set<int32_t> nodes;
    for (int32_t i = 0; i < t_; ++i) nodes.insert(node_of(i, c.dp, c.pp));
    return static_cast<int32_t>(nodes.size());
  }
  int32_t nodes_spanned_dp(const RankCoord& c) const {
    std::set<int32_t> nodes;
    for (int32_t i = 0; i < dp_; ++i) nodes.insert(node_of(c.tp, i, c.pp));
    return static_cast<int32_t>(nodes.size());
  }

  // ---- op emission -----------------------------------------------------------------------
  Op make(OpKind kind, std::string_view label) const {
    Op op = ctx_;
    op.kind = kind;
    op.label = label;
    op.rank = rank_;
    return op;
  }

  OpVertex add(const Op& op) {
    if (++op_count_ > kMaxOps) {
      throw std::length_error("configuration too large to simulate: more than " +
                              std::to_string(kMaxOps) + " ops");
    }
    sink_->ops.push_back(op);
    return static_cast<OpVertex>(sink_->ops.size() - 1);
  }

  // A compute op on the compute stream; waits for everything registered with wait().
  OpVertex compute(Op op) {
    op.stream = Stream::kCompute;
    const OpVertex v = add(op);
    for (OpVertex w : waits_) sink_->edge(w, v);
    waits_.clear();
    if (recv_key_ >= 0) {
      pending_recvs_.emplace_back(static_cast<size_t>(recv_key_), v);
      recv_key_ = -1;
    }
    last_compute_ = v;
    return v;
  }

  // A communication op issued after the last compute op; nothing waits for it until wait().
  OpVertex communicate(Op op, Stream stream) {
    op.stream = stream;
    link_collective(op);
    const OpVertex v = add(op);
    if (last_compute_ != kNoOp) sink_->edge(last_compute_, v);
    return v;
  }

  void wait(OpVertex v) { waits_.push_back(v); }

  void link_collective(Op& op) {
    int64_t group_index = 0;
    int64_t members_simulated = 1;
    const RankCoord& c = out_.ranks[rank_];
    switch (op.group) {
      case Group::kTp:
        group_index = c.dp * p_ + c.pp;
        members_simulated = options_.all_ranks ? t_ : 1;
        break;
      case Group::kDp:
        group_index = c.tp * p_ + c.pp;
        members_simulated = options_.all_ranks ? dp_ : 1;
        break;
      case Group::kEmbedding:
        group_index = c.tp * dp_ + c.dp;
        members_simulated = 2;
        break;
      default:
        return;
    }
    const uint64_t sequence =
        static_cast<uint64_t>(collective_sequence_[static_cast<int>(op.group)]++);
    if (members_simulated < 2) return;
    const CollectiveKey key{(static_cast<uint64_t>(op.group) << 60) |
                            (static_cast<uint64_t>(group_index) << 36) | sequence};
    auto [it, inserted] = collectives_.try_emplace(key, static_cast<int32_t>(collectives_.size()));
    op.collective = it->second;
  }

  OpVertex gemm(std::string_view label, int64_t m, int64_t n, int64_t k) {
    Op op = make(OpKind::kGemm, label);
    op.gemm = {m, n, k};
    op.flops = 2.0 * m * n * k;
    op.bytes =
        (static_cast<double>(m) * k + static_cast<double>(k) * n + static_cast<double>(m) * n) *
        s_.e;
    return compute(op);
  }

  OpVertex memory_op(OpKind kind, std::string_view label, double bytes, double flops = 0) {
    Op op = make(kind, label);
    op.bytes = bytes;
    op.flops = flops;
    return compute(op);
  }

  OpVertex attention(bool backward) {
    const ModelDims& d = out_.dims;
    Op op = make(OpKind::kAttention, "attn.core");
    op.attn_batch_heads = config_.micro_batch_size() * s_.heads;
    op.attn_seq = d.seq;
    op.attn_head_dim = d.head_dim;
    const double forward =
        4.0 * static_cast<double>(op.attn_batch_heads) * d.seq * d.seq * d.head_dim;
    // The published FLOP counts take the backward pass as twice the forward.
    op.flops = backward ? 2 * forward : forward;
    const double qkv = static_cast<double>(s_.tokens) * (s_.heads * d.head_dim + 2 * s_.kv_dim);
    const double out = static_cast<double>(s_.tokens) * s_.heads * d.head_dim;
    op.bytes = (backward ? 2 * (qkv + out) + out : qkv + out) * s_.e;
    return compute(op);
  }

  // TP collective; blocking unless the caller keeps the vertex and waits later.
  OpVertex tp_async(OpKind kind, std::string_view label, double bytes) {
    Op op = make(kind, label);
    op.group = Group::kTp;
    op.bytes = bytes;
    op.group_size = static_cast<int32_t>(t_);
    op.group_nodes = tp_nodes_;
    return communicate(op, Stream::kTpComm);
  }
  void tp_blocking(OpKind kind, std::string_view label, double bytes) {
    if (t_ > 1) wait(tp_async(kind, label, bytes));
  }
  double activation_bytes() const { return static_cast<double>(s_.tokens) * s_.h * s_.e; }
  double activation_bytes_sp() const { return static_cast<double>(s_.tokens_sp) * s_.h * s_.e; }
  double residual_bytes(bool backward) const {
    const double mask = out_.dims.dropout > 0 ? 1.0 : 0.0;  // one byte per element
    return static_cast<double>(s_.tokens_sp) * s_.h * ((backward ? 2 : 3) * s_.e + mask);
  }
  double norm_bytes(bool backward) const { return (backward ? 3 : 2) * activation_bytes_sp(); }

  // ---- layers ----------------------------------------------------------------------------
  void forward_layer(int64_t layer, Pass pass) {
    ctx_.site = Site::kLayer;
    ctx_.layer = static_cast<int32_t>(layer);
    ctx_.pass = pass;
    const ModelDims& d = out_.dims;
    memory_op(OpKind::kNorm, "attn.norm", norm_bytes(false));
    if (sp_) tp_blocking(OpKind::kAllGather, "attn.allgather", activation_bytes());
    gemm("attn.qkv", s_.tokens, s_.qkv_out, s_.h);
    if (rotary_)
      memory_op(OpKind::kElementwise, "attn.rope",
                2.0 * s_.tokens * (s_.heads * d.head_dim + s_.kv_dim) * s_.e);
    attention(false);
    gemm("attn.proj", s_.tokens, s_.h, s_.heads * d.head_dim);
    tp_blocking(sp_ ? OpKind::kReduceScatter : OpKind::kAllReduce,
                sp_ ? "attn.reducescatter" : "attn.allreduce", activation_bytes());
    memory_op(OpKind::kElementwise, "attn.residual", residual_bytes(false));
    memory_op(OpKind::kNorm, "mlp.norm", norm_bytes(false));
    if (sp_) tp_blocking(OpKind::kAllGather, "mlp.allgather", activation_bytes());
    gemm("mlp.fc1", s_.tokens, s_.fc1_out, s_.h);
    memory_op(OpKind::kElementwise, "mlp.act",
              static_cast<double>(s_.tokens) * (s_.fc1_out + s_.ffn) * s_.e);
    gemm("mlp.fc2", s_.tokens, s_.h, s_.ffn);
    tp_blocking(sp_ ? OpKind::kReduceScatter : OpKind::kAllReduce,
                sp_ ? "mlp.reducescatter" : "mlp.allreduce", activation_bytes());
    memory_op(OpKind::kElementwise, "mlp.residual", residual_bytes(false));
  }

  // Backward of a column-parallel linear (QKV, fc1): data gradient, its TP reduction overlapped
  // with the weight gradient (Megatron's async gradient all-reduce); with SP the input is
  // re-gathered during the data-gradient GEMM.
  void column_parallel_backward(std::string_view dgrad, std::string_view wgrad,
                                std::string_view input_gather, std::string_view reduce,
                                int64_t out_features) {
    OpVertex gather = kNoOp;
    if (sp_) gather = tp_async(OpKind::kAllGather, input_gather, activation_bytes());
    gemm(dgrad, s_.tokens, s_.h, out_features);
    OpVertex reduction = kNoOp;
    if (t_ > 1) {
      if (sp_) wait(gather);
      reduction =
          tp_async(sp_ ? OpKind::kReduceScatter : OpKind::kAllReduce, reduce, activation_bytes());
    }
    gemm(wgrad, out_features, s_.h, s_.tokens);
    if (reduction != kNoOp) wait(reduction);
  }

  void backward_layer(int64_t layer) {
    if (recompute_ == spec::RECOMPUTE_FULL) forward_layer(layer, Pass::kRecompute);
    ctx_.site = Site::kLayer;
    ctx_.layer = static_cast<int32_t>(layer);
    ctx_.pass = Pass::kBackward;
    const ModelDims& d = out_.dims;
    memory_op(OpKind::kElementwise, "mlp.residual", residual_bytes(true));
    if (sp_) tp_blocking(OpKind::kAllGather, "mlp.allgather", activation_bytes());
    gemm("mlp.fc2.dgrad", s_.tokens, s_.ffn, s_.h);
    gemm("mlp.fc2.wgrad", s_.h, s_.ffn, s_.tokens);
    memory_op(OpKind::kElementwise, "mlp.act",
              static_cast<double>(s_.tokens) * (2 * s_.fc1_out + s_.ffn) * s_.e);
    column_parallel_backward("mlp.fc1.dgrad", "mlp.fc1.wgrad", "mlp.input.allgather",
                             sp_ ? "mlp.reducescatter" : "mlp.allreduce", s_.fc1_out);
    memory_op(OpKind::kNorm, "mlp.norm", norm_bytes(true));
    memory_op(OpKind::kElementwise, "attn.residual", residual_bytes(true));
    if (sp_) tp_blocking(OpKind::kAllGather, "attn.allgather", activation_bytes());
    const int64_t attn_width = s_.heads * d.head_dim;
    gemm("attn.proj.dgrad", s_.tokens, attn_width, s_.h);
    gemm("attn.proj.wgrad", s_.h, attn_width, s_.tokens);
    if (recompute_ == spec::RECOMPUTE_SELECTIVE) {
      ctx_.pass = Pass::kRecompute;
      attention(false);
      ctx_.pass = Pass::kBackward;
    }
    attention(true);
    if (rotary_)
      memory_op(OpKind::kElementwise, "attn.rope",
                2.0 * s_.tokens * (s_.heads * d.head_dim + s_.kv_dim) * s_.e);
    column_parallel_backward("attn.qkv.dgrad", "attn.qkv.wgrad", "attn.input.allgather",
                             sp_ ? "attn.reducescatter" : "attn.allreduce", s_.qkv_out);
    memory_op(OpKind::kNorm, "attn.norm", norm_bytes(true));
  }

  // ---- embedding and head ----------------------------------------------------------------
  void embedding(bool backward) {
    ctx_.site = Site::kEmbedding;
    ctx_.layer = -1;
    const double positions = out_.dims.learned_positions ? 1 : 0;
    if (!backward) {
      memory_op(OpKind::kElementwise, "lookup", (2 + positions) * activation_bytes());
      tp_blocking(sp_ ? OpKind::kReduceScatter : OpKind::kAllReduce,
                  sp_ ? "reducescatter" : "allreduce", activation_bytes());
    } else {
      if (sp_) tp_blocking(OpKind::kAllGather, "allgather", activation_bytes());
      memory_op(OpKind::kElementwise, "lookup", (3 + positions) * activation_bytes());
    }
  }

  void head(bool backward) {
    ctx_.site = Site::kHead;
    ctx_.layer = -1;
    const double logits = static_cast<double>(s_.tokens) * s_.vocab;
    if (!backward) {
      memory_op(OpKind::kNorm, "norm", norm_bytes(false));
      if (sp_) tp_blocking(OpKind::kAllGather, "allgather", activation_bytes());
      gemm("logits", s_.tokens, s_.vocab, s_.h);
      memory_op(OpKind::kLoss, "loss", logits * s_.e + s_.tokens * 4.0, 4 * logits);
      tp_blocking(OpKind::kAllGather, "loss.allgather", s_.tokens * kLossGatherBytes * t_);
      return;
    }
    memory_op(OpKind::kLoss, "loss", 2 * logits * s_.e, 2 * logits);
    gemm("logits.dgrad", s_.tokens, s_.h, s_.vocab);
    OpVertex reduction = kNoOp;
    if (t_ > 1)
      reduction = tp_async(sp_ ? OpKind::kReduceScatter : OpKind::kAllReduce,
                           sp_ ? "reducescatter" : "allreduce", activation_bytes());
    gemm("logits.wgrad", s_.vocab, s_.h, s_.tokens);
    if (reduction != kNoOp) wait(reduction);
    memory_op(OpKind::kNorm, "norm", norm_bytes(true));
  }

  // ---- parameters on this rank -----------------------------------------------------------
  double embedding_params() const {
    const ModelDims& d = out_.dims;
    return static_cast<double>(s_.vocab) * d.hidden +
           (d.learned_positions ? static_cast<double>(d.seq) * d.hidden : 0.0);
  }
  double head_params() const {
    const ModelDims& d = out_.dims;
    const double norm = static_cast<double>(norm_parameters(d));
    const bool own_weight = !d.tied || p_ > 1;  // tied with PP > 1: the last stage keeps a copy
    return norm + (own_weight ? static_cast<double>(s_.vocab) * d.hidden : 0.0);
  }

  // ---- data parallelism ------------------------------------------------------------------
  void grads_ready(double params) {
    if (dp_ < 2 || scratch_) return;
    if (zero_ >= 2) {  // ZeRO-2/3: gradients reduce-scattered every micro-batch
      Op op = make(OpKind::kReduceScatter, "grads.reducescatter");
      op.group = Group::kDp;
      op.bytes = params * kGradBytes;
      op.group_size = static_cast<int32_t>(dp_);
      op.group_nodes = dp_nodes_;
      dp_ops_.push_back(communicate(op, Stream::kDpComm));
      return;
    }
    if (ctx_.micro_batch == m_ - 1) ready_.push_back({params, last_compute_});
  }

  OpVertex zero3_gather() {
    Op op = make(OpKind::kAllGather, "weights.allgather");
    op.group = Group::kDp;
    op.bytes = layer_params_local_ * s_.e;
    op.group_size = static_cast<int32_t>(dp_);
    op.group_nodes = dp_nodes_;
    return communicate(op, Stream::kDpComm);
  }

  // Runs `body(layer)` over a chunk's layers; with ZeRO-3 each layer waits for its weights,
  // gathered one layer ahead.
  template <typename Body>
  void over_layers(int64_t first, int64_t count, bool reverse, Pass pass, Body body) {
    OpVertex next_gather = kNoOp;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t layer = reverse ? first + count - 1 - i : first + i;
      if (zero_ == 3 && dp_ > 1) {
        ctx_.site = Site::kLayer;
        ctx_.pass = pass;
        ctx_.layer = static_cast<int32_t>(layer);
        wait(i == 0 ? zero3_gather() : next_gather);
        if (i + 1 < count) {
          ctx_.layer = static_cast<int32_t>(reverse ? layer - 1 : layer + 1);
          next_gather = zero3_gather();
        }
      }
      body(layer);
    }
  }

  void emit_buckets(OpVertex backward_end) {
    if (dp_ < 2) return;
    const double bucket_params = static_cast<double>(config_.dp_bucket_params());
    ctx_ = Op{};
    ctx_.pass = Pass::kStep;
    double accumulated = 0;
    for (size_t i = 0; i < ready_.size(); ++i) {
      accumulated += ready_[i].params;
      if (accumulated < bucket_params && i + 1 < ready_.size()) continue;
      Op op = make(zero_ == 0 ? OpKind::kAllReduce : OpKind::kReduceScatter, "");
      op.group = Group::kDp;
      op.bucket = static_cast<int32_t>(buckets_.size());
      op.bytes = accumulated * kGradBytes;
      op.group_size = static_cast<int32_t>(dp_);
      op.group_nodes = dp_nodes_;
      last_compute_ = config_.overlap_dp_comm() ? ready_[i].vertex : backward_end;
      dp_ops_.push_back(communicate(op, Stream::kDpComm));
      buckets_.push_back(accumulated);
      accumulated = 0;
    }
    last_compute_ = backward_end;
  }

  // ---- one rank --------------------------------------------------------------------------
  void build_rank(int32_t rank) {
    rank_ = rank;
    const RankCoord& c = out_.ranks[rank];
    tp_nodes_ = nodes_spanned_tp(c);
    dp_nodes_ = nodes_spanned_dp(c);
    rotary_ = out_.dims.rotary;
    last_compute_ = kNoOp;
    waits_.clear();
    ready_.clear();
    dp_ops_.clear();
    buckets_.clear();
    collective_sequence_.fill(0);
    recompute_ = config_.recompute();

    const auto schedule = schedule::make_pipeline_schedule(
        config_.schedule(), static_cast<int>(p_), static_cast<int>(m_), static_cast<int>(v_));
    const int64_t last_vstage = p_ * v_ - 1;
    sends_as_delays_ = {false, false};
    if (fold_enabled() && p_ > 1) {
      sends_as_delays_ = {sends_fit_in_steps(false, last_vstage),
                          sends_fit_in_steps(true, last_vstage)};
    }
    const size_t slot = options_.all_ranks ? static_cast<size_t>(c.tp * dp_ + c.dp) : 0;
    auto send_index = [&](int64_t vstage, int64_t mb, bool backward) {
      return (((slot * p_ * v_ + vstage) * m_ + mb) * 2) + (backward ? 1 : 0);
    };
    double rank_params = 0;
    for (const schedule::PipelineStep& step : schedule->steps(static_cast<int>(c.pp))) {
      const int64_t vstage = step.chunk * p_ + c.pp;
      ctx_ = Op{};
      ctx_.micro_batch = step.micro_batch;
      ctx_.chunk = interleaved_ ? step.chunk : -1;
      if (step.forward && vstage > 0)
        recv_key_ = static_cast<int64_t>(send_index(vstage - 1, step.micro_batch, false));
      if (!step.forward && vstage < last_vstage)
        recv_key_ = static_cast<int64_t>(send_index(vstage + 1, step.micro_batch, true));
      if (foldable(step)) {
        emit_folded(step, vstage, last_vstage);
      } else {
        emit_step_body(step, vstage, last_vstage);
      }
      if (step.forward && vstage < last_vstage)
        send(vstage, step, false, send_index(vstage, step.micro_batch, false));
      if (!step.forward && vstage > 0)
        send(vstage, step, true, send_index(vstage, step.micro_batch, true));
      if (!step.forward && step.micro_batch == 0) {
        rank_params += layers_per_chunk_ * layer_params_local_;
        if (vstage == 0) rank_params += embedding_params();
        if (vstage == last_vstage) rank_params += head_params();
      }
    }
    step_ops(c, last_vstage, rank_params);
  }

  // The compute and TP ops of one pipeline step (no sends), in program order.
  void emit_step_body(const schedule::PipelineStep& step, int64_t vstage, int64_t last_vstage) {
    const int64_t first_layer = vstage * layers_per_chunk_;
    if (step.forward) {
      ctx_.pass = Pass::kForward;
      if (vstage == 0) embedding(false);
      over_layers(first_layer, layers_per_chunk_, false, Pass::kForward,
                  [&](int64_t layer) { forward_layer(layer, Pass::kForward); });
      if (vstage == last_vstage) head(false);
      return;
    }
    ctx_.pass = Pass::kBackward;
    if (vstage == last_vstage) {
      head(true);
      grads_ready(head_params());
    }
    over_layers(first_layer, layers_per_chunk_, true, Pass::kBackward, [&](int64_t layer) {
      backward_layer(layer);
      grads_ready(layer_params_local_);
    });
    if (vstage == 0) {
      ctx_.pass = Pass::kBackward;
      embedding(true);
      grads_ready(embedding_params());
    }
  }

  // ---- step folding (see StepFolding in the header) ---------------------------------------
  struct StepSummary {
    bool valid = false;
    double seconds = 0, alloc = 0, free = 0, flops = 0, bytes = 0;
  };

  bool fold_enabled() const {
    return options_.fold != nullptr && !options_.all_ranks && !(zero_ == 3 && dp_ > 1);
  }

  bool foldable(const schedule::PipelineStep& step) const {
    if (!fold_enabled()) return false;
    if (step.forward || dp_ < 2) return true;
    // Backward steps whose gradients DP waits on keep their ops.
    return zero_ < 2 && step.micro_batch != m_ - 1;
  }

  void emit_folded(const schedule::PipelineStep& step, int64_t vstage, int64_t last_vstage) {
    const StepSummary& summary = summary_for(step, vstage, last_vstage);
    Op op = make(OpKind::kStepBlock, "step");
    op.pass = step.forward ? Pass::kForward : Pass::kBackward;
    op.site = Site::kLayer;
    op.layer = static_cast<int32_t>(vstage * layers_per_chunk_);
    op.last_layer = static_cast<int32_t>(op.layer + layers_per_chunk_ - 1);
    op.duration_s = summary.seconds;
    op.alloc_bytes = summary.alloc;
    op.free_bytes = summary.free;
    op.flops = summary.flops;
    op.bytes = summary.bytes;
    compute(op);
  }

  // A step's timeline depends only on its kind and on how the TP group spans nodes, so one
  // evaluation serves every rank and micro-batch with the same key.
  const StepSummary& summary_for(const schedule::PipelineStep& step, int64_t vstage,
                                 int64_t last_vstage) {
    const int64_t key = (step.forward ? 1 : 0) | (vstage == 0 ? 2 : 0) |
                        (vstage == last_vstage ? 4 : 0) | (static_cast<int64_t>(tp_nodes_) << 3);
    StepSummary& summary = fold_memo_[key];
    if (!summary.valid) summary = evaluate_step(step, vstage, last_vstage);
    return summary;
  }

  // Whether every pipeline send of this rank in one direction is no longer than the shortest
  // step that produces one (StepFolding in the header: then sends can be edge delays).
  bool sends_fit_in_steps(bool backward, int64_t last_vstage) {
    Op probe = make(OpKind::kSend, "");
    probe.group = Group::kPp;
    probe.bytes = activation_bytes_sp();
    probe.group_size = 2;
    double longest_send = 0;
    for (int32_t nodes : {1, 2}) {
      probe.group_nodes = nodes;
      longest_send = std::max(longest_send, options_.fold->seconds(probe));
    }
    double shortest_step = std::numeric_limits<double>::infinity();
    const RankCoord& c = out_.ranks[rank_];
    for (int64_t chunk = 0; chunk < v_; ++chunk) {
      const int64_t vstage = chunk * p_ + c.pp;
      const bool produces = backward ? vstage > 0 : vstage < last_vstage;
      if (!produces) continue;
      const schedule::PipelineStep step{!backward, 0, static_cast<int>(chunk)};
      shortest_step = std::min(shortest_step, summary_for(step, vstage, last_vstage).seconds);
    }
    return longest_send <= shortest_step;
  }

  // Builds one step into a scratch graph, prices and sizes it, and runs its streams in
  // isolation: ops in program order, each starting when its stream is free and its
  // predecessors have ended (the engine's rule, with no other rank or stream involved).
  StepSummary evaluate_step(const schedule::PipelineStep& step, int64_t vstage,
                            int64_t last_vstage) {
    const OpVertex saved_last = last_compute_;
    std::vector<OpVertex> saved_waits;
    saved_waits.swap(waits_);
    const int64_t saved_recv = recv_key_;
    const Op saved_ctx = ctx_;
    OpSink scratch_sink;
    sink_ = &scratch_sink;
    scratch_ = true;
    last_compute_ = kNoOp;
    recv_key_ = -1;
    emit_step_body(step, vstage, last_vstage);
    sink_ = &main_sink_;
    scratch_ = false;
    TrainingGraph scratch;
    scratch.ranks = out_.ranks;
    scratch.dims = out_.dims;
    scratch.micro_batches = out_.micro_batches;
    scratch.padded_vocab = out_.padded_vocab;
    scratch.graph = make_op_graph(std::move(scratch_sink.ops), scratch_sink.edges);
    last_compute_ = saved_last;
    waits_.swap(saved_waits);
    recv_key_ = saved_recv;
    ctx_ = saved_ctx;

    OpGraph& g = scratch.graph;
    for (OpVertex v = 0; v < boost::num_vertices(g); ++v)
      g[v].duration_s = options_.fold->seconds(g[v]);
    if (options_.fold->memory) options_.fold->memory(scratch);

    StepSummary out;
    out.valid = true;
    std::vector<double> end(boost::num_vertices(g), 0.0);
    std::array<double, kNumStreams> stream_free{};
    std::vector<std::pair<double, double>> memory_events;  // (time, +alloc / -free)
    for (OpVertex v = 0; v < boost::num_vertices(g); ++v) {
      const Op& op = g[v];
      double start = stream_free[static_cast<int>(op.stream)];
      for (auto [e, e_end] = boost::in_edges(v, g); e != e_end; ++e)
        start = std::max(start, end[boost::source(*e, g)]);
      end[v] = start + op.duration_s;
      stream_free[static_cast<int>(op.stream)] = end[v];
      out.seconds = std::max(out.seconds, end[v]);
      out.flops += op.flops;
      if (!is_communication(op.kind)) out.bytes += op.bytes;
      if (op.alloc_bytes != 0) memory_events.push_back({start, op.alloc_bytes});
      if (op.free_bytes != 0) memory_events.push_back({end[v], -op.free_bytes});
    }
    // At equal times the engine ends ops before it starts the ops their ends release.
    std::stable_sort(memory_events.begin(), memory_events.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second < b.second;
    });
    double level = 0, peak = 0;
    for (const auto& [time, delta] : memory_events) {
      level += delta;
      peak = std::max(peak, level);
    }
    out.alloc = peak;
    out.free = peak - level;
    return out;
  }

  void send(int64_t vstage, const schedule::PipelineStep& step, bool backward, size_t index) {
    const RankCoord& c = out_.ranks[rank_];
    Op op = make(OpKind::kSend, "");
    op.pass = backward ? Pass::kBackward : Pass::kForward;
    op.site = Site::kNone;
    op.layer = -1;
    op.group = Group::kPp;
    op.micro_batch = step.micro_batch;
    op.chunk = interleaved_ ? step.chunk : -1;
    op.bytes = activation_bytes_sp();
    op.group_size = 2;
    const int64_t peer_vstage = backward ? vstage - 1 : vstage + 1;
    const int32_t peer_stage = static_cast<int32_t>(peer_vstage % p_);
    op.group_nodes = node_of(c.tp, c.dp, peer_stage) == c.node ? 1 : 2;
    if (sends_as_delays_[backward ? 1 : 0]) {
      sends_[index] = {last_compute_, options_.fold->seconds(op)};
      return;
    }
    sends_[index] = {communicate(op, backward ? Stream::kPpBackward : Stream::kPpForward), 0};
  }

  // Once per iteration after the pipeline: DP gradient reduction, tied-embedding sync,
  // optimizer, and the parameter all-gather of sharded optimizers.
  void step_ops(const RankCoord& c, int64_t last_vstage, double rank_params) {
    const OpVertex backward_end = last_compute_;
    emit_buckets(backward_end);
    ctx_ = Op{};
    ctx_.pass = Pass::kStep;
    const bool first = c.pp == 0;
    const bool last = c.pp == static_cast<int32_t>(last_vstage % p_);
    if (out_.dims.tied && p_ > 1 && (first || last)) {
      Op op = make(OpKind::kAllReduce, "allreduce");
      op.group = Group::kEmbedding;
      op.bytes = static_cast<double>(s_.vocab) * out_.dims.hidden * kGradBytes;
      op.group_size = 2;
      op.group_nodes =
          node_of(c.tp, c.dp, 0) == node_of(c.tp, c.dp, static_cast<int32_t>(p_ - 1)) ? 1 : 2;
      dp_ops_.push_back(communicate(op, Stream::kDpComm));
    }
    for (OpVertex v : dp_ops_) wait(v);
    const double sharded = zero_ >= 1 ? rank_params / static_cast<double>(dp_) : rank_params;
    Op optimizer = make(OpKind::kOptimizer, "optimizer");
    optimizer.bytes = sharded * kAdamBytesPerParam;
    optimizer.flops = sharded * kAdamFlopsPerParam;
    compute(optimizer);
    if (dp_ < 2 || zero_ == 0 || zero_ == 3) return;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      Op op = make(OpKind::kAllGather, "");
      op.group = Group::kDp;
      op.bucket = static_cast<int32_t>(i);
      op.bytes = buckets_[i] * s_.e;
      op.group_size = static_cast<int32_t>(dp_);
      op.group_nodes = dp_nodes_;
      communicate(op, Stream::kDpComm);
    }
  }

  struct Ready {
    double params;
    OpVertex vertex;
  };

  const spec::ParallelConfig& config_;
  GraphOptions options_;
  int64_t estimate_ops_ = 0;
  // Where ops and edges go: the result, or a scratch list while folding a step.
  struct OpSink {
    std::vector<Op> ops;
    std::vector<OpEdge> edges;
    std::vector<EdgeDelay> delays;  // parallel to edges
    void edge(OpVertex from, OpVertex to, double delay = 0) {
      edges.push_back({from, to});
      delays.push_back({delay});
    }
  };
  OpSink main_sink_;
  OpSink* sink_ = nullptr;
  bool scratch_ = false;
  std::map<int64_t, StepSummary> fold_memo_;
  TrainingGraph out_;
  LocalSizes s_;
  int64_t t_ = 1, p_ = 1, dp_ = 1, v_ = 1, m_ = 1, layers_per_chunk_ = 1, zero_ = 0;
  bool sp_ = false, interleaved_ = false, rotary_ = false;
  spec::Recompute recompute_ = spec::RECOMPUTE_NONE;
  double layer_params_local_ = 0;
  int64_t op_count_ = 0;

  int32_t rank_ = 0;
  int32_t tp_nodes_ = 1, dp_nodes_ = 1;
  Op ctx_;
  OpVertex last_compute_ = kNoOp;
  std::vector<OpVertex> waits_;
  int64_t recv_key_ = -1;
  std::vector<Ready> ready_;
  std::vector<OpVertex> dp_ops_;
  std::vector<double> buckets_;
  std::array<int64_t, 5> collective_sequence_{};
  // Where a pipeline transfer's receiver waits: the send op, or (as an edge delay) the last op
  // of the producing step.
  struct SendEnd {
    OpVertex vertex = kNoOp;
    double delay = 0;
  };
  std::vector<SendEnd> sends_;
  std::array<bool, 2> sends_as_delays_{};  // per direction (forward, backward) on this rank
  std::vector<std::pair<size_t, OpVertex>> pending_recvs_;
  std::unordered_map<CollectiveKey, int32_t, CollectiveKeyHash> collectives_;
};

}  // namespace

OpGraph make_op_graph(std::vector<Op> ops, const std::vector<OpEdge>& edges,
                      const std::vector<EdgeDelay>& delays) {
  const std::vector<EdgeDelay> none(delays.empty() ? edges.size() : 0);
  if (!delays.empty() && delays.size() != edges.size())
    throw std::invalid_argument("make_op_graph: one delay per edge expected");
  const std::vector<EdgeDelay>& properties = delays.empty() ? none : delays;
  OpGraph g(boost::edges_are_unsorted_multi_pass, edges.begin(), edges.end(), properties.begin(),
            static_cast<OpVertex>(ops.size()));
  // The CSR graph keeps bundled vertex properties in this public vector (Boost marks it public
  // for portability); moving the ops in avoids copying every op a second time.
  g.m_vertex_properties = std::move(ops);
  return g;
}

int32_t global_rank(const spec::ParallelConfig& config, int32_t tp, int32_t dp, int32_t pp) {
  const int64_t t = config.tensor_parallel();
  const int64_t d = config.data_parallel();
  const int64_t p = config.pipeline_parallel();
  if (config.rank_order() == spec::TP_PP_DP) return static_cast<int32_t>(tp + t * (pp + p * dp));
  return static_cast<int32_t>(tp + t * (dp + d * pp));
}

int64_t estimate_ops(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                     const GraphOptions& options) {
  const int64_t dp = std::max<int64_t>(1, config.data_parallel());
  const int64_t mbs = std::max<int64_t>(1, config.micro_batch_size());
  const int64_t micro_batches = config.global_batch_size() / (mbs * dp);
  const int64_t pp = std::max<int64_t>(1, config.pipeline_parallel());
  const int64_t ranks = options.all_ranks ? config.num_gpus() : pp;
  // Ops per layer and micro-batch: 24 compute forward + backward, TP collectives, recompute.
  int64_t per_layer = 24;
  if (config.tensor_parallel() > 1) per_layer += config.sequence_parallel() ? 10 : 4;
  if (config.recompute() == spec::RECOMPUTE_FULL) per_layer += 14;
  if (config.recompute() == spec::RECOMPUTE_SELECTIVE) per_layer += 1;
  if (config.zero_stage() >= 2) per_layer += 3;
  const int64_t layers_per_rank = (model.num_layers() + pp - 1) / pp;
  return ranks * micro_batches * (layers_per_rank * per_layer + 16);
}

TrainingGraph build_training_graph(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                                   const GraphOptions& options) {
  return Builder(model, config, options).build();
}

}  // namespace mpsim::graph
