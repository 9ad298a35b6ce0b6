// GPT layers of one pipeline rank; see gpt_model.h. Shapes (this rank): T = seq * mbs tokens,
// sequence-major; T_l = T / tp under sequence parallelism, else T; per-rank heads, QKV width
// (3 h / tp), ffn width (f / tp) and vocabulary slice.
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

#include "executor/cuda/cuda_check.h"
#include "executor/cuda/gpt_model.h"
#include "executor/cuda/kernels.h"
#include "executor/cuda/nvtx_range.h"
#include "simulator/graph/layer_ops.h"

namespace mpsim::executor {

using graph::OpLabel;
namespace {

using bf16 = __nv_bfloat16;
constexpr float kNormEps = 1e-5f;
constexpr MemoryCategory kAct = MemoryCategory::kActivations;
constexpr MemoryCategory kWork = MemoryCategory::kWorkspace;

}  // namespace

struct GptStage::LayerWeights {
  bf16 *ln1_w = nullptr, *ln1_b = nullptr, *qkv_w = nullptr, *qkv_b = nullptr, *proj_w = nullptr,
       *proj_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr, *fc1_w = nullptr, *fc1_b = nullptr,
       *fc2_w = nullptr, *fc2_b = nullptr;
  float *ln1_wg = nullptr, *ln1_bg = nullptr, *qkv_wg = nullptr, *qkv_bg = nullptr,
        *proj_wg = nullptr, *proj_bg = nullptr, *ln2_wg = nullptr, *ln2_bg = nullptr,
        *fc1_wg = nullptr, *fc1_bg = nullptr, *fc2_wg = nullptr, *fc2_bg = nullptr;
};

// What a layer's backward needs. Norm outputs (ln1, ln2) are this rank's sequence shard under SP
// and are re-gathered by the backward pass.
struct GptStage::LayerActivations {
  DeviceBuffer x_in, ln1, ln1_mean, ln1_rstd, qkv, q, probs, lse, ctx, x_mid, ln2, ln2_mean,
      ln2_rstd, h1, act;  // q: the query heads' own copy (grouped-query attention, fused core)
  // FP8 models: the four linears' inputs as the weight gradients read them, FP8, transposed.
  DeviceBuffer qkv_in8t, proj_in8t, fc1_in8t, fc2_in8t;
};

struct GptStage::HeadActivations {
  DeviceBuffer x_in, y, mean, rstd, y_full, logits, row_max, sums;
  const int32_t* targets = nullptr;
  float grad_scale = 1.0f;
};

struct GptStage::ChunkActivations {
  std::vector<LayerActivations> layers;
  std::optional<HeadActivations> head;
  const int32_t* tokens = nullptr;
};

GptStage::GptStage(const StageResources& resources) : r_(resources) {
  const GptCatalogue& c = *r_.catalogue;
  const RankLayout& l = *r_.layout;
  tp_ = l.tp;
  sp_ = r_.config->sequence_parallel() && tp_ > 1;
  flash_ = graph::is_flash(r_.config->attention());
  if (flash_ && r_.flash == nullptr)
    throw std::invalid_argument("flash attention needs the stage's FlashAttention");
  recompute_ = r_.config->recompute() == spec::RECOMPUTE_UNSPECIFIED ? spec::RECOMPUTE_NONE
                                                                     : r_.config->recompute();
  seq_ = c.dims.seq;
  mbs_ = r_.config->micro_batch_size();
  tokens_ = seq_ * mbs_;
  if (sp_ && seq_ % tp_ != 0)
    throw std::invalid_argument("sequence parallelism needs seq divisible by tp");
  tokens_local_ = sp_ ? tokens_ / tp_ : tokens_;
  hidden_ = c.dims.hidden;
  heads_local_ = c.dims.heads / tp_;
  kv_local_ = c.dims.kv_heads / tp_;
  group_ = c.dims.heads / c.dims.kv_heads;
  head_dim_ = c.dims.head_dim;
  qkv_local_ = (heads_local_ + 2 * kv_local_) * head_dim_;
  ffn_local_ = c.dims.ffn / tp_;
  swiglu_ = c.dims.swiglu;
  fc1_local_ = swiglu_ ? 2 * ffn_local_ : ffn_local_;
  rms_ = !c.dims.layer_norm;
  rotary_ = c.dims.rotary;
  if (rotary_) {  // the angles' table, once (workspace: seq x d/2 x 8 bytes)
    rotary_angles_ = buffer(kWork, seq_ * (head_dim_ / 2) * 8);
    kernels::rotary_angles(rotary_angles_.as<float2>(), seq_, head_dim_, c.dims.rotary_base,
                           r_.compute);
  }
  vocab_ = c.dims.vocab;
  vocab_local_ = c.padded_vocab / tp_;
  vocab_start_ = l.tp_rank * vocab_local_;

  weights_.resize(static_cast<size_t>(c.dims.layers));
  ParamStore& p = *r_.params;
  for (int chunk = 0; chunk < l.chunks; ++chunk) {
    for (int64_t i = 0; i < l.layers_per_chunk; ++i) {
      const int64_t layer = l.first_layer(chunk) + i;
      std::string n = "L";  // not "L" + to_string(..): GCC 12 warns falsely (-Wrestrict)
      n += std::to_string(layer) + ".";
      LayerWeights& w = weights_[layer];
      // Biases and LayerNorm's shift are absent from Llama-style models: null pointers.
      auto bind = [&](const char* name, bf16*& weight, float*& grad) {
        if (!p.has(n + name)) return;
        weight = p.weight(n + name);
        grad = p.grad(n + name);
      };
      bind("attn.norm.weight", w.ln1_w, w.ln1_wg);
      bind("attn.norm.bias", w.ln1_b, w.ln1_bg);
      bind("attn.qkv.weight", w.qkv_w, w.qkv_wg);
      bind("attn.qkv.bias", w.qkv_b, w.qkv_bg);
      bind("attn.proj.weight", w.proj_w, w.proj_wg);
      bind("attn.proj.bias", w.proj_b, w.proj_bg);
      bind("mlp.norm.weight", w.ln2_w, w.ln2_wg);
      bind("mlp.norm.bias", w.ln2_b, w.ln2_bg);
      bind("mlp.fc1.weight", w.fc1_w, w.fc1_wg);
      bind("mlp.fc1.bias", w.fc1_b, w.fc1_bg);
      bind("mlp.fc2.weight", w.fc2_w, w.fc2_wg);
      bind("mlp.fc2.bias", w.fc2_b, w.fc2_bg);
    }
  }
  local_layer_.assign(static_cast<size_t>(c.dims.layers), -1);
  for (int chunk = 0, n = 0; chunk < l.chunks; ++chunk)
    for (int64_t i = 0; i < l.layers_per_chunk; ++i) local_layer_[l.first_layer(chunk) + i] = n++;
  if (c.dims.fp8) {
    if (r_.fp8_gemm == nullptr) throw std::invalid_argument("FP8 needs the stage's Fp8Gemm");
    if (sp_) throw std::invalid_argument("FP8 with sequence parallelism is not implemented");
    fp8_ = std::make_unique<Fp8Linears>(*r_.memory, r_.compute, *r_.fp8_gemm,
                                        4 * l.chunks * l.layers_per_chunk);
    for (int64_t layer = 0; layer < c.dims.layers; ++layer) {
      if (local_layer_[layer] < 0) continue;
      const LayerWeights& w = weights_[layer];
      fp8_->set_weight(fp8_linear(layer, 0), w.qkv_w, hidden_, qkv_local_);
      fp8_->set_weight(fp8_linear(layer, 1), w.proj_w, heads_local_ * head_dim_, hidden_);
      fp8_->set_weight(fp8_linear(layer, 2), w.fc1_w, hidden_, fc1_local_);
      fp8_->set_weight(fp8_linear(layer, 3), w.fc2_w, ffn_local_, hidden_);
    }
  }
  CUDA_CHECK(cudaEventCreateWithFlags(&fork_event_, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventCreateWithFlags(&join_event_, cudaEventDisableTiming));
}

GptStage::~GptStage() {
  saved_.clear();
  if (fork_event_ != nullptr) cudaEventDestroy(fork_event_);
  if (join_event_ != nullptr) cudaEventDestroy(join_event_);
}

DeviceBuffer GptStage::buffer(MemoryCategory category, int64_t bytes) {
  return DeviceBuffer(*r_.memory, category, bytes, r_.compute);
}

void GptStage::fork_tp() {
  CUDA_CHECK(cudaEventRecord(fork_event_, r_.compute));
  CUDA_CHECK(cudaStreamWaitEvent(r_.tp_stream, fork_event_, 0));
}

void GptStage::join_tp() {
  CUDA_CHECK(cudaEventRecord(join_event_, r_.tp_stream));
  CUDA_CHECK(cudaStreamWaitEvent(r_.compute, join_event_, 0));
}

DeviceBuffer GptStage::gather_sequence(RangePass pass, int mb, int layer, OpLabel label,
                                       const bf16* local, MemoryCategory category) {
  DeviceBuffer full = buffer(category, tokens_ * hidden_ * 2);
  NvtxRange range(r_.nvtx, tp_range(pass, mb, layer, label));
  r_.comm->tp.all_gather(local, full.get(), tokens_local_ * hidden_, ncclBfloat16, r_.compute);
  return full;
}

DeviceBuffer GptStage::reduce_sequence(RangePass pass, int mb, int layer, OpLabel label,
                                       DeviceBuffer partial, MemoryCategory category) {
  if (tp_ == 1) return partial;
  NvtxRange range(r_.nvtx, tp_range(pass, mb, layer, label));
  if (!sp_) {
    r_.comm->tp.all_reduce(partial.get(), tokens_ * hidden_, ncclBfloat16, ncclSum, r_.compute);
    return partial;
  }
  DeviceBuffer local = buffer(category, tokens_local_ * hidden_ * 2);
  r_.comm->tp.reduce_scatter(partial.get(), local.get(), tokens_local_ * hidden_, ncclBfloat16,
                             r_.compute);
  return local;
}

DeviceBuffer GptStage::reduce_overlapped(RangePass pass, int mb, int layer, OpLabel label,
                                         DeviceBuffer partial,
                                         const std::function<void()>& overlap) {
  if (tp_ == 1) {
    overlap();
    return partial;
  }
  // Allocated before the fork: stream-ordered memory is visible to the TP stream only then.
  DeviceBuffer out = sp_ ? buffer(kWork, tokens_local_ * hidden_ * 2) : DeviceBuffer();
  fork_tp();
  {
    NvtxRange range(r_.nvtx, tp_range(pass, mb, layer, label));
    if (sp_) {
      r_.comm->tp.reduce_scatter(partial.get(), out.get(), tokens_local_ * hidden_, ncclBfloat16,
                                 r_.tp_stream);
    } else {
      r_.comm->tp.all_reduce(partial.get(), tokens_ * hidden_, ncclBfloat16, ncclSum, r_.tp_stream);
    }
  }
  overlap();
  join_tp();
  if (!sp_) return partial;
  return out;  // `partial` is released after the join, in stream order
}

// ---- embedding ---------------------------------------------------------------------------------
DeviceBuffer GptStage::embed(int mb, const int32_t* tokens) {
  const ParamStore& p = *r_.params;
  DeviceBuffer out = buffer(sp_ ? kWork : kAct, tokens_ * hidden_ * 2);
  {
    NvtxRange range(r_.nvtx,
                    compute_range(RangePass::kForward, mb, kEmbeddingSite, OpLabel::kLookup));
    // Positions are added once, by TP rank 0, before the TP reduction.
    kernels::embedding_forward(
        tokens, p.weight("embed.word"),
        r_.layout->tp_rank == 0 && p.has("embed.position") ? p.weight("embed.position") : nullptr,
        out.as<bf16>(), tokens_, hidden_, mbs_, vocab_start_, vocab_local_, r_.compute);
  }
  return reduce_sequence(RangePass::kForward, mb, kEmbeddingSite,
                         sp_ ? OpLabel::kReduceScatter : OpLabel::kAllReduce, std::move(out), kAct);
}

void GptStage::embed_backward(int mb, const int32_t* tokens, DeviceBuffer grad) {
  const ParamStore& p = *r_.params;
  DeviceBuffer full;
  const bf16* dy = grad.as<bf16>();
  if (sp_) {
    full = gather_sequence(RangePass::kBackward, mb, kEmbeddingSite, OpLabel::kAllGather, dy);
    dy = full.as<bf16>();
  }
  NvtxRange range(r_.nvtx,
                  compute_range(RangePass::kBackward, mb, kEmbeddingSite, OpLabel::kLookup));
  kernels::embedding_backward(tokens, dy, p.grad("embed.word"),
                              p.has("embed.position") ? p.grad("embed.position") : nullptr, tokens_,
                              hidden_, mbs_, vocab_start_, vocab_local_, r_.compute);
}

// ---- attention core
// ------------------------------------------------------------------------------ Batch j = sequence
// * kv_local + group g; query i of g (head g * r + i) starts at qkv + j * (r + 2) d + i d with row
// stride mbs * qkv_local (rows are sequence-major tokens), the group's key at r d and value at (r +
// 1) d. Scores and probabilities of head q of sequence b sit at (b * heads_local + q) * s^2; the
// context of head q at column q d. One strided-batched GEMM per query of a group (r = 1 without
// grouped-query attention).
void GptStage::attention_probs(RangePass pass, const bf16* qkv, DeviceBuffer& probs,
                               MemoryCategory category) {
  const int64_t r = group_, d = head_dim_, ld = mbs_ * qkv_local_, gw = (r + 2) * d;
  const int64_t batch = mbs_ * kv_local_, ss = seq_ * seq_;
  probs = buffer(category, mbs_ * heads_local_ * ss * 2);
  for (int64_t i = 0; i < r; ++i) {
    r_.gemm->batched(false, true, seq_, seq_, d, 1.0f, {qkv + i * d, ld, gw}, {qkv + r * d, ld, gw},
                     {probs.as<bf16>() + i * ss, seq_, r * ss}, batch);
  }
  kernels::causal_softmax_forward(probs.as<bf16>(), probs.as<bf16>(), mbs_ * heads_local_, seq_,
                                  1.0f / std::sqrt(static_cast<float>(d)), r_.compute);
}

void GptStage::attention_context(const bf16* probs, const bf16* qkv, bf16* ctx) {
  const int64_t r = group_, d = head_dim_, ld = mbs_ * qkv_local_, gw = (r + 2) * d;
  const int64_t batch = mbs_ * kv_local_, ss = seq_ * seq_, ctx_ld = mbs_ * heads_local_ * d;
  for (int64_t i = 0; i < r; ++i) {
    r_.gemm->batched(false, false, seq_, d, seq_, 1.0f, {probs + i * ss, seq_, r * ss},
                     {qkv + (r + 1) * d, ld, gw}, {ctx + i * d, ctx_ld, r * d}, batch);
  }
}

void GptStage::attention_backward(const LayerActivations& a, const bf16* probs, const bf16* dctx,
                                  bf16* dqkv) {
  const int64_t r = group_, d = head_dim_, ld = mbs_ * qkv_local_, gw = (r + 2) * d;
  const int64_t batch = mbs_ * kv_local_, ss = seq_ * seq_, ctx_ld = mbs_ * heads_local_ * d;
  const bf16* qkv = a.qkv.as<bf16>();
  DeviceBuffer dp = buffer(kWork, mbs_ * heads_local_ * ss * 2);
  bf16* ds = dp.as<bf16>();
  // dP_i = dctx_i V^T; dV = sum_i P_i^T dctx_i (the group's queries share V)
  for (int64_t i = 0; i < r; ++i) {
    r_.gemm->batched(false, true, seq_, seq_, d, 1.0f, {dctx + i * d, ctx_ld, r * d},
                     {qkv + (r + 1) * d, ld, gw}, {ds + i * ss, seq_, r * ss}, batch);
    r_.gemm->batched(true, false, seq_, d, seq_, 1.0f, {probs + i * ss, seq_, r * ss},
                     {dctx + i * d, ctx_ld, r * d}, {dqkv + (r + 1) * d, ld, gw}, batch,
                     i == 0 ? 0.0f : 1.0f);
  }
  kernels::causal_softmax_backward(ds, probs, ds, mbs_ * heads_local_, seq_,
                                   1.0f / std::sqrt(static_cast<float>(d)), r_.compute);
  // dQ_i = dS_i K; dK = sum_i dS_i^T Q_i
  for (int64_t i = 0; i < r; ++i) {
    r_.gemm->batched(false, false, seq_, d, seq_, 1.0f, {ds + i * ss, seq_, r * ss},
                     {qkv + r * d, ld, gw}, {dqkv + i * d, ld, gw}, batch);
    r_.gemm->batched(true, false, seq_, d, seq_, 1.0f, {ds + i * ss, seq_, r * ss},
                     {qkv + i * d, ld, gw}, {dqkv + r * d, ld, gw}, batch, i == 0 ? 0.0f : 1.0f);
  }
}

// The fused core reads the interleaved rows in place: batch b of head q of group g at b *
// qkv_local + g (r + 2) d (+ r d for the key, (r + 1) d for the value), position t at t * mbs *
// qkv_local. The query heads of a group are evenly strided only without grouped-query attention
// (r = 1); otherwise they are copied into their own tensor first (attn.split), laid out as the
// context.
AttentionShape GptStage::flash_shape(bool packed_queries) const {
  const int64_t d = head_dim_, row = qkv_local_;
  AttentionShape s;
  s.batch = mbs_;
  s.heads = heads_local_;
  s.kv_heads = kv_local_;
  s.seq = seq_;
  s.head_dim = d;
  s.k = s.v = {row, (group_ + 2) * d, mbs_ * row};
  s.o = {heads_local_ * d, d, mbs_ * heads_local_ * d};
  s.q = packed_queries ? s.o : s.k;
  return s;
}

void GptStage::flash_forward(const LayerActivations& a, bf16* ctx, float* lse) {
  const int64_t r = group_, d = head_dim_;
  const bf16* qkv = a.qkv.as<bf16>();
  r_.flash->forward(flash_shape(r > 1), r > 1 ? a.q.as<bf16>() : qkv, qkv + r * d,
                    qkv + (r + 1) * d, ctx, lse);
}

// The core's backward (attn.flash), then, with grouped-query attention, the query gradient
// copied into the QKV rows (attn.split).
void GptStage::flash_backward(int mb, int layer, const LayerActivations& a, const float* lse,
                              const bf16* dctx, bf16* dqkv) {
  const int64_t r = group_, d = head_dim_;
  const bf16* qkv = a.qkv.as<bf16>();
  const RangePass bwd = RangePass::kBackward;
  if (r == 1) {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, layer, OpLabel::kAttnFlash));
    r_.flash->backward(flash_shape(false), qkv, qkv + d, qkv + 2 * d, a.ctx.as<bf16>(), dctx, lse,
                       dqkv, dqkv + d, dqkv + 2 * d);
    return;
  }
  DeviceBuffer dq = buffer(kWork, tokens_ * heads_local_ * d * 2);
  {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, layer, OpLabel::kAttnFlash));
    r_.flash->backward(flash_shape(true), a.q.as<bf16>(), qkv + r * d, qkv + (r + 1) * d,
                       a.ctx.as<bf16>(), dctx, lse, dq.as<bf16>(), dqkv + r * d,
                       dqkv + (r + 1) * d);
  }
  NvtxRange range(r_.nvtx, compute_range(bwd, mb, layer, OpLabel::kAttnSplit));
  kernels::copy_rows(dq.as<bf16>(), r * d, dqkv, (r + 2) * d, tokens_ * kv_local_, r * d,
                     r_.compute);
}

