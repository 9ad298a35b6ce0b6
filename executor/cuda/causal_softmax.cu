// Causal softmax (rows layout; generic kernels for any length); see causal_softmax.h.
#include "executor/cuda/causal_softmax.h"
#include "executor/cuda/kernel_helpers.cuh"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

// Row `row` of [batch, seq, seq] is query i = row % seq; keys j <= i are kept. Packs past the
// diagonal are never read. scale_log2 = scale * log2(e).
template <int kPacks>
__global__ void __launch_bounds__(1024)
    softmax_forward_vec_kernel(const bf16* scores, bf16* probs, int64_t rows, int seq,
                               float scale_log2) {
  __shared__ float smem[8 * 32];
  const int packs = seq / 8;
  MPSIM_FOR_ROW_GROUPS(base, rows) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    const int i = active ? static_cast<int>(row % seq) : -1;
    const int live = active ? i / 8 + 1 : 0;  // packs holding a kept key
    const uint4* in = reinterpret_cast<const uint4*>(scores + row * seq);
    uint4 cache[kPacks];
    float m = -INFINITY;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      cache[k] = make_uint4(0, 0, 0, 0);
      if (p < live) {
        cache[k] = in[p];
        float f[8];
        unpack8(cache[k], f);
#pragma unroll
        for (int e = 0; e < 8; ++e)
          if (p * 8 + e <= i) m = fmaxf(m, f[e] * scale_log2);
      }
    }
    m = row_reduce(m, Max{}, smem);
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      if (p < live) {
        float f[8];
        unpack8(cache[k], f);
#pragma unroll
        for (int e = 0; e < 8; ++e)
          if (p * 8 + e <= i) s += exp2f(f[e] * scale_log2 - m);
      }
    }
    s = row_reduce(s, Sum{}, smem);
    if (!active) continue;
    const float inv = 1.f / s;
    uint4* out = reinterpret_cast<uint4*>(probs + row * seq);
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      if (p < packs) {
        float f[8];
        unpack8(cache[k], f);
#pragma unroll
        for (int e = 0; e < 8; ++e)
          f[e] = p * 8 + e <= i ? exp2f(f[e] * scale_log2 - m) * inv : 0.f;
        out[p] = pack8(f);
      }
    }
  }
}

__global__ void __launch_bounds__(1024)
    softmax_forward_generic_kernel(const bf16* scores, bf16* probs, int64_t rows, int64_t seq,
                                   float scale_log2) {
  __shared__ float smem[8 * 32];
  MPSIM_FOR_ROW_GROUPS(base, rows) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    const int64_t i = active ? row % seq : -1;
    const bf16* in = scores + row * seq;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x)
      m = fmaxf(m, __bfloat162float(in[j]) * scale_log2);
    m = row_reduce(m, Max{}, smem);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x)
      s += exp2f(__bfloat162float(in[j]) * scale_log2 - m);
    s = row_reduce(s, Sum{}, smem);
    if (!active) continue;
    const float inv = 1.f / s;
    bf16* out = probs + row * seq;
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x)
      out[j] =
          __float2bfloat16(j <= i ? exp2f(__bfloat162float(in[j]) * scale_log2 - m) * inv : 0.f);
  }
}

