// Rotary position embeddings: one block per row at a time, the row's angles computed once into
// shared memory, then every rotated pair of the row; see rotary.h.
#include <string>

#include "executor/cuda/kernel_helpers.cuh"
#include "executor/cuda/rotary.h"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

constexpr int kMaxHalf = 128;  // head sizes up to 256

// Rows in a grid-stride loop over blocks; the query heads and the key of each group rotated,
// pair i of a head with pair i + d/2 by the angle position * base^(-2i/d) (in double, as the
// float64 reference; stored as float).
__global__ void rotary_kernel(bf16* qkv, int64_t rows, int64_t micro_batch, int64_t kv_heads,
                              int64_t group, int64_t d, double base, bool inverse) {
  __shared__ float cosines[kMaxHalf], sines[kMaxHalf];
  const int64_t half = d / 2, rotated = group + 1;  // query heads and the key of each group
  const int64_t pairs = kv_heads * rotated * half;
  const int64_t width = kv_heads * (group + 2) * d;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    __syncthreads();  // the previous row's angles are no longer read
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
      const double angle = static_cast<double>(row / micro_batch) * pow(base, -2.0 * i / d);
      double sn, cs;
      sincos(angle, &sn, &cs);
      cosines[i] = static_cast<float>(cs);
      sines[i] = static_cast<float>(inverse ? -sn : sn);
    }
    __syncthreads();
    bf16* base_row = qkv + row * width;
    for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) {
      const int64_t head = p / half, i = p % half;
      const int64_t g = head / rotated, slot = head % rotated;
      bf16* x = base_row + g * (group + 2) * d + slot * d;
      const float a = __bfloat162float(x[i]), b = __bfloat162float(x[i + half]);
      const float c = cosines[i], s = sines[i];
      x[i] = __float2bfloat16(a * c - b * s);
      x[i + half] = __float2bfloat16(b * c + a * s);
    }
  }
}

}  // namespace

void rotary(bf16* qkv, int64_t rows, int64_t micro_batch, int64_t kv_heads, int64_t group,
            int64_t head_dim, double base, bool inverse, cudaStream_t stream) {
  if (rows * kv_heads * head_dim == 0) return;
  if (head_dim / 2 > kMaxHalf) {
    throw ExecutorError("rotary: head size " + std::to_string(head_dim) + " over the kernel's 256");
  }
  rotary_kernel<<<grid_of(rows), kThreads, 0, stream>>>(qkv, rows, micro_batch, kv_heads, group,
                                                        head_dim, base, inverse);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