// ---- FP8 linears
// --------------------------------------------------------------------------------
int64_t GptStage::fp8_linear(int64_t layer, int which) const {
  return fp8_ ? 4 * local_layer_[static_cast<size_t>(layer)] + which : -1;
}

void GptStage::linear_forward(int64_t layer, int which, DeviceBuffer& x8, const bf16* x,
                              const bf16* w, bf16* y, int64_t in, int64_t out) {
  if (fp8_) {
    fp8_->forward(fp8_linear(layer, which), x8, tokens_, y);
    x8.reset();
  } else {
    r_.gemm->linear_forward(x, w, y, tokens_, in, out);
  }
}

void GptStage::linear_dgrad(int64_t fp8, const DeviceBuffer& dy8, const bf16* dy, const bf16* w,
                            bf16* dx, int64_t in, int64_t out) {
  if (fp8 >= 0) {
    fp8_->dgrad(fp8, dy8, tokens_, dx);
  } else {
    r_.gemm->linear_dgrad(dy, w, dx, tokens_, in, out);
  }
}

void GptStage::linear_wgrad(int64_t fp8, const DeviceBuffer& dy8t, const DeviceBuffer* x8t,
                            const bf16* dy, const bf16* x, float* dw, int64_t in, int64_t out) {
  if (fp8 >= 0) {
    fp8_->wgrad(fp8, dy8t, *x8t, tokens_, dw);
  } else {
    r_.gemm->linear_wgrad(dy, x, dw, tokens_, in, out);
  }
}

