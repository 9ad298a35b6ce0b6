// Bias-GeLU (rows layout, its backward a column sum) and SwiGLU (rows layout); see activation.h.
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

// SwiGLU over the rows layout: each thread takes kVec consecutive features j of a row, i.e. the
// 2 kVec interleaved (gate, up) inputs of columns 2j, 2j + 1 (16-byte loads and stores when kVec
// is 8).
template <int kVec>
__device__ __forceinline__ void load_gate_up(const bf16* x, const bf16* bias, int64_t r, int64_t c,
                                             int64_t cols, float (&g)[kVec], float (&u)[kVec]) {
  float in[2 * kVec], b[2 * kVec] = {};
  const bf16* row = x + r * 2 * cols + 2 * c;
  if constexpr (kVec == 8) {
    load_vec<8>(row, reinterpret_cast<float(&)[8]>(in[0]));
    load_vec<8>(row + 8, reinterpret_cast<float(&)[8]>(in[8]));
    if (bias != nullptr) {
      load_vec<8>(bias + 2 * c, reinterpret_cast<float(&)[8]>(b[0]));
      load_vec<8>(bias + 2 * c + 8, reinterpret_cast<float(&)[8]>(b[8]));
    }
  } else {
    in[0] = __bfloat162float(row[0]);
    in[1] = __bfloat162float(row[1]);
    if (bias != nullptr) {
      b[0] = __bfloat162float(bias[2 * c]);
      b[1] = __bfloat162float(bias[2 * c + 1]);
    }
  }
#pragma unroll
  for (int e = 0; e < kVec; ++e) {
    g[e] = in[2 * e] + b[2 * e];
    u[e] = in[2 * e + 1] + b[2 * e + 1];
  }
}

template <int kVec>
__global__ void swiglu_forward_kernel(const bf16* x, const bf16* bias, bf16* y, int64_t rows,
                                      int64_t cols) {
  MPSIM_FOR_ROWS(r, rows) {
    for (int64_t c = int64_t{threadIdx.x} * kVec; c < cols; c += int64_t{blockDim.x} * kVec) {
      float g[kVec], u[kVec], out[kVec];
      load_gate_up<kVec>(x, bias, r, c, cols, g, u);
#pragma unroll
      for (int e = 0; e < kVec; ++e) out[e] = silu(g[e]) * u[e];
      store_vec<kVec>(y + r * cols + c, out);
    }
  }
}

template <int kVec>
__global__ void swiglu_backward_kernel(const bf16* dy, const bf16* x, const bf16* bias, bf16* dx,
                                       int64_t rows, int64_t cols) {
  MPSIM_FOR_ROWS(r, rows) {
    for (int64_t c = int64_t{threadIdx.x} * kVec; c < cols; c += int64_t{blockDim.x} * kVec) {
      float g[kVec], u[kVec], grad[kVec], out[2 * kVec];
      load_gate_up<kVec>(x, bias, r, c, cols, g, u);
      load_vec<kVec>(dy + r * cols + c, grad);
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        const float sig = 1.0f / (1.0f + __expf(-g[e]));
        out[2 * e] = grad[e] * u[e] * sig * (1.0f + g[e] * (1.0f - sig));
        out[2 * e + 1] = grad[e] * g[e] * sig;
      }
      bf16* row = dx + r * 2 * cols + 2 * c;
      if constexpr (kVec == 8) {
        store_vec<8>(row, reinterpret_cast<float(&)[8]>(out[0]));
        store_vec<8>(row + 8, reinterpret_cast<float(&)[8]>(out[8]));
      } else {
        row[0] = __float2bfloat16(out[0]);
        row[1] = __float2bfloat16(out[1]);
      }
    }
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
  if (rows <= 0 || cols <= 0) return;
  const bool vec = cols % 8 == 0 && all_aligned16(x, bias, y);
  MPSIM_LAUNCH_ROWS(swiglu_forward_kernel, vec, rows, cols, stream, x, bias, y, rows, cols);
}

void swiglu_backward(const bf16* dy, const bf16* x, const bf16* bias, bf16* dx, int64_t rows,
                     int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const bool vec = cols % 8 == 0 && all_aligned16(dy, x, bias, dx);
  MPSIM_LAUNCH_ROWS(swiglu_backward_kernel, vec, rows, cols, stream, dy, x, bias, dx, rows, cols);
}

}  // namespace mpsim::executor::kernels
