// The executor's own CUDA kernels (contract in kernels.h). All arithmetic is fp32 on bf16 storage.
//
// Layouts used below:
//  - flat: grid-stride over elements, 8 (bf16) or 4 (fp32) per thread when every pointer is
//    16-byte aligned, then a scalar tail;
//  - rows: a block of (X, Y) threads handles Y rows at a time, X threads (a warp or more) per
//    row, grid-stride over rows; row reductions use warp shuffles, then shared memory when X > 32;
//  - column tiles: blocks of (32, 8) threads over (column tile, chunk of rows) for column sums;
//    each block reduces its chunk in registers and shared memory, then one atomicAdd per column.
// A "vectorised" path needs the row length to be a multiple of 8 and the base pointers 16-byte
// aligned (cudaMalloc gives 256); otherwise the same kernels run element by element.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "executor/core/param_init.h"
#include "executor/cuda/cuda_check.h"
#include "executor/cuda/kernels.h"

namespace mpsim::executor::kernels {
namespace {

constexpr int kThreads = 256;
constexpr float kLog2e = 1.4426950408889634f;
constexpr int64_t kMaxGrid = int64_t{1} << 30;

// ---- host helpers -------------------------------------------------------------------------------

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int sm_count() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return std::max(sms, 1);
}

// Blocks of `threads` that fit on the whole GPU at once.
template <class Kernel>
int64_t resident_blocks(Kernel kernel, int threads) {
  int per_sm = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0));
  return int64_t{std::max(per_sm, 1)} * sm_count();
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
template <class... P>
bool all_aligned16(const P*... p) {
  return (aligned16(p) && ...);  // null pointers are aligned
}

// Grid for a flat grid-stride loop over `work` items.
unsigned flat_grid(int64_t work) {
  return static_cast<unsigned>(std::clamp<int64_t>(ceil_div(work, kThreads), 1, sm_count() * 16));
}

struct RowConfig {
  dim3 block;
  int64_t row_groups;  // ceil(rows / block.y)
};

// X threads per row: the smallest power of two >= min_x with X * per_thread >= units (capped at
// max_x); Y = 256 / X rows per block (at least 1). Kernels that reduce over a row need min_x 32.
RowConfig row_config(int64_t rows, int64_t units, int per_thread, int max_x = 1024,
                     int min_x = 32) {
  int x = min_x;
  while (int64_t{x} * per_thread < units && x < max_x) x *= 2;
  const int y = std::max(1, kThreads / x);
  return {dim3(x, y), ceil_div(rows, y)};
}
unsigned grid_of(int64_t blocks) {
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxGrid));
}

// ---- device helpers -----------------------------------------------------------------------------

__device__ __forceinline__ void unpack8(const uint4& u, float (&f)[8]) {
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}
__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {
  uint4 u;
  auto* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return u;
}

// kVec consecutive bf16 as floats; kVec is 8 (16-byte aligned) or 1.
template <int kVec>
__device__ __forceinline__ void load_vec(const bf16* p, float (&f)[kVec]) {
  if constexpr (kVec == 8) {
    unpack8(*reinterpret_cast<const uint4*>(p), f);
  } else {
#pragma unroll
    for (int e = 0; e < kVec; ++e) f[e] = __bfloat162float(p[e]);
  }
}
template <int kVec>
__device__ __forceinline__ void store_vec(bf16* p, const float (&f)[kVec]) {
  if constexpr (kVec == 8) {
    *reinterpret_cast<uint4*>(p) = pack8(f);
  } else {
#pragma unroll
    for (int e = 0; e < kVec; ++e) p[e] = __float2bfloat16(f[e]);
  }
}
// p[e] += f[e] atomically; p is 16-byte aligned when kVec == 8.
template <int kVec>
__device__ __forceinline__ void atomic_add_vec(float* p, const float (&f)[kVec]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr bool kFloat4 = kVec % 4 == 0;  // sm_90 has 16-byte vector atomics
#else
  constexpr bool kFloat4 = false;
#endif
  if constexpr (kFloat4) {
#pragma unroll
    for (int e = 0; e < kVec; e += 4)
      atomicAdd(reinterpret_cast<float4*>(p + e), make_float4(f[e], f[e + 1], f[e + 2], f[e + 3]));
  } else {
#pragma unroll
    for (int e = 0; e < kVec; ++e) atomicAdd(p + e, f[e]);
  }
}

struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
  __device__ static float identity() { return 0.f; }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
  __device__ static float identity() { return -INFINITY; }
};

