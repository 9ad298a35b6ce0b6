// FP8 casts, fused cast + transpose and transposes over 32 x 32 tiles in shared memory; see fp8.h.
#include "executor/cuda/fp8.h"
#include "executor/cuda/kernel_helpers.cuh"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

constexpr int kTile = 32, kRowsPerPass = 8;  // blocks of 32 x 8 threads, 4 rows each

__device__ __forceinline__ uint8_t to_fp8(float v, Fp8Format format) {
  return format == Fp8Format::kE4M3 ? __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3)
                                    : __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E5M2);
}

// amax of non-negative floats: their bit patterns order as the values do.
__device__ __forceinline__ void atomic_max_nonnegative(float* address, float value) {
  atomicMax(reinterpret_cast<int*>(address), __float_as_int(value));
}

__global__ void quantize_kernel(const bf16* x, int64_t rows, int64_t cols, Fp8Format format,
                                const float* scale, uint8_t* out, uint8_t* out_t, float* amax) {
  __shared__ uint8_t tile[kTile][kTile + 4];
  __shared__ float block_max[kRowsPerPass];
  const float s = *scale;
  const int64_t tiles_c = ceil_div(cols, kTile);
  float local_max = 0.f;
  for (int64_t t = blockIdx.x; t < ceil_div(rows, kTile) * tiles_c; t += gridDim.x) {
    const int64_t r0 = (t / tiles_c) * kTile, c0 = (t % tiles_c) * kTile;
    __syncthreads();  // the previous tile's transposed writes are done
    for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
      const int64_t r = r0 + i, c = c0 + threadIdx.x;
      if (r < rows && c < cols) {
        const float v = __bfloat162float(x[r * cols + c]);
        local_max = fmaxf(local_max, fabsf(v));  // fmaxf drops NaN
        const uint8_t q = to_fp8(v * s, format);
        tile[i][threadIdx.x] = q;
        if (out != nullptr) out[r * cols + c] = q;
      }
    }
    if (out_t == nullptr) continue;
    __syncthreads();
    for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
      const int64_t c = c0 + i, r = r0 + threadIdx.x;  // out_t[c][r] = tile[r - r0][c - c0]
      if (r < rows && c < cols) out_t[c * rows + r] = tile[threadIdx.x][i];
    }
  }
  local_max = warp_reduce(local_max, Max{});
  if (threadIdx.x == 0) block_max[threadIdx.y] = local_max;
  __syncthreads();
  if (threadIdx.x == 0 && threadIdx.y == 0) {
    float m = 0.f;
    for (int i = 0; i < kRowsPerPass; ++i) m = fmaxf(m, block_max[i]);
    atomic_max_nonnegative(amax, m);
  }
}

__global__ void transpose_kernel(const uint8_t* in, int64_t rows, int64_t cols, uint8_t* out) {
  __shared__ uint8_t tile[kTile][kTile + 4];
  const int64_t tiles_c = ceil_div(cols, kTile);
  for (int64_t t = blockIdx.x; t < ceil_div(rows, kTile) * tiles_c; t += gridDim.x) {
    const int64_t r0 = (t / tiles_c) * kTile, c0 = (t % tiles_c) * kTile;
    __syncthreads();
    for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
      const int64_t r = r0 + i, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[i][threadIdx.x] = in[r * cols + c];
    }
    __syncthreads();
    for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
      const int64_t c = c0 + i, r = r0 + threadIdx.x;
      if (r < rows && c < cols) out[c * rows + r] = tile[threadIdx.x][i];
    }
  }
}

__global__ void update_scales_kernel(float* amax, float* history, float* scale, float* scale_inv,
                                     const float* max_value, int64_t n, int64_t history_len,
                                     int64_t step, float margin) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    history[(step % history_len) * n + i] = amax[i];
    float m = 0.f;
    for (int64_t h = 0; h < history_len; ++h) m = fmaxf(m, history[h * n + i]);
    if (m > 0.f && isfinite(m)) {
      scale[i] = max_value[i] / m / exp2f(margin);
      scale_inv[i] = 1.f / scale[i];
    }
    amax[i] = 0.f;
  }
}

unsigned tile_grid(int64_t rows, int64_t cols) {
  return grid_of(
      std::min<int64_t>(ceil_div(rows, kTile) * ceil_div(cols, kTile), int64_t{sm_count()} * 32));
}

}  // namespace

float fp8_max(Fp8Format format) { return format == Fp8Format::kE4M3 ? 448.0f : 57344.0f; }

void quantize_fp8(const bf16* x, int64_t rows, int64_t cols, Fp8Format format, const float* scale,
                  void* out, void* out_t, float* amax, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  quantize_kernel<<<tile_grid(rows, cols), dim3(kTile, kRowsPerPass), 0, stream>>>(
      x, rows, cols, format, scale, static_cast<uint8_t*>(out), static_cast<uint8_t*>(out_t), amax);
  CUDA_CHECK_LAUNCH();
}

void update_fp8_scales(float* amax, float* history, float* scale, float* scale_inv,
                       const float* max_value, int64_t n, int64_t history_len, int64_t step,
                       float margin, cudaStream_t stream) {
  if (n <= 0 || history_len <= 0) return;
  update_scales_kernel<<<flat_grid(n), kThreads, 0, stream>>>(
      amax, history, scale, scale_inv, max_value, n, history_len, step, margin);
  CUDA_CHECK_LAUNCH();
}

void transpose_fp8(const void* in, int64_t rows, int64_t cols, void* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  transpose_kernel<<<tile_grid(rows, cols), dim3(kTile, kRowsPerPass), 0, stream>>>(
      static_cast<const uint8_t*>(in), rows, cols, static_cast<uint8_t*>(out));
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