void GptStage::fp8_step() {
  if (!fp8_) return;
  NvtxRange range(r_.nvtx, "comm/dp/fp8.amax");
  fp8_->update_scales({&r_.comm->tp, &r_.comm->dp});
}

// ---- transformer layer
// ---------------------------------------------------------------------------
DeviceBuffer GptStage::layer_forward(int64_t layer, RangePass pass, int mb, LayerActivations& a) {
  // Under full recomputation the first forward keeps nothing but the layer input.
  const MemoryCategory keep =
      recompute_ == spec::RECOMPUTE_FULL && pass == RangePass::kForward ? kWork : kAct;
  attention_block_forward(layer, pass, mb, keep, a);
  DeviceBuffer out = mlp_block_forward(layer, pass, mb, keep, a);
  if (keep == kWork) {  // full recomputation: keep the input only
    DeviceBuffer x_in = std::move(a.x_in);
    a = LayerActivations{};
    a.x_in = std::move(x_in);
  }
  return out;
}

// x_mid = x_in + proj(attn(rotary(qkv(norm(x_in))))) + b_proj, keeping in `keep` what the
// backward pass needs.
void GptStage::attention_block_forward(int64_t layer, RangePass pass, int mb, MemoryCategory keep,
                                       LayerActivations& a) {
  const LayerWeights& w = weights_[layer];
  const int L = static_cast<int>(layer);
  const int64_t T = tokens_, Tl = tokens_local_, h = hidden_;
  auto name = [&](OpLabel label) { return compute_range(pass, mb, L, label); };
  cudaStream_t s = r_.compute;
  DeviceBuffer x8;  // FP8: a linear's cast input, the GEMM's operand
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnNorm));
    // FP8: the QKV GEMM's input is saved as its FP8 transpose, not in bf16 (no SP under FP8).
    a.ln1 = buffer(fp8_ ? kWork : keep, Tl * h * 2);
    a.ln1_mean = buffer(keep, Tl * 4);
    a.ln1_rstd = buffer(keep, Tl * 4);
    kernels::norm_forward(a.x_in.as<bf16>(), w.ln1_w, w.ln1_b, a.ln1.as<bf16>(),
                          a.ln1_mean.as<float>(), a.ln1_rstd.as<float>(), Tl, h, kNormEps, rms_, s);
    if (fp8_) fp8_->cast_input(fp8_linear(layer, 0), a.ln1.as<bf16>(), T, x8, a.qkv_in8t, keep);
  }
  DeviceBuffer gathered;
  const bf16* ln1 = a.ln1.as<bf16>();
  if (sp_) {
    gathered = gather_sequence(pass, mb, L, OpLabel::kAttnAllGather, ln1);
    ln1 = gathered.as<bf16>();
  }
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnQkv));
    a.qkv = buffer(keep, T * qkv_local_ * 2);
    linear_forward(layer, 0, x8, ln1, w.qkv_w, a.qkv.as<bf16>(), h, qkv_local_);
    if (fp8_) a.ln1.reset();
    if (w.qkv_b != nullptr) kernels::bias_add(a.qkv.as<bf16>(), w.qkv_b, T, qkv_local_, s);
  }
  gathered.reset();
  if (rotary_) {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnRope));
    kernels::rotary(a.qkv.as<bf16>(), T, mbs_, kv_local_, group_, head_dim_,
                    rotary_angles_.as<float2>(), false, s);
  }
  // Selective recomputation drops what only the core's backward needs: the probabilities of the
  // unfused core, the log-sum-exp of the fused one.
  const bool keep_core = keep == kAct && recompute_ != spec::RECOMPUTE_SELECTIVE;
  if (flash_ && group_ > 1) {  // the query heads are not evenly strided in the QKV rows
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnSplit));
    const int64_t r = group_, d = head_dim_;
    a.q = buffer(keep, T * heads_local_ * d * 2);
    kernels::copy_rows(a.qkv.as<bf16>(), (r + 2) * d, a.q.as<bf16>(), r * d, T * kv_local_, r * d,
                       s);
  }
  if (flash_) {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnFlash));
    a.ctx = buffer(keep, T * heads_local_ * head_dim_ * 2);
    a.lse = buffer(keep_core ? kAct : kWork, mbs_ * heads_local_ * seq_ * 4);
    flash_forward(a, a.ctx.as<bf16>(), a.lse.as<float>());
    if (!keep_core) a.lse.reset();
  } else {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnCore));
    attention_probs(pass, a.qkv.as<bf16>(), a.probs, keep_core ? kAct : kWork);
    a.ctx = buffer(keep, T * heads_local_ * head_dim_ * 2);
    attention_context(a.probs.as<bf16>(), a.qkv.as<bf16>(), a.ctx.as<bf16>());
    if (!keep_core) a.probs.reset();
  }
  DeviceBuffer proj = buffer(kWork, T * h * 2);
  if (fp8_) {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnProjCast));
    fp8_->cast_input(fp8_linear(layer, 1), a.ctx.as<bf16>(), T, x8, a.proj_in8t, keep);
    if (!flash_) a.ctx.reset();  // only the projection's weight gradient read it
  }
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnProj));
    linear_forward(layer, 1, x8, a.ctx.as<bf16>(), w.proj_w, proj.as<bf16>(),
                   heads_local_ * head_dim_, h);
  }
  proj = reduce_sequence(pass, mb, L, sp_ ? OpLabel::kAttnReduceScatter : OpLabel::kAttnAllReduce,
                         std::move(proj));
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnResidual));
    a.x_mid = buffer(keep, Tl * h * 2);
    kernels::bias_residual_forward(proj.as<bf16>(), w.proj_b, a.x_in.as<bf16>(), a.x_mid.as<bf16>(),
                                   Tl, h, s);
  }
  proj.reset();
}

