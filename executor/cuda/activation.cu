// Bias-GeLU (rows layout, its backward a column sum) and SwiGLU (flat); see activation.h.
#include "executor/cuda/activation.h"
#include "executor/cuda/column_sum.cuh"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

__device__ __forceinline__ float gelu(float x) {
  const float u = 0.7978845608f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.f + tanhf(u));
}
__device__ __forceinline__ float gelu_grad(float x) {
  const float x2 = x * x;
  const float t = tanhf(0.7978845608f * (x + 0.044715f * x2 * x));
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * 0.7978845608f * (1.f + 3.f * 0.044715f * x2);
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

__device__ float silu(float g) { return g / (1.0f + __expf(-g)); }

// Feature j's gate and up projection of row r (columns 2j and 2j + 1), bias added when given.
__device__ void gate_and_up(const bf16* x, const bf16* bias, int64_t r, int64_t j, int64_t cols,
                            float& g, float& u) {
  g = __bfloat162float(x[r * 2 * cols + 2 * j]);
  u = __bfloat162float(x[r * 2 * cols + 2 * j + 1]);
  if (bias != nullptr) {
    g += __bfloat162float(bias[2 * j]);
    u += __bfloat162float(bias[2 * j + 1]);
  }
}

__global__ void swiglu_forward_kernel(const bf16* x, const bf16* bias, bf16* y, int64_t rows,
                                      int64_t cols) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < rows * cols;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float g, u;
    gate_and_up(x, bias, idx / cols, idx % cols, cols, g, u);
    y[idx] = __float2bfloat16(silu(g) * u);
  }
}

__global__ void swiglu_backward_kernel(const bf16* dy, const bf16* x, const bf16* bias, bf16* dx,
                                       int64_t rows, int64_t cols) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < rows * cols;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / cols, j = idx % cols;
    float g, u;
    gate_and_up(x, bias, r, j, cols, g, u);
    const float sig = 1.0f / (1.0f + __expf(-g));
    const float grad = __bfloat162float(dy[idx]);
    dx[r * 2 * cols + 2 * j] = __float2bfloat16(grad * u * sig * (1.0f + g * (1.0f - sig)));
    dx[r * 2 * cols + 2 * j + 1] = __float2bfloat16(grad * g * sig);
  }
}

}  // namespace

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

void swiglu_forward(const bf16* x, const bf16* bias, bf16* y, int64_t rows, int64_t cols,
                    cudaStream_t stream) {
  if (rows * cols == 0) return;
  swiglu_forward_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(x, bias, y, rows, cols);
  CUDA_CHECK_LAUNCH();
}

void swiglu_backward(const bf16* dy, const bf16* x, const bf16* bias, bf16* dx, int64_t rows,
                     int64_t cols, cudaStream_t stream) {
  if (rows * cols == 0) return;
  swiglu_backward_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(dy, x, bias, dx, rows,
                                                                           cols);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