template <class Op>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Reduces v over the blockDim.x threads sharing threadIdx.y (blockDim.x a multiple of 32); every
// such thread gets the result. Every thread of the block must call it: it synchronises the block
// when a row spans several warps. smem holds blockDim.y * 32 floats.
template <class Op>
__device__ __forceinline__ float row_reduce(float v, Op op, float* smem) {
  v = warp_reduce(v, op);
  if (blockDim.x <= 32) return v;
  const int lane = threadIdx.x & 31;
  float* s = smem + threadIdx.y * 32;
  __syncthreads();  // the previous reduction's readers are done
  if (lane == 0) s[threadIdx.x >> 5] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x >> 5) ? s[lane] : Op::identity();
  return warp_reduce(v, op);
}
// Two sums at once (one round of synchronisation). smem holds blockDim.y * 64 floats.
__device__ __forceinline__ float2 row_sum2(float2 v, float* smem) {
  v.x = warp_reduce(v.x, Sum{});
  v.y = warp_reduce(v.y, Sum{});
  if (blockDim.x <= 32) return v;
  const int lane = threadIdx.x & 31;
  float* s = smem + threadIdx.y * 64;
  __syncthreads();
  if (lane == 0) {
    s[threadIdx.x >> 5] = v.x;
    s[32 + (threadIdx.x >> 5)] = v.y;
  }
  __syncthreads();
  const bool in = lane < static_cast<int>(blockDim.x >> 5);
  v.x = warp_reduce(in ? s[lane] : 0.f, Sum{});
  v.y = warp_reduce(in ? s[32 + lane] : 0.f, Sum{});
  return v;
}

__device__ __forceinline__ int64_t global_thread() {
  return int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() { return int64_t{gridDim.x} * blockDim.x; }

// Grid-stride over rows in groups of blockDim.y; the loop condition is the same for the whole
// block, so kernels may synchronise inside it.
#define MPSIM_FOR_ROW_GROUPS(base, rows)                               \
  for (int64_t base = int64_t{blockIdx.x} * blockDim.y; base < (rows); \
       base += int64_t{gridDim.x} * blockDim.y)

// Kernels of the "rows" layout whose threads never synchronise loop like this.
#define MPSIM_FOR_ROWS(row, rows)                                                  \
  for (int64_t row = int64_t{blockIdx.x} * blockDim.y + threadIdx.y; row < (rows); \
       row += int64_t{gridDim.x} * blockDim.y)

__device__ __forceinline__ float gelu(float x) {
  const float u = 0.7978845608f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.f + tanhf(u));
}
__device__ __forceinline__ float gelu_grad(float x) {
  const float x2 = x * x;
  const float t = tanhf(0.7978845608f * (x + 0.044715f * x2 * x));
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * 0.7978845608f * (1.f + 3.f * 0.044715f * x2);
}

// ---- element-wise -------------------------------------------------------------------------------

__global__ void cast_kernel(const float* in, bf16* out, int64_t n, bool vec) {
  int64_t done = 0;
  if (vec) {
    const int64_t n8 = n / 8;
    for (int64_t i = global_thread(); i < n8; i += grid_threads()) {
      const float4 a = reinterpret_cast<const float4*>(in)[2 * i];
      const float4 b = reinterpret_cast<const float4*>(in)[2 * i + 1];
      const float f[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
      store_vec<8>(out + 8 * i, f);
    }
    done = n8 * 8;
  }
  for (int64_t i = done + global_thread(); i < n; i += grid_threads())
    out[i] = __float2bfloat16(in[i]);
}

__global__ void fill_kernel(float* out, float value, int64_t n, bool vec) {
  int64_t done = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = global_thread(); i < n4; i += grid_threads())
      reinterpret_cast<float4*>(out)[i] = make_float4(value, value, value, value);
    done = n4 * 4;
  }
  for (int64_t i = done + global_thread(); i < n; i += grid_threads()) out[i] = value;
}

__global__ void add_kernel(const bf16* a, const bf16* b, bf16* out, int64_t n, bool vec) {
  int64_t done = 0;
  if (vec) {
    const int64_t n8 = n / 8;
    for (int64_t i = global_thread(); i < n8; i += grid_threads()) {
      float x[8], y[8];
      load_vec<8>(a + 8 * i, x);
      load_vec<8>(b + 8 * i, y);
#pragma unroll
      for (int e = 0; e < 8; ++e) x[e] += y[e];
      store_vec<8>(out + 8 * i, x);
    }
    done = n8 * 8;
  }
  for (int64_t i = done + global_thread(); i < n; i += grid_threads())
    out[i] = __float2bfloat16(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}

__global__ void init_parameter_kernel(float* out, int64_t rows, int64_t cols, int64_t row_offset,
                                      int64_t col_offset, int64_t global_cols, uint64_t seed,
                                      uint64_t param_id, float mean, float std) {
  const int64_t n = rows * cols;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    if (std == 0.f) {
      out[i] = mean;
      continue;
    }
    const int64_t r = i / cols;
    const int64_t c = i - r * cols;
    const auto index = static_cast<uint64_t>((row_offset + r) * global_cols + col_offset + c);
    out[i] = mean + std * init_normal(seed, param_id, index);
  }
}

