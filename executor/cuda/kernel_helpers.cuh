// Helpers of the executor's kernel families (the *.cu files beside this header), not for their
// callers: launch shapes sized to the GPU, 16-byte vector loads and stores of bf16, vector atomics,
// and warp and row reductions. All of it is inline device code or small host functions; the host
// functions query the current device, and their CUDA calls throw ExecutorError through CUDA_CHECK.
//
// Layouts the kernels use:
//  - flat: grid-stride over elements, 8 (bf16) or 4 (fp32) per thread when every pointer is
//    16-byte aligned, then a scalar tail;
//  - rows: a block of (X, Y) threads handles Y rows at a time, X threads (a warp or more) per
//    row, grid-stride over rows; row reductions use warp shuffles, then shared memory when X > 32;
//  - column tiles: blocks of (32, 8) threads over (column tile, chunk of rows) for column sums;
//    each block reduces its chunk in registers and shared memory, then one atomicAdd per column
//    (column_sum.cuh).
// A "vectorised" path needs the row length to be a multiple of 8 and the base pointers 16-byte
// aligned (cudaMalloc gives 256); otherwise the same kernels run element by element.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "executor/cuda/cuda_check.h"
#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels::detail {

constexpr int kThreads = 256;
constexpr float kLog2e = 1.4426950408889634f;
constexpr int64_t kMaxGrid = int64_t{1} << 30;

// ---- host helpers -------------------------------------------------------------------------------

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline int sm_count() {
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

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
template <class... P>
bool all_aligned16(const P*... p) {
  return (aligned16(p) && ...);  // null pointers are aligned
}

// Grid for a flat grid-stride loop over `work` items.
inline unsigned flat_grid(int64_t work) {
  return static_cast<unsigned>(std::clamp<int64_t>(ceil_div(work, kThreads), 1, sm_count() * 16));
}

struct RowConfig {
  dim3 block;
  int64_t row_groups;  // ceil(rows / block.y)
};

// X threads per row: the smallest power of two >= min_x with X * per_thread >= units (capped at
// max_x); Y = 256 / X rows per block (at least 1). Kernels that reduce over a row need min_x 32.
inline RowConfig row_config(int64_t rows, int64_t units, int per_thread, int max_x = 1024,
                            int min_x = 32) {
  int x = min_x;
  while (int64_t{x} * per_thread < units && x < max_x) x *= 2;
  const int y = std::max(1, kThreads / x);
  return {dim3(x, y), ceil_div(rows, y)};
}
inline unsigned grid_of(int64_t blocks) {
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

}  // namespace mpsim::executor::kernels::detail
