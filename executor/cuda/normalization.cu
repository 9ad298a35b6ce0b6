// LayerNorm and RMSNorm (rows layout; generic kernels for any width); see normalization.h.
#include "executor/cuda/column_sum.cuh"
#include "executor/cuda/normalization.h"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

// Vectorised LayerNorm/RMSNorm forward: each thread keeps its kPacks packs of 8 in registers.
// Needs blockDim.x * kPacks * 8 >= cols.
template <int kPacks>
__global__ void __launch_bounds__(1024)
    norm_forward_vec_kernel(const bf16* x, const bf16* gamma, const bf16* beta, bf16* y,
                            float* mean, float* rstd, int64_t rows, int cols, float eps, bool rms) {
  __shared__ float smem[8 * 32];
  const int packs = cols / 8;
  const float inv_cols = 1.f / static_cast<float>(cols);
  MPSIM_FOR_ROW_GROUPS(base, rows) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    const uint4* xr = reinterpret_cast<const uint4*>(x + row * cols);
    uint4 cache[kPacks];
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      cache[k] = make_uint4(0, 0, 0, 0);
      if (active && p < packs) {
        cache[k] = xr[p];
        float f[8];
        unpack8(cache[k], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) sum += f[e];
      }
    }
    const float mu = rms ? 0.f : row_reduce(sum, Sum{}, smem) * inv_cols;
    float sq = 0.f;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      if (active && p < packs) {
        float f[8];
        unpack8(cache[k], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) sq += (f[e] - mu) * (f[e] - mu);
      }
    }
    const float rs = rsqrtf(row_reduce(sq, Sum{}, smem) * inv_cols + eps);
    if (!active) continue;  // only in the block's last group: no synchronisation follows
    if (threadIdx.x == 0) {
      if (mean) mean[row] = mu;
      if (rstd) rstd[row] = rs;
    }
    uint4* yr = reinterpret_cast<uint4*>(y + row * cols);
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      if (p < packs) {
        float f[8], g[8], b[8] = {};
        unpack8(cache[k], f);
        load_vec<8>(gamma + 8 * p, g);
        if (beta && !rms) load_vec<8>(beta + 8 * p, b);
#pragma unroll
        for (int e = 0; e < 8; ++e) f[e] = (f[e] - mu) * rs * g[e] + b[e];
        yr[p] = pack8(f);
      }
    }
  }
}

// Any width and alignment: reads the row from memory on each pass.
__global__ void __launch_bounds__(1024)
    norm_forward_generic_kernel(const bf16* x, const bf16* gamma, const bf16* beta, bf16* y,
                                float* mean, float* rstd, int64_t rows, int64_t cols, float eps,
                                bool rms) {
  __shared__ float smem[8 * 32];
  const float inv_cols = 1.f / static_cast<float>(cols);
  MPSIM_FOR_ROW_GROUPS(base, rows) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    const bf16* xr = x + row * cols;
    float sum = 0.f;
    if (active)
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += __bfloat162float(xr[c]);
    const float mu = rms ? 0.f : row_reduce(sum, Sum{}, smem) * inv_cols;
    float sq = 0.f;
    if (active)
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const float d = __bfloat162float(xr[c]) - mu;
        sq += d * d;
      }
    const float rs = rsqrtf(row_reduce(sq, Sum{}, smem) * inv_cols + eps);
    if (!active) continue;
    if (threadIdx.x == 0) {
      if (mean) mean[row] = mu;
      if (rstd) rstd[row] = rs;
    }
    bf16* yr = y + row * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float b = beta && !rms ? __bfloat162float(beta[c]) : 0.f;
      yr[c] =
          __float2bfloat16((__bfloat162float(xr[c]) - mu) * rs * __bfloat162float(gamma[c]) + b);
    }
  }
}