// The layer's output x_mid + fc2(act(fc1(norm(x_mid)))) + b2, in kAct memory.
DeviceBuffer GptStage::mlp_block_forward(int64_t layer, RangePass pass, int mb, MemoryCategory keep,
                                         LayerActivations& a) {
  const LayerWeights& w = weights_[layer];
  const int L = static_cast<int>(layer);
  const int64_t T = tokens_, Tl = tokens_local_, h = hidden_;
  auto name = [&](OpLabel label) { return compute_range(pass, mb, L, label); };
  cudaStream_t s = r_.compute;
  DeviceBuffer x8;  // FP8: a linear's cast input, the GEMM's operand
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kMlpNorm));
    a.ln2 = buffer(fp8_ ? kWork : keep, Tl * h * 2);
    a.ln2_mean = buffer(keep, Tl * 4);
    a.ln2_rstd = buffer(keep, Tl * 4);
    kernels::norm_forward(a.x_mid.as<bf16>(), w.ln2_w, w.ln2_b, a.ln2.as<bf16>(),
                          a.ln2_mean.as<float>(), a.ln2_rstd.as<float>(), Tl, h, kNormEps, rms_, s);
    if (fp8_) fp8_->cast_input(fp8_linear(layer, 2), a.ln2.as<bf16>(), T, x8, a.fc1_in8t, keep);
  }
  DeviceBuffer gathered;
  const bf16* ln2 = a.ln2.as<bf16>();
  if (sp_) {
    gathered = gather_sequence(pass, mb, L, OpLabel::kMlpAllGather, ln2);
    ln2 = gathered.as<bf16>();
  }
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kMlpFc1));
    a.h1 = buffer(keep, T * fc1_local_ * 2);
    linear_forward(layer, 2, x8, ln2, w.fc1_w, a.h1.as<bf16>(), h, fc1_local_);
    if (fp8_) a.ln2.reset();
  }
  gathered.reset();
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kMlpAct));
    a.act = buffer(fp8_ ? kWork : keep, T * ffn_local_ * 2);
    if (swiglu_) {
      kernels::swiglu_forward(a.h1.as<bf16>(), w.fc1_b, a.act.as<bf16>(), T, ffn_local_, s);
    } else {
      kernels::bias_gelu_forward(a.h1.as<bf16>(), w.fc1_b, a.act.as<bf16>(), T, ffn_local_, s);
    }
  }
  DeviceBuffer fc2 = buffer(kWork, T * h * 2);
  if (fp8_) {
    NvtxRange range(r_.nvtx, name(OpLabel::kMlpFc2Cast));
    fp8_->cast_input(fp8_linear(layer, 3), a.act.as<bf16>(), T, x8, a.fc2_in8t, keep);
    a.act.reset();
  }
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kMlpFc2));
    linear_forward(layer, 3, x8, a.act.as<bf16>(), w.fc2_w, fc2.as<bf16>(), ffn_local_, h);
  }
  fc2 = reduce_sequence(pass, mb, L, sp_ ? OpLabel::kMlpReduceScatter : OpLabel::kMlpAllReduce,
                        std::move(fc2));
  DeviceBuffer out;
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kMlpResidual));
    out = buffer(kAct, Tl * h * 2);
    kernels::bias_residual_forward(fc2.as<bf16>(), w.fc2_b, a.x_mid.as<bf16>(), out.as<bf16>(), Tl,
                                   h, s);
  }
  return out;
}