// ---- embedding ----------------------------------------------------------------------------------

template <int kVec>
__global__ void embedding_forward_kernel(const int32_t* tokens, const bf16* word,
                                         const bf16* position, bf16* out, int64_t rows,
                                         int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                                         int64_t vocab_local) {
  MPSIM_FOR_ROWS(r, rows) {
    const int64_t local = int64_t{tokens[r]} - vocab_start;
    const bool owned = local >= 0 && local < vocab_local;
    const bf16* w = word + local * hidden;
    const bf16* p = position ? position + (r / micro_batch) * hidden : nullptr;
    bf16* o = out + r * hidden;
    for (int64_t c = int64_t{threadIdx.x} * kVec; c < hidden; c += int64_t{blockDim.x} * kVec) {
      float v[kVec] = {};
      if (owned) load_vec<kVec>(w + c, v);
      if (p) {
        float q[kVec];
        load_vec<kVec>(p + c, q);
#pragma unroll
        for (int e = 0; e < kVec; ++e) v[e] += q[e];
      }
      store_vec<kVec>(o + c, v);
    }
  }
}

// p[e] += f[e] where this thread is the only writer.
template <int kVec>
__device__ __forceinline__ void add_to_vec(float* p, const float (&f)[kVec]) {
  if constexpr (kVec % 4 == 0) {
#pragma unroll
    for (int e = 0; e < kVec; e += 4) {
      float4 v = *reinterpret_cast<float4*>(p + e);
      v.x += f[e];
      v.y += f[e + 1];
      v.z += f[e + 2];
      v.w += f[e + 3];
      *reinterpret_cast<float4*>(p + e) = v;
    }
  } else {
#pragma unroll
    for (int e = 0; e < kVec; ++e) p[e] += f[e];
  }
}

// One "row" per position s: the thread owning (s, c) sums dout over the micro_batch sequences
// for dposition (sole writer, no atomics) and scatters each row into dword with atomics.
template <int kVec>
__global__ void embedding_backward_kernel(const int32_t* tokens, const bf16* dout, float* dword,
                                          float* dposition, int64_t rows, int64_t hidden,
                                          int64_t micro_batch, int64_t vocab_start,
                                          int64_t vocab_local) {
  const int64_t positions = ceil_div(rows, micro_batch);
  MPSIM_FOR_ROWS(s, positions) {
    const int64_t r_begin = s * micro_batch;
    const int64_t r_end = r_begin + micro_batch < rows ? r_begin + micro_batch : rows;
    for (int64_t c = int64_t{threadIdx.x} * kVec; c < hidden; c += int64_t{blockDim.x} * kVec) {
      float acc[kVec] = {};
      for (int64_t r = r_begin; r < r_end; ++r) {
        float g[kVec];
        load_vec<kVec>(dout + r * hidden + c, g);
        const int64_t local = int64_t{tokens[r]} - vocab_start;
        if (local >= 0 && local < vocab_local) atomic_add_vec<kVec>(dword + local * hidden + c, g);
#pragma unroll
        for (int e = 0; e < kVec; ++e) acc[e] += g[e];
      }
      if (dposition) add_to_vec<kVec>(dposition + s * hidden + c, acc);
    }
  }
}

// ---- normalisation ------------------------------------------------------------------------------

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

// ---- column sums --------------------------------------------------------------------------------

template <int kOut, int kVec>
using Acc = float[kOut > 0 ? kOut : 1][kVec];

