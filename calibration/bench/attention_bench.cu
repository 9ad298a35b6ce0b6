// The attention family: calib/attention.<fwd|bwd>.bf16/bh=BH,s=S,d=D (the unfused core) and
// calib/attention.flash.<fwd|bwd>.bf16/bh=BH,s=S,d=D,g=G (the fused one, G query heads per
// key/value head, each of --attention-g that divides BH) over the grid of --attention-bh x
// --attention-s x --attention-d, on GPU 0.
//
// The fused core: FlashAttention::forward and backward (cuDNN's fused causal attention) on the
// same qkv rows, read in place; forward writes the context and the fp32 log-sum-exp [BH, S],
// backward the three input gradients into dqkv.
//
// The executor's attention core (executor/cuda/gpt_model.cu
//   attention_probs + attention_context, and attention_backward) without grouped-query attention
//   (group r = 1): BH = micro-batch x heads (batch 1, BH heads: the layout [s, b, h, 3, d] is the
//   same for any b x h = BH), S = sequence length, D = head size. Forward: batched GEMM Q K^T,
//   causal_softmax_forward, batched GEMM P V. Backward: batched GEMMs dP = dctx V^T and
//   dV = P^T dctx, causal_softmax_backward, batched GEMMs dQ = dS K and dK = dS^T Q. The
//   executor computes the full S x S scores (the causal mask is applied in the softmax only).
#include <cmath>
#include <cstdio>

#include "calibration/bench/attention_bench.h"
#include "executor/cuda/kernels.h"