DeviceBuffer GptStage::row_parallel_backward(int mb, int layer, const LinearLabels& labels,
                                             const bf16* grad, const bf16* weight,
                                             float* weight_grad, const bf16* input, int64_t in,
                                             int64_t fp8, const DeviceBuffer* input8t) {
  const RangePass bwd = RangePass::kBackward;
  DeviceBuffer gathered;
  const bf16* dy = grad;
  if (sp_) {
    gathered = gather_sequence(bwd, mb, layer, labels.gather, grad);
    dy = gathered.as<bf16>();
  }
  DeviceBuffer dy8, dy8t;  // FP8: the output gradient cast, and transposed
  if (fp8 >= 0) {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, layer, labels.cast));
    fp8_->cast_gradient(fp8, dy, tokens_, dy8, dy8t);
  }
  DeviceBuffer dx = buffer(kWork, tokens_ * in * 2);
  {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, layer, labels.dgrad));
    linear_dgrad(fp8, dy8, dy, weight, dx.as<bf16>(), in, hidden_);
  }
  {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, layer, labels.wgrad));
    linear_wgrad(fp8, dy8t, input8t, dy, input, weight_grad, in, hidden_);
  }
  return dx;
}

DeviceBuffer GptStage::column_parallel_backward(int mb, int layer, const LinearLabels& labels,
                                                const bf16* grad, const bf16* weight,
                                                float* weight_grad, float* bias_grad,
                                                const bf16* norm_out, int64_t out, int64_t fp8,
                                                const DeviceBuffer* input8t) {
  const RangePass bwd = RangePass::kBackward;
  DeviceBuffer gathered;  // under SP the weight gradient needs the whole sequence again
  const bf16* input = norm_out;
  if (sp_) {
    gathered = gather_sequence(bwd, mb, layer, labels.gather, norm_out);
    input = gathered.as<bf16>();
  }
  DeviceBuffer dy8, dy8t;  // FP8: the output gradient cast, and transposed
  if (fp8 >= 0) {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, layer, labels.cast));
    fp8_->cast_gradient(fp8, grad, tokens_, dy8, dy8t);
  }
  DeviceBuffer dx = buffer(kWork, tokens_ * hidden_ * 2);
  {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, layer, labels.dgrad));
    linear_dgrad(fp8, dy8, grad, weight, dx.as<bf16>(), hidden_, out);
  }
  const OpLabel reduction = sp_ ? labels.reduce_scatter : labels.all_reduce;
  return reduce_overlapped(bwd, mb, layer, reduction, std::move(dx), [&] {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, layer, labels.wgrad));
    linear_wgrad(fp8, dy8t, input8t, grad, input, weight_grad, hidden_, out);
    if (bias_grad != nullptr) kernels::bias_grad(grad, bias_grad, tokens_, out, r_.compute);
  });
}

