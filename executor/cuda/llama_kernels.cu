// Rotary embeddings and SwiGLU; see llama_kernels.h.
#include "executor/cuda/cuda_check.h"
#include "executor/cuda/llama_kernels.h"

namespace mpsim::executor::kernels {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 16 ? b : 65535 * 16);
}

// One thread per (row, rotated head, pair).
__global__ void rotary_kernel(bf16* qkv, int64_t rows, int64_t micro_batch, int64_t kv_heads,
                              int64_t group, int64_t d, double base, bool inverse) {
  const int64_t half = d / 2, rotated = group + 1;  // query heads and the key of each group
  const int64_t per_row = kv_heads * rotated * half;
  const int64_t total = rows * per_row;
  const int64_t width = kv_heads * (group + 2) * d;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = idx / per_row, rest = idx % per_row;
    const int64_t g = rest / (rotated * half), slot = (rest / half) % rotated, i = rest % half;
    bf16* x = qkv + row * width + g * (group + 2) * d + slot * d;
    const double angle = static_cast<double>(row / micro_batch) * pow(base, -2.0 * i / d);
    double s, c;
    sincos(angle, &s, &c);
    if (inverse) s = -s;
    const float a = __bfloat162float(x[i]), b = __bfloat162float(x[i + half]);
    x[i] = __float2bfloat16(static_cast<float>(a * c - b * s));
    x[i + half] = __float2bfloat16(static_cast<float>(b * c + a * s));
  }
}

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

void rotary(bf16* qkv, int64_t rows, int64_t micro_batch, int64_t kv_heads, int64_t group,
            int64_t head_dim, double base, bool inverse, cudaStream_t stream) {
  const int64_t total = rows * kv_heads * (group + 1) * (head_dim / 2);
  if (total == 0) return;
  rotary_kernel<<<blocks_for(total), kThreads, 0, stream>>>(qkv, rows, micro_batch, kv_heads, group,
                                                            head_dim, base, inverse);
  CUDA_CHECK_LAUNCH();
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