// Blocks of (32, 8) threads; block (bx, by) covers columns [bx * 32 * kVec, +32 * kVec) of the
// rows [by * chunk, +chunk). op(r, c, acc) handles columns [c, c + kVec) of row r and adds its
// kOut column contributions to acc; the block's sums go to out0/out1 (nullable) with one
// atomicAdd per column (16-byte atomics over 4 columns when kVec is 8: cols % 8 == 0 and out
// 16-byte aligned).
template <int kVec, int kOut, class Op>
__global__ void __launch_bounds__(256)
    column_tile_kernel(Op op, float* out0, float* out1, int64_t rows, int64_t cols, int64_t chunk) {
  constexpr int kTile = 32 * kVec;
  const int64_t c0 = (int64_t{blockIdx.x} * 32 + threadIdx.x) * kVec;
  const int64_t r0 = int64_t{blockIdx.y} * chunk;
  const int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
  Acc<kOut, kVec> acc = {};
  if (c0 < cols) {
#pragma unroll 2
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) op(r, c0, acc);
  }
  if constexpr (kOut > 0) {
    __shared__ __align__(16) float buf[8][kTile];
    const int tid = threadIdx.y * 32 + threadIdx.x;
#pragma unroll
    for (int o = 0; o < kOut; ++o) {
#pragma unroll
      for (int e = 0; e < kVec; ++e) buf[threadIdx.y][threadIdx.x * kVec + e] = acc[o][e];
      __syncthreads();
      float* out = o == 0 ? out0 : out1;
      // kSpan consecutive columns per thread, for 16-byte atomics when vectorised.
      constexpr int kSpan = kVec % 4 == 0 ? 4 : 1;
      for (int j = tid * kSpan; j < kTile; j += 256 * kSpan) {
        const int64_t c = int64_t{blockIdx.x} * kTile + j;
        if (out != nullptr && c < cols) {
          float s[kSpan] = {};
#pragma unroll
          for (int yy = 0; yy < 8; ++yy)
#pragma unroll
            for (int e = 0; e < kSpan; ++e) s[e] += buf[yy][j + e];
          atomic_add_vec<kSpan>(out + c, s);
        }
      }
      __syncthreads();
    }
  }
}

struct ColumnConfig {
  dim3 grid;
  int64_t chunk;
};
// About 8 blocks of 256 per SM, each over at least 64 rows (so 8 per thread) to amortise its
// atomics.
ColumnConfig column_config(int64_t rows, int64_t cols, int vec) {
  const int64_t tiles = ceil_div(cols, int64_t{32} * vec);
  const int64_t target = int64_t{sm_count()} * 8;
  const int64_t chunks = std::clamp<int64_t>(ceil_div(target, tiles), 1,
                                             std::clamp<int64_t>(ceil_div(rows, 64), 1, 65535));
  const int64_t chunk = ceil_div(rows, chunks);
  return {dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(ceil_div(rows, chunk))), chunk};
}

template <int kVec>
struct ColumnSumOp {
  const bf16* dy;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, Acc<1, kVec>& acc) const {
    float f[kVec];
    load_vec<kVec>(dy + r * cols + c, f);
#pragma unroll
    for (int e = 0; e < kVec; ++e) acc[0][e] += f[e];
  }
};

template <int kVec, int kOut>
struct GeluBackwardOp {
  const bf16* dy;
  const bf16* x;
  const bf16* bias;
  bf16* dx;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, Acc<kOut, kVec>& acc) const {
    float g[kVec], v[kVec], b[kVec] = {};
    load_vec<kVec>(dy + r * cols + c, g);
    load_vec<kVec>(x + r * cols + c, v);
    if (bias) load_vec<kVec>(bias + c, b);
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      g[e] *= gelu_grad(v[e] + b[e]);
      if constexpr (kOut > 0) acc[0][e] += g[e];
    }
    store_vec<kVec>(dx + r * cols + c, g);
  }
};

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

template <int kVec, int kOut, class Op>
void launch_column_tile(Op op, float* out0, float* out1, int64_t rows, int64_t cols,
                        cudaStream_t stream) {
  const ColumnConfig cfg = column_config(rows, cols, kVec);
  column_tile_kernel<kVec, kOut>
      <<<cfg.grid, dim3(32, 8), 0, stream>>>(op, out0, out1, rows, cols, cfg.chunk);
  CUDA_CHECK_LAUNCH();
}

// ---- row-wise element-wise ----------------------------------------------------------------------

template <int kVec>
__global__ void bias_add_kernel(bf16* x, const bf16* bias, int64_t rows, int64_t cols) {
  MPSIM_FOR_ROWS(r, rows) {
    for (int64_t c = int64_t{threadIdx.x} * kVec; c < cols; c += int64_t{blockDim.x} * kVec) {
      float v[kVec], b[kVec];
      load_vec<kVec>(x + r * cols + c, v);
      load_vec<kVec>(bias + c, b);
#pragma unroll
      for (int e = 0; e < kVec; ++e) v[e] += b[e];
      store_vec<kVec>(x + r * cols + c, v);
    }
  }
}