DeviceBuffer GptStage::layer_backward(int64_t layer, int mb, LayerActivations& a,
                                      DeviceBuffer grad) {
  if (recompute_ == spec::RECOMPUTE_FULL) layer_forward(layer, RangePass::kRecompute, mb, a);
  mlp_block_backward(layer, mb, a, grad);
  attention_block_backward(layer, mb, a, grad);
  a = LayerActivations{};
  return grad;
}

// The MLP block's backward; `grad` holds dLoss/d out and becomes dLoss/d x_mid (in place).
void GptStage::mlp_block_backward(int64_t layer, int mb, LayerActivations& a, DeviceBuffer& grad) {
  const LayerWeights& w = weights_[layer];
  const int L = static_cast<int>(layer);
  const int64_t T = tokens_, Tl = tokens_local_, h = hidden_;
  auto name = [&](OpLabel label) { return compute_range(RangePass::kBackward, mb, L, label); };
  cudaStream_t s = r_.compute;
  // MLP block: out = x_mid + fc2(gelu(fc1(norm(x_mid)))) + b2
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kMlpResidual));
    if (w.fc2_bg != nullptr) kernels::bias_grad(grad.as<bf16>(), w.fc2_bg, Tl, h, s);
  }
  DeviceBuffer dact =
      row_parallel_backward(mb, L,
                            {OpLabel::kMlpFc2Dgrad, OpLabel::kMlpFc2Wgrad, OpLabel::kMlpAllGather,
                             OpLabel::kNone, OpLabel::kNone, OpLabel::kMlpFc2Cast},
                            grad.as<bf16>(), w.fc2_w, w.fc2_wg, a.act.as<bf16>(), ffn_local_,
                            fp8_linear(layer, 3), &a.fc2_in8t);
  a.act.reset();
  a.fc2_in8t.reset();
  DeviceBuffer dh1;  // gradient of fc1's output; GeLU's is computed in place
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kMlpAct));
    if (swiglu_) {
      dh1 = buffer(kWork, T * fc1_local_ * 2);
      kernels::swiglu_backward(dact.as<bf16>(), a.h1.as<bf16>(), w.fc1_b, dh1.as<bf16>(), T,
                               ffn_local_, s);
      if (w.fc1_bg != nullptr) kernels::bias_grad(dh1.as<bf16>(), w.fc1_bg, T, fc1_local_, s);
      dact.reset();
    } else {
      kernels::bias_gelu_backward(dact.as<bf16>(), a.h1.as<bf16>(), w.fc1_b, dact.as<bf16>(),
                                  w.fc1_bg, T, ffn_local_, s);
      dh1 = std::move(dact);
    }
  }
  a.h1.reset();
  // fc1's bias gradient came with the activation's backward above.
  DeviceBuffer dln2 = column_parallel_backward(
      mb, L,
      {OpLabel::kMlpFc1Dgrad, OpLabel::kMlpFc1Wgrad, OpLabel::kMlpInputAllGather,
       OpLabel::kMlpAllReduce, OpLabel::kMlpReduceScatter, OpLabel::kMlpFc1Cast},
      dh1.as<bf16>(), w.fc1_w, w.fc1_wg, nullptr, a.ln2.as<bf16>(), fc1_local_,
      fp8_linear(layer, 2), &a.fc1_in8t);
  dh1.reset();
  a.fc1_in8t.reset();
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kMlpNorm));
    // grad <- grad (residual path) + d norm2
    kernels::norm_backward(dln2.as<bf16>(), a.x_mid.as<bf16>(), w.ln2_w, a.ln2_mean.as<float>(),
                           a.ln2_rstd.as<float>(), grad.as<bf16>(), grad.as<bf16>(), w.ln2_wg,
                           w.ln2_bg, Tl, h, rms_, s);
  }
  dln2.reset();
  a.ln2.reset();
  a.x_mid.reset();
}