namespace mpsim::calibration::bench {

namespace kernels = executor::kernels;

namespace {

void run_attention(BenchContext& c) {
  const Options& o = c.options;
  GemmContext& ctx = c.gemm;
  Harness& harness = c.harness;
  const size_t shapes = o.attention_bh.size() * o.attention_s.size() * o.attention_d.size();
  std::fprintf(stderr,
               "calibration_bench: attention: %zu shapes, forward and backward, unfused and fused "
               "(%zu groupings), on GPU %d\n",
               shapes, o.attention_g.size(), ctx.lane().device);
  for (const int64_t bh : o.attention_bh) {
    for (const int64_t s : o.attention_s) {
      for (const int64_t d : o.attention_d) {
        measure_attention_shape(bh, s, d, 0, true, true, "", ctx, harness);
        for (const int64_t g : o.attention_g) {
          if (g >= 1 && bh % g == 0)
            measure_attention_shape(bh, s, d, g, true, true, "", ctx, harness);
        }
      }
    }
  }
}

}  // namespace

const BenchFamily kAttentionFamily = {"attention", run_attention};

namespace {

void measure_flash_shape(int64_t bh, int64_t s, int64_t d, int64_t g, bool forward, bool backward,
                         const std::string& extra_json, GemmContext& ctx, Harness& harness) {
  const Lane lane = ctx.lane();
  const int64_t kv = bh / g;
  const int64_t qkv_bytes = s * (bh + 2 * kv) * d * 2, ctx_bytes = s * bh * d * 2;
  // cuDNN's backward workspace: the fp32 dQ and row sums, a few MiB of its own.
  const int64_t work_bytes = 2 * ctx_bytes + 4 * bh * s + (int64_t{64} << 20);
  if (!fits(lane.device, 2 * (qkv_bytes + ctx_bytes) + 4 * bh * s + work_bytes,
            flash_attention_range_name(!forward, bh, s, d, g) +
                (forward && backward ? " and bwd" : "")))
    return;
  DeviceArray qkv(lane.device, qkv_bytes), dqkv(lane.device, qkv_bytes);
  DeviceArray context(lane.device, ctx_bytes), dcontext(lane.device, ctx_bytes);
  DeviceArray lse(lane.device, 4 * bh * s);
  fill_uniform<bf16>(qkv, -1.0f, 1.0f, 3, lane.stream);
  fill_uniform<bf16>(dcontext, -1.0f, 1.0f, 4, lane.stream);
  zero(dqkv, lane.stream);
  // Without grouping the executor's interleaved rows [s, bh, 3, d]; with it the packed queries
  // [s, bh, d] followed by the interleaved keys and values [s, kv, 2, d].
  executor::AttentionShape shape;
  shape.batch = 1;
  shape.heads = bh;
  shape.kv_heads = kv;
  shape.seq = s;
  shape.head_dim = d;
  shape.o = {bh * d, d, bh * d};
  const bf16* q = qkv.as<bf16>();
  bf16* dq = dqkv.as<bf16>();
  const bf16 *k = q + d, *v = q + 2 * d;
  bf16 *dk = dq + d, *dv = dq + 2 * d;
  if (g == 1) {
    shape.q = shape.k = shape.v = {bh * 3 * d, 3 * d, bh * 3 * d};
  } else {
    shape.q = shape.o;
    shape.k = shape.v = {kv * 2 * d, 2 * d, kv * 2 * d};
    k = q + s * bh * d;
    v = k + d;
    dk = dq + s * bh * d;
    dv = dk + d;
  }
  executor::FlashAttention& flash = ctx.flash();
  auto issue_forward = [&] {
    ctx.activate();
    flash.forward(shape, q, k, v, context.as<bf16>(), lse.as<float>());
  };
  if (forward) {
    harness.measure(flash_attention_range_name(false, bh, s, d, g), {lane}, issue_forward,
                    extra_json);
  } else {
    issue_forward();
  }
  if (!backward) return;
  harness.measure(
      flash_attention_range_name(true, bh, s, d, g), {lane},
      [&] {
        ctx.activate();
        flash.backward(shape, q, k, v, context.as<bf16>(), dcontext.as<bf16>(), lse.as<float>(), dq,
                       dk, dv);
      },
      extra_json);
}

}  // namespace

void measure_attention_shape(int64_t bh, int64_t s, int64_t d, int64_t group, bool forward,
                             bool backward, const std::string& extra_json, GemmContext& ctx,
                             Harness& harness) {
  auto name = [&](bool pass) {
    return group > 0 ? flash_attention_range_name(pass, bh, s, d, group)
                     : attention_range_name(pass, bh, s, d);
  };
  forward = forward && !harness.measured(name(false));
  backward = backward && !harness.measured(name(true));
  if (!forward && !backward) return;
  if (group > 0) {
    measure_flash_shape(bh, s, d, group, forward, backward, extra_json, ctx, harness);
    return;
  }
  const Lane lane = ctx.lane();
  const int64_t qkv_bytes = s * bh * 3 * d * 2, score_bytes = bh * s * s * 2,
                ctx_bytes = s * bh * d * 2;
  if (!fits(lane.device, 2 * (qkv_bytes + score_bytes + ctx_bytes),
            attention_range_name(!forward, bh, s, d) + (forward && backward ? " and bwd" : "")))
    return;
  DeviceArray qkv(lane.device, qkv_bytes), dqkv(lane.device, qkv_bytes);
  DeviceArray probs(lane.device, score_bytes), ds(lane.device, score_bytes);
  DeviceArray context(lane.device, ctx_bytes), dcontext(lane.device, ctx_bytes);
  fill_uniform<bf16>(qkv, -1.0f, 1.0f, 3, lane.stream);
  fill_uniform<bf16>(dcontext, -1.0f, 1.0f, 4, lane.stream);
  zero(dqkv, lane.stream);

  const int64_t ld = bh * 3 * d, gw = 3 * d, ss = s * s, ctx_ld = bh * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const bf16* q = qkv.as<bf16>();
  const bf16* k = q + d;
  const bf16* v = q + 2 * d;
  bf16* p = probs.as<bf16>();
  bf16* dp = ds.as<bf16>();
  bf16* dq = dqkv.as<bf16>();
  const bf16* dctx = dcontext.as<bf16>();
  Gemm& gemm = ctx.gemm();

  auto issue_forward = [&] {
    ctx.activate();
    gemm.batched(false, true, s, s, d, 1.0f, {q, ld, gw}, {k, ld, gw}, {p, s, ss}, bh);
    kernels::causal_softmax_forward(p, p, bh, s, scale, lane.stream);
    gemm.batched(false, false, s, d, s, 1.0f, {p, s, ss}, {v, ld, gw},
                 {context.as<bf16>(), ctx_ld, d}, bh);
  };
  if (forward) {
    harness.measure(attention_range_name(false, bh, s, d), {lane}, issue_forward, extra_json);
  } else {
    issue_forward();
  }
  if (!backward) return;
  // The backward pass reads the probabilities the forward repetitions left in `probs`.
  harness.measure(
      attention_range_name(true, bh, s, d), {lane},
      [&] {
        ctx.activate();
        // dP = dctx V^T; dV = P^T dctx
        gemm.batched(false, true, s, s, d, 1.0f, {dctx, ctx_ld, d}, {v, ld, gw}, {dp, s, ss}, bh);
        gemm.batched(true, false, s, d, s, 1.0f, {p, s, ss}, {dctx, ctx_ld, d},
                     {dq + 2 * d, ld, gw}, bh, 0.0f);
        kernels::causal_softmax_backward(dp, p, dp, bh, s, scale, lane.stream);
        // dQ = dS K; dK = dS^T Q
        gemm.batched(false, false, s, d, s, 1.0f, {dp, s, ss}, {k, ld, gw}, {dq, ld, gw}, bh);
        gemm.batched(true, false, s, d, s, 1.0f, {dp, s, ss}, {q, ld, gw}, {dq + d, ld, gw}, bh,
                     0.0f);
      },
      extra_json);
}

}  // namespace mpsim::calibration::bench