template <int kVec>
__global__ void bias_gelu_forward_kernel(const bf16* x, const bf16* bias, bf16* y, int64_t rows,
                                         int64_t cols) {
  MPSIM_FOR_ROWS(r, rows) {
    for (int64_t c = int64_t{threadIdx.x} * kVec; c < cols; c += int64_t{blockDim.x} * kVec) {
      float v[kVec], b[kVec] = {};
      load_vec<kVec>(x + r * cols + c, v);
      if (bias) load_vec<kVec>(bias + c, b);
#pragma unroll
      for (int e = 0; e < kVec; ++e) v[e] = gelu(v[e] + b[e]);
      store_vec<kVec>(y + r * cols + c, v);
    }
  }
}

template <int kVec>
__global__ void bias_residual_kernel(const bf16* x, const bf16* bias, const bf16* residual,
                                     bf16* out, int64_t rows, int64_t cols) {
  MPSIM_FOR_ROWS(r, rows) {
    for (int64_t c = int64_t{threadIdx.x} * kVec; c < cols; c += int64_t{blockDim.x} * kVec) {
      float v[kVec], q[kVec], b[kVec] = {};
      load_vec<kVec>(x + r * cols + c, v);
      load_vec<kVec>(residual + r * cols + c, q);
      if (bias) load_vec<kVec>(bias + c, b);
#pragma unroll
      for (int e = 0; e < kVec; ++e) v[e] += q[e] + b[e];
      store_vec<kVec>(out + r * cols + c, v);
    }
  }
}

// ---- causal softmax -----------------------------------------------------------------------------

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

// ---- cross-entropy (partial and backward: one block of 1-D threads per row) ---------------------

// n_real: this rank's columns that are real vocabulary, clamp(vocab - vocab_start, 0, vocab_local).
// Each thread keeps an online (max, sum of exp) pair over its columns; the block then takes the
// row max and sums the threads' sums rescaled to it. A thread (or rank) without columns keeps
// (-FLT_MAX, 0), which rescales to 0 without forming inf - inf.
__global__ void cross_entropy_partial_kernel(const bf16* logits, const int32_t* targets,
                                             float* partial, int64_t rows, int64_t vocab_local,
                                             int64_t vocab_start, int64_t n_real, bool vec) {
  __shared__ float smem[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const bf16* row = logits + r * vocab_local;
    float m = -FLT_MAX, s = 0.f;
    auto add = [&](float v) {
      if (v > m) {
        s = s * exp2f((m - v) * kLog2e) + 1.f;
        m = v;
      } else {
        s += exp2f((v - m) * kLog2e);
      }
    };
    int64_t done = 0;
    if (vec) {
      const int64_t packs = n_real / 8;
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        float f[8];
        load_vec<8>(row + 8 * p, f);
#pragma unroll
        for (int e = 0; e < 8; ++e) add(f[e]);
      }
      done = packs * 8;
    }
    for (int64_t j = done + threadIdx.x; j < n_real; j += blockDim.x) add(__bfloat162float(row[j]));
    const float row_max = row_reduce(m, Max{}, smem);
    const float sum = row_reduce(s * exp2f((m - row_max) * kLog2e), Sum{}, smem);
    if (threadIdx.x == 0) {
      partial[r] = row_max;
      partial[rows + r] = sum;
      const int64_t t = int64_t{targets[r]} - vocab_start;
      partial[2 * rows + r] = t >= 0 && t < n_real ? __bfloat162float(row[t]) : 0.f;
    }
  }
}

// One block: threads stride over rows, ranks are merged in order, the loss is reduced in a fixed
// order.
__global__ void __launch_bounds__(1024)
    cross_entropy_combine_kernel(const float* gathered, int ranks, float* row_max, float* sums,
                                 float* loss_sum, int64_t rows) {
  __shared__ float smem[32];
  float loss = 0.f;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    float m = -FLT_MAX;
    for (int k = 0; k < ranks; ++k) m = fmaxf(m, gathered[int64_t{k} * 3 * rows + r]);
    float s = 0.f, target = 0.f;
    for (int k = 0; k < ranks; ++k) {
      const float* p = gathered + int64_t{k} * 3 * rows;
      s += p[rows + r] * exp2f((p[r] - m) * kLog2e);
      target += p[2 * rows + r];
    }
    row_max[r] = m;
    sums[r] = s;
    sums[rows + r] = target;
    loss += (m - target) + logf(s);
  }
  loss = row_reduce(loss, Sum{}, smem);
  if (threadIdx.x == 0) loss_sum[0] += loss;
}