// Vectorised backward: dx per row, and dgamma/dbeta partial sums kept in registers over all the
// rows the block visits, folded over threadIdx.y in shared memory, then one atomicAdd per column
// per block. blockDim.x * blockDim.y is 256 when blockDim.y > 1.
// About 100 lines, kept as one function: the fold at its end works on the register arrays the row
// loop fills (dg, db), and moving it into a device function changes the code nvcc generates.
template <int kPacks>
__global__ void __launch_bounds__(512)
    norm_backward_vec_kernel(const bf16* dy, const bf16* x, const bf16* gamma, const float* mean,
                             const float* rstd, const bf16* dresidual, bf16* dx, float* dgamma,
                             float* dbeta, int64_t rows, int cols, bool rms) {
  __shared__ float smem[8 * 64];
  const int packs = cols / 8;
  const float inv_cols = 1.f / static_cast<float>(cols);
  float dg[kPacks][8] = {}, db[kPacks][8] = {};
  MPSIM_FOR_ROW_GROUPS(base, rows) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    float mu = 0.f, rs = 0.f;
    if (active) {
      if (!rms) mu = mean[row];
      rs = rstd[row];
    }
    const uint4* xr = reinterpret_cast<const uint4*>(x + row * cols);
    const uint4* dyr = reinterpret_cast<const uint4*>(dy + row * cols);
    uint4 xc[kPacks], dc[kPacks];
    float2 s = make_float2(0.f, 0.f);
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      xc[k] = dc[k] = make_uint4(0, 0, 0, 0);
      if (active && p < packs) {
        xc[k] = xr[p];
        dc[k] = dyr[p];
        float xf[8], df[8], gm[8];
        unpack8(xc[k], xf);
        unpack8(dc[k], df);
        load_vec<8>(gamma + 8 * p, gm);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const float xh = (xf[e] - mu) * rs;
          const float g = df[e] * gm[e];
          s.x += g;
          s.y += g * xh;
          dg[k][e] += df[e] * xh;
          db[k][e] += df[e];
        }
      }
    }
    s = row_sum2(s, smem);
    const float mean_g = rms ? 0.f : s.x * inv_cols;
    const float mean_gx = s.y * inv_cols;
    if (!active) continue;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      if (p < packs) {
        float xf[8], df[8], gm[8], o[8] = {};
        unpack8(xc[k], xf);
        unpack8(dc[k], df);
        load_vec<8>(gamma + 8 * p, gm);
        if (dresidual) load_vec<8>(dresidual + row * cols + 8 * p, o);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const float xh = (xf[e] - mu) * rs;
          o[e] += rs * (df[e] * gm[e] - mean_g - xh * mean_gx);
        }
        store_vec<8>(dx + row * cols + 8 * p, o);
      }
    }
  }
  if (blockDim.y == 1) {  // each column has one owner in the block
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      if (p < packs) {
        if (dgamma) atomic_add_vec<8>(dgamma + 8 * p, dg[k]);
        if (dbeta) atomic_add_vec<8>(dbeta + 8 * p, db[k]);
      }
    }
    return;
  }
  __shared__ float4 fold[2][kThreads * 2];  // [dgamma, dbeta][threadIdx.y][threadIdx.x * 8 + e]
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  const int tile = blockDim.x * 8;  // columns of one k
#pragma unroll
  for (int k = 0; k < kPacks; ++k) {
    const int slot = (threadIdx.y * tile + threadIdx.x * 8) / 4;
    fold[0][slot] = make_float4(dg[k][0], dg[k][1], dg[k][2], dg[k][3]);
    fold[0][slot + 1] = make_float4(dg[k][4], dg[k][5], dg[k][6], dg[k][7]);
    fold[1][slot] = make_float4(db[k][0], db[k][1], db[k][2], db[k][3]);
    fold[1][slot + 1] = make_float4(db[k][4], db[k][5], db[k][6], db[k][7]);
    __syncthreads();
    // Thread tid sums columns [4 tid, 4 tid + 4) of this k (tile <= 1024) over threadIdx.y.
    const int j = 4 * tid;
    const int c = k * tile + j;  // pack k * blockDim.x + j / 8, element j % 8
    if (j < tile && c < cols) {
      float a[4] = {}, b[4] = {};
      for (int yy = 0; yy < static_cast<int>(blockDim.y); ++yy) {
        const float4 fa = fold[0][(yy * tile + j) / 4], fb = fold[1][(yy * tile + j) / 4];
        a[0] += fa.x, a[1] += fa.y, a[2] += fa.z, a[3] += fa.w;
        b[0] += fb.x, b[1] += fb.y, b[2] += fb.z, b[3] += fb.w;
      }
      if (dgamma) atomic_add_vec<4>(dgamma + c, a);
      if (dbeta) atomic_add_vec<4>(dbeta + c, b);
    }
    __syncthreads();
  }
}

// Any width and alignment: dx only (dgamma/dbeta by column_tile_kernel with NormParamGradOp).
__global__ void __launch_bounds__(1024)
    norm_backward_dx_generic_kernel(const bf16* dy, const bf16* x, const bf16* gamma,
                                    const float* mean, const float* rstd, const bf16* dresidual,
                                    bf16* dx, int64_t rows, int64_t cols, bool rms) {
  __shared__ float smem[8 * 64];
  const float inv_cols = 1.f / static_cast<float>(cols);
  MPSIM_FOR_ROW_GROUPS(base, rows) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    float mu = 0.f, rs = 0.f;
    if (active) {
      if (!rms) mu = mean[row];
      rs = rstd[row];
    }
    const bf16* xr = x + row * cols;
    const bf16* dyr = dy + row * cols;
    float2 s = make_float2(0.f, 0.f);
    if (active)
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const float g = __bfloat162float(dyr[c]) * __bfloat162float(gamma[c]);
        s.x += g;
        s.y += g * (__bfloat162float(xr[c]) - mu) * rs;
      }
    s = row_sum2(s, smem);
    const float mean_g = rms ? 0.f : s.x * inv_cols;
    const float mean_gx = s.y * inv_cols;
    if (!active) continue;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float xh = (__bfloat162float(xr[c]) - mu) * rs;
      const float g = __bfloat162float(dyr[c]) * __bfloat162float(gamma[c]);
      float o = rs * (g - mean_g - xh * mean_gx);
      if (dresidual) o += __bfloat162float(dresidual[row * cols + c]);
      dx[row * cols + c] = __float2bfloat16(o);
    }
  }
}