// The attention block's backward; `grad` holds dLoss/d x_mid and becomes dLoss/d x_in (in place).
void GptStage::attention_block_backward(int64_t layer, int mb, LayerActivations& a,
                                        DeviceBuffer& grad) {
  const LayerWeights& w = weights_[layer];
  const int L = static_cast<int>(layer);
  const int64_t T = tokens_, Tl = tokens_local_, h = hidden_, attn_width = heads_local_ * head_dim_;
  auto name = [&](OpLabel label) { return compute_range(RangePass::kBackward, mb, L, label); };
  cudaStream_t s = r_.compute;
  // Attention block: x_mid = x_in + proj(attn(qkv(norm(x_in)))) + b_proj
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnResidual));
    if (w.proj_bg != nullptr) kernels::bias_grad(grad.as<bf16>(), w.proj_bg, Tl, h, s);
  }
  DeviceBuffer dctx = row_parallel_backward(
      mb, L,
      {OpLabel::kAttnProjDgrad, OpLabel::kAttnProjWgrad, OpLabel::kAttnAllGather, OpLabel::kNone,
       OpLabel::kNone, OpLabel::kAttnProjCast},
      grad.as<bf16>(), w.proj_w, w.proj_wg, a.ctx.as<bf16>(), attn_width, fp8_linear(layer, 1),
      &a.proj_in8t);
  a.proj_in8t.reset();
  DeviceBuffer dqkv;
  if (flash_) {
    if (!a.lse) {  // selective recomputation: the forward again, for its log-sum-exp
      NvtxRange range(r_.nvtx, compute_range(RangePass::kRecompute, mb, L, OpLabel::kAttnFlash));
      DeviceBuffer ctx = buffer(kWork, T * attn_width * 2);
      a.lse = buffer(kWork, mbs_ * heads_local_ * seq_ * 4);
      flash_forward(a, ctx.as<bf16>(), a.lse.as<float>());
    }
    dqkv = buffer(kWork, T * qkv_local_ * 2);
    flash_backward(mb, L, a, a.lse.as<float>(), dctx.as<bf16>(), dqkv.as<bf16>());
  } else {
    a.ctx.reset();
    if (!a.probs) {  // selective recomputation
      NvtxRange range(r_.nvtx, compute_range(RangePass::kRecompute, mb, L, OpLabel::kAttnCore));
      attention_probs(RangePass::kRecompute, a.qkv.as<bf16>(), a.probs, kWork);
    }
    dqkv = buffer(kWork, T * qkv_local_ * 2);
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnCore));
    attention_backward(a, a.probs.as<bf16>(), dctx.as<bf16>(), dqkv.as<bf16>());
  }
  a.ctx.reset();
  a.lse.reset();
  a.q.reset();
  a.probs.reset();
  dctx.reset();
  a.qkv.reset();
  if (rotary_) {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnRope));
    kernels::rotary(dqkv.as<bf16>(), T, mbs_, kv_local_, group_, head_dim_,
                    rotary_angles_.as<float2>(), true, s);
  }
  DeviceBuffer dln1 = column_parallel_backward(
      mb, L,
      {OpLabel::kAttnQkvDgrad, OpLabel::kAttnQkvWgrad, OpLabel::kAttnInputAllGather,
       OpLabel::kAttnAllReduce, OpLabel::kAttnReduceScatter, OpLabel::kAttnQkvCast},
      dqkv.as<bf16>(), w.qkv_w, w.qkv_wg, w.qkv_bg, a.ln1.as<bf16>(), qkv_local_,
      fp8_linear(layer, 0), &a.qkv_in8t);
  dqkv.reset();
  a.qkv_in8t.reset();
  {
    NvtxRange range(r_.nvtx, name(OpLabel::kAttnNorm));
    kernels::norm_backward(dln1.as<bf16>(), a.x_in.as<bf16>(), w.ln1_w, a.ln1_mean.as<float>(),
                           a.ln1_rstd.as<float>(), grad.as<bf16>(), grad.as<bf16>(), w.ln1_wg,
                           w.ln1_bg, Tl, h, rms_, s);
  }
}

// ---- head: final norm, logits, vocabulary-parallel cross-entropy
// ------------------------------------
void GptStage::head_forward(int mb, HeadActivations& hd, const int32_t* targets, float* loss_sum) {
  const ParamStore& p = *r_.params;
  const int64_t T = tokens_, Tl = tokens_local_, h = hidden_;
  cudaStream_t s = r_.compute;
  const RangePass fwd = RangePass::kForward;
  hd.targets = targets;
  {
    NvtxRange range(r_.nvtx, compute_range(fwd, mb, kHeadSite, OpLabel::kNorm));
    hd.y = buffer(kAct, Tl * h * 2);
    hd.mean = buffer(kAct, Tl * 4);
    hd.rstd = buffer(kAct, Tl * 4);
    kernels::norm_forward(hd.x_in.as<bf16>(), p.weight("head.norm.weight"),
                          rms_ ? nullptr : p.weight("head.norm.bias"), hd.y.as<bf16>(),
                          hd.mean.as<float>(), hd.rstd.as<float>(), Tl, h, kNormEps, rms_, s);
  }
  if (sp_) {
    hd.y_full = gather_sequence(fwd, mb, kHeadSite, OpLabel::kAllGather, hd.y.as<bf16>(), kAct);
    hd.y.reset();
  } else {
    hd.y_full = std::move(hd.y);
  }
  const bf16* word =
      p.has("head.logits.weight") ? p.weight("head.logits.weight") : p.weight("embed.word");
  {
    NvtxRange range(r_.nvtx, compute_range(fwd, mb, kHeadSite, OpLabel::kLogits));
    hd.logits = buffer(kAct, T * vocab_local_ * 2);
    r_.gemm->linear_forward(hd.y_full.as<bf16>(), word, hd.logits.as<bf16>(), T, h, vocab_local_);
  }
  DeviceBuffer partial = buffer(kWork, 3 * T * 4 * tp_);
  float* mine = partial.as<float>() + 3 * T * r_.layout->tp_rank;
  {
    NvtxRange range(r_.nvtx, compute_range(fwd, mb, kHeadSite, OpLabel::kLoss));
    kernels::cross_entropy_partial(hd.logits.as<bf16>(), targets, mine, T, vocab_local_,
                                   vocab_start_, vocab_, s);
  }
  if (tp_ > 1) {
    NvtxRange range(r_.nvtx, tp_range(fwd, mb, kHeadSite, OpLabel::kLossAllGather));
    r_.comm->tp.all_gather(mine, partial.get(), 3 * T, ncclFloat32, s);
  }
  hd.row_max = buffer(kAct, T * 4);
  hd.sums = buffer(kAct, 2 * T * 4);
  kernels::cross_entropy_combine(partial.as<float>(), static_cast<int>(tp_), hd.row_max.as<float>(),
                                 hd.sums.as<float>(), loss_sum, T, s);
}