__global__ void cross_entropy_backward_kernel(bf16* logits, const int32_t* targets,
                                              const float* row_max, const float* sums, int64_t rows,
                                              int64_t vocab_local, int64_t vocab_start,
                                              int64_t n_real, float grad_scale, bool vec) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    bf16* row = logits + r * vocab_local;
    const float m = row_max[r];
    const float scale = grad_scale / sums[r];
    const int64_t t = int64_t{targets[r]} - vocab_start;
    auto grad = [&](int64_t j, float l) {
      if (j >= n_real) return 0.f;
      float g = exp2f((l - m) * kLog2e) * scale;
      if (j == t) g -= grad_scale;
      return g;
    };
    if (vec) {
      for (int64_t p = threadIdx.x; p < vocab_local / 8; p += blockDim.x) {
        float f[8];
        load_vec<8>(row + 8 * p, f);
#pragma unroll
        for (int e = 0; e < 8; ++e) f[e] = grad(8 * p + e, f[e]);
        store_vec<8>(row + 8 * p, f);
      }
    } else {
      for (int64_t j = threadIdx.x; j < vocab_local; j += blockDim.x)
        row[j] = __float2bfloat16(grad(j, __bfloat162float(row[j])));
    }
  }
}

// ---- optimizer ----------------------------------------------------------------------------------

__global__ void sum_squares_kernel(const float* x, int64_t n, float* out, bool vec) {
  __shared__ float smem[32];
  float s = 0.f;
  int64_t done = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = global_thread(); i < n4; i += grid_threads()) {
      const float4 v = reinterpret_cast<const float4*>(x)[i];
      s += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    done = n4 * 4;
  }
  for (int64_t i = done + global_thread(); i < n; i += grid_threads()) s += x[i] * x[i];
  s = row_reduce(s, Sum{}, smem);
  if (threadIdx.x == 0) atomicAdd(out, s);
}

struct AdamParams {
  float lr, beta1, beta2, eps, weight_decay, grad_scale;
  float step_size;     // lr / (1 - beta1^t)
  float inv_sqrt_bc2;  // 1 / sqrt(1 - beta2^t)
};

// torch.optim.AdamW's update: decay with the old weight, then the Adam step.
__device__ __forceinline__ void adamw_one(float& w, float g, float& m, float& v, bool decay,
                                          const AdamParams& a) {
  g *= a.grad_scale;
  m = a.beta1 * m + (1.f - a.beta1) * g;
  v = a.beta2 * v + (1.f - a.beta2) * g * g;
  const float denom = sqrtf(v) * a.inv_sqrt_bc2 + a.eps;
  if (decay) w *= 1.f - a.lr * a.weight_decay;
  w -= a.step_size * m / denom;
}

__global__ void adamw_kernel(float* master, const float* grad, float* m, float* v, bf16* model,
                             const uint8_t* decay_mask, int64_t n, AdamParams a, bool vec) {
  int64_t done = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = global_thread(); i < n4; i += grid_threads()) {
      float4 w = reinterpret_cast<float4*>(master)[i];
      const float4 g = reinterpret_cast<const float4*>(grad)[i];
      float4 mm = reinterpret_cast<float4*>(m)[i];
      float4 vv = reinterpret_cast<float4*>(v)[i];
      uchar4 d = make_uchar4(1, 1, 1, 1);
      if (decay_mask) d = reinterpret_cast<const uchar4*>(decay_mask)[i];
      adamw_one(w.x, g.x, mm.x, vv.x, d.x != 0, a);
      adamw_one(w.y, g.y, mm.y, vv.y, d.y != 0, a);
      adamw_one(w.z, g.z, mm.z, vv.z, d.z != 0, a);
      adamw_one(w.w, g.w, mm.w, vv.w, d.w != 0, a);
      reinterpret_cast<float4*>(master)[i] = w;
      reinterpret_cast<float4*>(m)[i] = mm;
      reinterpret_cast<float4*>(v)[i] = vv;
      if (model) {
        __nv_bfloat162 h[2] = {__floats2bfloat162_rn(w.x, w.y), __floats2bfloat162_rn(w.z, w.w)};
        reinterpret_cast<uint2*>(model)[i] = *reinterpret_cast<const uint2*>(h);
      }
    }
    done = n4 * 4;
  }
  for (int64_t i = done + global_thread(); i < n; i += grid_threads()) {
    float w = master[i], mm = m[i], vv = v[i];
    adamw_one(w, grad[i], mm, vv, decay_mask == nullptr || decay_mask[i] != 0, a);
    master[i] = w;
    m[i] = mm;
    v[i] = vv;
    if (model) model[i] = __float2bfloat16(w);
  }
}

