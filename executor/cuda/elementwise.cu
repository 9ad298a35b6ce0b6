// Casts, fills, additions, parameter initialisation (flat layout); see elementwise.h.
#include "executor/core/param_init.h"
#include "executor/cuda/elementwise.h"
#include "executor/cuda/kernel_helpers.cuh"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

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

// 16-byte pieces when every row start is aligned (kVec 8), else elements.
template <int kVec>
__global__ void copy_rows_kernel(const bf16* src, int64_t src_ld, bf16* dst, int64_t dst_ld,
                                 int64_t rows, int64_t cols) {
  const int64_t per_row = cols / kVec;
  for (int64_t i = global_thread(); i < rows * per_row; i += grid_threads()) {
    const int64_t r = i / per_row, c = (i % per_row) * kVec;
    if constexpr (kVec == 8) {
      *reinterpret_cast<uint4*>(dst + r * dst_ld + c) =
          *reinterpret_cast<const uint4*>(src + r * src_ld + c);
    } else {
      dst[r * dst_ld + c] = src[r * src_ld + c];
    }
  }
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

}  // namespace

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

void copy_rows(const bf16* src, int64_t src_ld, bf16* dst, int64_t dst_ld, int64_t rows,
               int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const bool vec = cols % 8 == 0 && src_ld % 8 == 0 && dst_ld % 8 == 0 && all_aligned16(src, dst);
  if (vec) {
    copy_rows_kernel<8>
        <<<flat_grid(rows * cols / 8), kThreads, 0, stream>>>(src, src_ld, dst, dst_ld, rows, cols);
  } else {
    copy_rows_kernel<1>
        <<<flat_grid(rows * cols), kThreads, 0, stream>>>(src, src_ld, dst, dst_ld, rows, cols);
  }
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

}  // namespace mpsim::executor::kernels