template <int kPacks>
__global__ void __launch_bounds__(512)
    softmax_backward_vec_kernel(const bf16* dprobs, const bf16* probs, bf16* dscores, int64_t rows,
                                int seq, float scale) {
  __shared__ float smem[8 * 32];
  const int packs = seq / 8;
  MPSIM_FOR_ROW_GROUPS(base, rows) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    const int i = active ? static_cast<int>(row % seq) : -1;
    const int live = active ? i / 8 + 1 : 0;
    const uint4* dpr = reinterpret_cast<const uint4*>(dprobs + row * seq);
    const uint4* pr = reinterpret_cast<const uint4*>(probs + row * seq);
    uint4 dc[kPacks], pc[kPacks];
    float dot = 0.f;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      dc[k] = pc[k] = make_uint4(0, 0, 0, 0);
      if (p < live) {
        dc[k] = dpr[p];
        pc[k] = pr[p];
        float d[8], q[8];
        unpack8(dc[k], d);
        unpack8(pc[k], q);
#pragma unroll
        for (int e = 0; e < 8; ++e)
          if (p * 8 + e <= i) dot += d[e] * q[e];
      }
    }
    dot = row_reduce(dot, Sum{}, smem);
    if (!active) continue;
    uint4* out = reinterpret_cast<uint4*>(dscores + row * seq);
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      if (p < packs) {
        float d[8], q[8];
        unpack8(dc[k], d);
        unpack8(pc[k], q);
#pragma unroll
        for (int e = 0; e < 8; ++e) d[e] = p * 8 + e <= i ? scale * q[e] * (d[e] - dot) : 0.f;
        out[p] = pack8(d);
      }
    }
  }
}

__global__ void __launch_bounds__(1024)
    softmax_backward_generic_kernel(const bf16* dprobs, const bf16* probs, bf16* dscores,
                                    int64_t rows, int64_t seq, float scale) {
  __shared__ float smem[8 * 32];
  MPSIM_FOR_ROW_GROUPS(base, rows) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    const int64_t i = active ? row % seq : -1;
    const bf16* dpr = dprobs + row * seq;
    const bf16* pr = probs + row * seq;
    float dot = 0.f;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x)
      dot += __bfloat162float(dpr[j]) * __bfloat162float(pr[j]);
    dot = row_reduce(dot, Sum{}, smem);
    if (!active) continue;
    bf16* out = dscores + row * seq;
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
      float v = 0.f;
      if (j <= i) v = scale * __bfloat162float(pr[j]) * (__bfloat162float(dpr[j]) - dot);
      out[j] = __float2bfloat16(v);
    }
  }
}

}  // namespace

void causal_softmax_forward(const bf16* scores, bf16* probs, int64_t batch, int64_t seq,
                            float scale, cudaStream_t stream) {
  const int64_t rows = batch * seq;
  if (rows <= 0) return;
  constexpr int kPacks = 4;
  const float scale_log2 = scale * kLog2e;
  if (seq % 8 == 0 && seq / 8 <= 1024 * kPacks && all_aligned16(scores, probs)) {
    const RowConfig cfg = row_config(rows, seq / 8, kPacks);
    softmax_forward_vec_kernel<kPacks><<<grid_of(cfg.row_groups), cfg.block, 0, stream>>>(
        scores, probs, rows, static_cast<int>(seq), scale_log2);
  } else {
    const RowConfig cfg = row_config(rows, seq, 8);
    softmax_forward_generic_kernel<<<grid_of(cfg.row_groups), cfg.block, 0, stream>>>(
        scores, probs, rows, seq, scale_log2);
  }
  CUDA_CHECK_LAUNCH();
}

void causal_softmax_backward(const bf16* dprobs, const bf16* probs, bf16* dscores, int64_t batch,
                             int64_t seq, float scale, cudaStream_t stream) {
  const int64_t rows = batch * seq;
  if (rows <= 0) return;
  constexpr int kPacks = 4;
  if (seq % 8 == 0 && seq / 8 <= 512 * kPacks && all_aligned16(dprobs, probs, dscores)) {
    const RowConfig cfg = row_config(rows, seq / 8, kPacks, 512);
    softmax_backward_vec_kernel<kPacks><<<grid_of(cfg.row_groups), cfg.block, 0, stream>>>(
        dprobs, probs, dscores, rows, static_cast<int>(seq), scale);
  } else {
    const RowConfig cfg = row_config(rows, seq, 8);
    softmax_backward_generic_kernel<<<grid_of(cfg.row_groups), cfg.block, 0, stream>>>(
        dprobs, probs, dscores, rows, seq, scale);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