DeviceBuffer GptStage::head_backward(int mb, HeadActivations& hd, float grad_scale) {
  const ParamStore& p = *r_.params;
  const int64_t T = tokens_, Tl = tokens_local_, h = hidden_;
  cudaStream_t s = r_.compute;
  const RangePass bwd = RangePass::kBackward;
  const bool untied = p.has("head.logits.weight");
  const bf16* word = untied ? p.weight("head.logits.weight") : p.weight("embed.word");
  float* word_grad = untied ? p.grad("head.logits.weight") : p.grad("embed.word");
  {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, kHeadSite, OpLabel::kLoss));
    kernels::cross_entropy_backward(hd.logits.as<bf16>(), hd.targets, hd.row_max.as<float>(),
                                    hd.sums.as<float>(), T, vocab_local_, vocab_start_, vocab_,
                                    grad_scale, s);
  }
  DeviceBuffer dy = buffer(kWork, T * h * 2);
  {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, kHeadSite, OpLabel::kLogitsDgrad));
    r_.gemm->linear_dgrad(hd.logits.as<bf16>(), word, dy.as<bf16>(), T, h, vocab_local_);
  }
  dy = reduce_overlapped(
      bwd, mb, kHeadSite, sp_ ? OpLabel::kReduceScatter : OpLabel::kAllReduce, std::move(dy), [&] {
        NvtxRange range(r_.nvtx, compute_range(bwd, mb, kHeadSite, OpLabel::kLogitsWgrad));
        r_.gemm->linear_wgrad(hd.logits.as<bf16>(), hd.y_full.as<bf16>(), word_grad, T, h,
                              vocab_local_);
      });
  hd.logits.reset();
  hd.y_full.reset();
  DeviceBuffer dx = buffer(kWork, Tl * h * 2);
  {
    NvtxRange range(r_.nvtx, compute_range(bwd, mb, kHeadSite, OpLabel::kNorm));
    kernels::norm_backward(dy.as<bf16>(), hd.x_in.as<bf16>(), p.weight("head.norm.weight"),
                           hd.mean.as<float>(), hd.rstd.as<float>(), nullptr, dx.as<bf16>(),
                           p.grad("head.norm.weight"), rms_ ? nullptr : p.grad("head.norm.bias"),
                           Tl, h, rms_, s);
  }
  return dx;
}

// ---- pipeline steps
// ----------------------------------------------------------------------------------
DeviceBuffer GptStage::forward(int mb, int chunk, DeviceBuffer input, const int32_t* tokens,
                               const int32_t* targets, float* loss_sum, float grad_scale) {
  const RankLayout& l = *r_.layout;
  if (fp8_ && !fp8_weights_cast_) {  // the iteration's FP8 weights, before its first forward
    NvtxRange range(r_.nvtx, "fp8.weights");
    fp8_->cast_weights();
    fp8_weights_cast_ = true;
  }
  ChunkActivations& saved = saved_[{mb, chunk}];
  saved.tokens = tokens;
  DeviceBuffer x = l.first_virtual_stage(chunk) ? embed(mb, tokens) : std::move(input);
  saved.layers.resize(static_cast<size_t>(l.layers_per_chunk));
  for (int64_t i = 0; i < l.layers_per_chunk; ++i) {
    LayerActivations& a = saved.layers[static_cast<size_t>(i)];
    a.x_in = std::move(x);
    x = layer_forward(l.first_layer(chunk) + i, RangePass::kForward, mb, a);
  }
  if (!l.last_virtual_stage(chunk)) return x;
  saved.head.emplace();
  saved.head->x_in = std::move(x);
  saved.head->grad_scale = grad_scale;
  head_forward(mb, *saved.head, targets, loss_sum);
  return DeviceBuffer();
}

DeviceBuffer GptStage::backward(int mb, int chunk, DeviceBuffer grad, bool last_micro_batch,
                                const std::function<void(int unit)>& unit_done) {
  const RankLayout& l = *r_.layout;
  const auto it = saved_.find({mb, chunk});
  if (it == saved_.end()) throw std::logic_error("backward of a micro-batch without its forward");
  ChunkActivations& saved = it->second;
  const ParamStore& p = *r_.params;
  if (l.last_virtual_stage(chunk)) {
    grad = head_backward(mb, *saved.head, saved.head->grad_scale);
    saved.head.reset();
    if (last_micro_batch) unit_done(p.head_unit());
  }
  for (int64_t i = l.layers_per_chunk - 1; i >= 0; --i) {
    const int64_t layer = l.first_layer(chunk) + i;
    grad = layer_backward(layer, mb, saved.layers[static_cast<size_t>(i)], std::move(grad));
    if (last_micro_batch) unit_done(p.layer_unit(layer));
  }
  if (l.first_virtual_stage(chunk)) {
    embed_backward(mb, saved.tokens, std::move(grad));
    grad = DeviceBuffer();
    if (last_micro_batch) unit_done(p.embedding_unit());
  }
  saved_.erase(it);
  return grad;
}

}  // namespace mpsim::executor
