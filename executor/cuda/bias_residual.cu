// Bias add, bias gradient (a column sum), bias + residual (rows layout); see bias_residual.h.
#include "executor/cuda/bias_residual.h"
#include "executor/cuda/column_sum.cuh"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

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

}  // namespace

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

void bias_residual_forward(const bf16* x, const bf16* bias, const bf16* residual, bf16* out,
                           int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const bool vec = cols % 8 == 0 && all_aligned16(x, bias, residual, out);
  MPSIM_LAUNCH_ROWS(bias_residual_kernel, vec, rows, cols, stream, x, bias, residual, out, rows,
                    cols);
}

}  // namespace mpsim::executor::kernels