// Launches kernel<8> when `vec`, else kernel<1>, over the rows layout with units = cols / kVec.
#define MPSIM_LAUNCH_ROWS(kernel, vec, rows, cols, stream, ...)                      \
  do {                                                                               \
    if (vec) {                                                                       \
      const RowConfig cfg_ = row_config((rows), (cols) / 8, 1, kThreads, 1);         \
      kernel<8><<<grid_of(cfg_.row_groups), cfg_.block, 0, (stream)>>>(__VA_ARGS__); \
    } else {                                                                         \
      const RowConfig cfg_ = row_config((rows), (cols), 1, kThreads, 1);             \
      kernel<1><<<grid_of(cfg_.row_groups), cfg_.block, 0, (stream)>>>(__VA_ARGS__); \
    }                                                                                \
    CUDA_CHECK_LAUNCH();                                                             \
  } while (0)

}  // namespace

// ---- launchers ----------------------------------------------------------------------------------

void cast_fp32_to_bf16(const float* in, bf16* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  cast_kernel<<<flat_grid(ceil_div(n, 8)), kThreads, 0, stream>>>(in, out, n,
                                                                  all_aligned16(in, out));
  CUDA_CHECK_LAUNCH();
}

void fill_fp32(float* out, float value, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<<<flat_grid(ceil_div(n, 4)), kThreads, 0, stream>>>(out, value, n, aligned16(out));
  CUDA_CHECK_LAUNCH();
}

void add_bf16(const bf16* a, const bf16* b, bf16* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<flat_grid(ceil_div(n, 8)), kThreads, 0, stream>>>(a, b, out, n,
                                                                 all_aligned16(a, b, out));
  CUDA_CHECK_LAUNCH();
}

void init_parameter(float* out, int64_t rows, int64_t cols, int64_t row_offset, int64_t col_offset,
                    int64_t global_cols, uint64_t seed, uint64_t param_id, float mean, float std,
                    cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  init_parameter_kernel<<<flat_grid(rows * cols), kThreads, 0, stream>>>(
      out, rows, cols, row_offset, col_offset, global_cols, seed, param_id, mean, std);
  CUDA_CHECK_LAUNCH();
}

void embedding_forward(const int32_t* tokens, const bf16* word, const bf16* position, bf16* out,
                       int64_t rows, int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                       int64_t vocab_local, cudaStream_t stream) {
  if (rows <= 0 || hidden <= 0) return;
  const bool vec = hidden % 8 == 0 && all_aligned16(word, position, out);
  MPSIM_LAUNCH_ROWS(embedding_forward_kernel, vec, rows, hidden, stream, tokens, word, position,
                    out, rows, hidden, micro_batch, vocab_start, vocab_local);
}

void embedding_backward(const int32_t* tokens, const bf16* dout, float* dword, float* dposition,
                        int64_t rows, int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                        int64_t vocab_local, cudaStream_t stream) {
  if (rows <= 0 || hidden <= 0) return;
  const bool vec = hidden % 8 == 0 && all_aligned16(dout, dword, dposition);
  const int64_t positions = ceil_div(rows, micro_batch);
  MPSIM_LAUNCH_ROWS(embedding_backward_kernel, vec, positions, hidden, stream, tokens, dout, dword,
                    dposition, rows, hidden, micro_batch, vocab_start, vocab_local);
}

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

