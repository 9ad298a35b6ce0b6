// Rotary position embeddings (one thread per rotated pair); see rotary.h.
#include "executor/cuda/kernel_helpers.cuh"
#include "executor/cuda/rotary.h"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

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

}  // namespace

void rotary(bf16* qkv, int64_t rows, int64_t micro_batch, int64_t kv_heads, int64_t group,
            int64_t head_dim, double base, bool inverse, cudaStream_t stream) {
  const int64_t total = rows * kv_heads * (group + 1) * (head_dim / 2);
  if (total == 0) return;
  rotary_kernel<<<blocks_for(total), kThreads, 0, stream>>>(qkv, rows, micro_batch, kv_heads, group,
                                                            head_dim, base, inverse);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