// dgamma (acc[0]) and dbeta (acc[1]) from the saved statistics; mean null for RMSNorm.
template <int kVec>
struct NormParamGradOp {
  const bf16* dy;
  const bf16* x;
  const float* mean;
  const float* rstd;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, Acc<2, kVec>& acc) const {
    const float mu = mean ? mean[r] : 0.f;
    const float rs = rstd[r];
    float d[kVec], v[kVec];
    load_vec<kVec>(dy + r * cols + c, d);
    load_vec<kVec>(x + r * cols + c, v);
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      acc[0][e] += d[e] * (v[e] - mu) * rs;
      acc[1][e] += d[e];
    }
  }
};

template <int kPacks>
void launch_norm_backward_vec(const bf16* dy, const bf16* x, const bf16* gamma, const float* mean,
                              const float* rstd, const bf16* dresidual, bf16* dx, float* dgamma,
                              float* dbeta, int64_t rows, int64_t cols, bool rms,
                              cudaStream_t stream) {
  const RowConfig cfg = row_config(rows, cols / 8, kPacks, 512);
  const int threads = static_cast<int>(cfg.block.x * cfg.block.y);
  // One wave of blocks: each block's atomics are amortised over all the rows it visits.
  const int64_t blocks = resident_blocks(norm_backward_vec_kernel<kPacks>, threads);
  norm_backward_vec_kernel<kPacks>
      <<<grid_of(std::min(cfg.row_groups, blocks)), cfg.block, 0, stream>>>(
          dy, x, gamma, mean, rstd, dresidual, dx, dgamma, dbeta, rows, static_cast<int>(cols),
          rms);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void norm_forward(const bf16* x, const bf16* gamma, const bf16* beta, bf16* y, float* mean,
                  float* rstd, int64_t rows, int64_t cols, float eps, bool rms,
                  cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  constexpr int kPacks = 4;
  if (cols % 8 == 0 && cols / 8 <= 1024 * kPacks && all_aligned16(x, gamma, beta, y)) {
    const RowConfig cfg = row_config(rows, cols / 8, kPacks);
    norm_forward_vec_kernel<kPacks><<<grid_of(cfg.row_groups), cfg.block, 0, stream>>>(
        x, gamma, beta, y, mean, rstd, rows, static_cast<int>(cols), eps, rms);
  } else {
    const RowConfig cfg = row_config(rows, cols, 8);
    norm_forward_generic_kernel<<<grid_of(cfg.row_groups), cfg.block, 0, stream>>>(
        x, gamma, beta, y, mean, rstd, rows, cols, eps, rms);
  }
  CUDA_CHECK_LAUNCH();
}

void norm_backward(const bf16* dy, const bf16* x, const bf16* gamma, const float* mean,
                   const float* rstd, const bf16* dresidual, bf16* dx, float* dgamma, float* dbeta,
                   int64_t rows, int64_t cols, bool rms, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  if (rms) dbeta = nullptr;
  const bool vec = cols % 8 == 0 && all_aligned16(dy, x, gamma, dresidual, dx, dgamma, dbeta);
  if (vec && cols / 8 <= 512 * 2) {
    launch_norm_backward_vec<2>(dy, x, gamma, mean, rstd, dresidual, dx, dgamma, dbeta, rows, cols,
                                rms, stream);
  } else if (vec && cols / 8 <= 512 * 4) {
    launch_norm_backward_vec<4>(dy, x, gamma, mean, rstd, dresidual, dx, dgamma, dbeta, rows, cols,
                                rms, stream);
  } else {
    const RowConfig cfg = row_config(rows, cols, 8);
    norm_backward_dx_generic_kernel<<<grid_of(cfg.row_groups), cfg.block, 0, stream>>>(
        dy, x, gamma, mean, rstd, dresidual, dx, rows, cols, rms);
    CUDA_CHECK_LAUNCH();
    // dx may alias dresidual only, never dy or x, so the statistics pass can follow.
    if (dgamma == nullptr && dbeta == nullptr) return;
    const float* mu = rms ? nullptr : mean;
    if (vec)
      launch_column_tile<8, 2>(NormParamGradOp<8>{dy, x, mu, rstd, cols}, dgamma, dbeta, rows, cols,
                               stream);
    else
      launch_column_tile<1, 2>(NormParamGradOp<1>{dy, x, mu, rstd, cols}, dgamma, dbeta, rows, cols,
                               stream);
  }
}

}  // namespace mpsim::executor::kernels