namespace {
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

void bias_add(bf16* x, const bf16* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const bool vec = cols % 8 == 0 && all_aligned16(x, bias);
  MPSIM_LAUNCH_ROWS(bias_add_kernel, vec, rows, cols, stream, x, bias, rows, cols);
}

void bias_grad(const bf16* dy, float* dbias, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  if (cols % 8 == 0 && all_aligned16(dy, dbias))
    launch_column_tile<8, 1>(ColumnSumOp<8>{dy, cols}, dbias, nullptr, rows, cols, stream);
  else
    launch_column_tile<1, 1>(ColumnSumOp<1>{dy, cols}, dbias, nullptr, rows, cols, stream);
}

void bias_gelu_forward(const bf16* x, const bf16* bias, bf16* y, int64_t rows, int64_t cols,
                       cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const bool vec = cols % 8 == 0 && all_aligned16(x, bias, y);
  MPSIM_LAUNCH_ROWS(bias_gelu_forward_kernel, vec, rows, cols, stream, x, bias, y, rows, cols);
}

void bias_gelu_backward(const bf16* dy, const bf16* x, const bf16* bias, bf16* dx, float* dbias,
                        int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const bool vec = cols % 8 == 0 && all_aligned16(dy, x, bias, dx);
  if (vec && dbias)
    launch_column_tile<8, 1>(GeluBackwardOp<8, 1>{dy, x, bias, dx, cols}, dbias, nullptr, rows,
                             cols, stream);
  else if (vec)
    launch_column_tile<8, 0>(GeluBackwardOp<8, 0>{dy, x, bias, dx, cols}, nullptr, nullptr, rows,
                             cols, stream);
  else if (dbias)
    launch_column_tile<1, 1>(GeluBackwardOp<1, 1>{dy, x, bias, dx, cols}, dbias, nullptr, rows,
                             cols, stream);
  else
    launch_column_tile<1, 0>(GeluBackwardOp<1, 0>{dy, x, bias, dx, cols}, nullptr, nullptr, rows,
                             cols, stream);
}

void bias_residual_forward(const bf16* x, const bf16* bias, const bf16* residual, bf16* out,
                           int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const bool vec = cols % 8 == 0 && all_aligned16(x, bias, residual, out);
  MPSIM_LAUNCH_ROWS(bias_residual_kernel, vec, rows, cols, stream, x, bias, residual, out, rows,
                    cols);
}

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

namespace {
int64_t real_columns(int64_t vocab_local, int64_t vocab_start, int64_t vocab) {
  return std::clamp<int64_t>(vocab - vocab_start, 0, vocab_local);
}
bool row_vec(const bf16* logits, int64_t vocab_local) {
  return vocab_local % 8 == 0 && aligned16(logits);
}
}  // namespace

void cross_entropy_partial(const bf16* logits, const int32_t* targets, float* partial, int64_t rows,
                           int64_t vocab_local, int64_t vocab_start, int64_t vocab,
                           cudaStream_t stream) {
  if (rows <= 0) return;
  cross_entropy_partial_kernel<<<grid_of(rows), kThreads, 0, stream>>>(
      logits, targets, partial, rows, vocab_local, vocab_start,
      real_columns(vocab_local, vocab_start, vocab), row_vec(logits, vocab_local));
  CUDA_CHECK_LAUNCH();
}

void cross_entropy_combine(const float* gathered, int ranks, float* row_max, float* sums,
                           float* loss_sum, int64_t rows, cudaStream_t stream) {
  if (rows <= 0) return;
  cross_entropy_combine_kernel<<<1, 1024, 0, stream>>>(gathered, ranks, row_max, sums, loss_sum,
                                                       rows);
  CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(bf16* logits, const int32_t* targets, const float* row_max,
                            const float* sums, int64_t rows, int64_t vocab_local,
                            int64_t vocab_start, int64_t vocab, float grad_scale,
                            cudaStream_t stream) {
  if (rows <= 0) return;
  cross_entropy_backward_kernel<<<grid_of(rows), kThreads, 0, stream>>>(
      logits, targets, row_max, sums, rows, vocab_local, vocab_start,
      real_columns(vocab_local, vocab_start, vocab), grad_scale, row_vec(logits, vocab_local));
  CUDA_CHECK_LAUNCH();
}

void sum_squares(const float* x, int64_t n, float* out, cudaStream_t stream) {
  if (n <= 0) return;
  const unsigned grid = static_cast<unsigned>(
      std::clamp<int64_t>(ceil_div(n, int64_t{kThreads} * 8), 1, int64_t{sm_count()} * 4));
  sum_squares_kernel<<<grid, kThreads, 0, stream>>>(x, n, out, aligned16(x));
  CUDA_CHECK_LAUNCH();
}

void adamw_step(float* master, const float* grad, float* m, float* v, bf16* model,
                const uint8_t* decay_mask, int64_t n, float lr, float beta1, float beta2, float eps,
                float weight_decay, int64_t step, float grad_scale, cudaStream_t stream) {
  if (n <= 0) return;
  const auto t = static_cast<float>(std::max<int64_t>(step, 1));
  AdamParams a{};
  a.lr = lr;
  a.beta1 = beta1;
  a.beta2 = beta2;
  a.eps = eps;
  a.weight_decay = weight_decay;
  a.grad_scale = grad_scale;
  a.step_size = lr / (1.f - std::pow(beta1, t));
  a.inv_sqrt_bc2 = 1.f / std::sqrt(1.f - std::pow(beta2, t));
  const bool vec = all_aligned16(master, grad, m, v) &&
                   reinterpret_cast<uintptr_t>(model) % 8 == 0 &&
                   reinterpret_cast<uintptr_t>(decay_mask) % 4 == 0;
  adamw_kernel<<<flat_grid(ceil_div(n, 4)), kThreads, 0, stream>>>(master, grad, m, v, model,
                                                                   decay_mask, n, a, vec);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
