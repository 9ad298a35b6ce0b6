// Rotary position embeddings: the angles' table once per model, then each row's rotated pairs two
// at a time (bf16x2 loads); see rotary.h.
#include <string>

#include "executor/cuda/kernel_helpers.cuh"
#include "executor/cuda/rotary.h"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

__global__ void rotary_angles_kernel(float2* angles, int64_t seq, int64_t d, double base) {
  const int64_t half = d / 2;
  for (int64_t idx = global_thread(); idx < seq * half; idx += grid_threads()) {
    const int64_t t = idx / half, i = idx % half;
    double sn, cs;
    sincos(static_cast<double>(t) * pow(base, -2.0 * static_cast<double>(i) / d), &sn, &cs);
    angles[idx] = make_float2(static_cast<float>(cs), static_cast<float>(sn));
  }
}

// A block per row at a time; each thread two neighbouring pairs (i, i + 1) of one rotated head
// (the query heads and the key of each group), their partners at i + d/2.
__global__ void rotary_kernel(bf16* qkv, int64_t rows, int64_t micro_batch, int64_t kv_heads,
                              int64_t group, int64_t d, const float2* angles, float sign) {
  const int64_t half = d / 2, rotated = group + 1;
  const int64_t duos = kv_heads * rotated * (half / 2);
  const int64_t width = kv_heads * (group + 2) * d;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float2* angle = angles + (row / micro_batch) * half;
    bf16* base_row = qkv + row * width;
    for (int64_t p = threadIdx.x; p < duos; p += blockDim.x) {
      const int64_t head = p / (half / 2), i = 2 * (p % (half / 2));
      const int64_t g = head / rotated, slot = head % rotated;
      bf16* x = base_row + g * (group + 2) * d + slot * d;
      const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(x + i));
      const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(x + i + half));
      const float2 c0 = angle[i], c1 = angle[i + 1];
      const float s0 = sign * c0.y, s1 = sign * c1.y;
      *reinterpret_cast<__nv_bfloat162*>(x + i) =
          __floats2bfloat162_rn(a.x * c0.x - b.x * s0, a.y * c1.x - b.y * s1);
      *reinterpret_cast<__nv_bfloat162*>(x + i + half) =
          __floats2bfloat162_rn(b.x * c0.x + a.x * s0, b.y * c1.x + a.y * s1);
    }
  }
}

}  // namespace

void rotary_angles(float2* angles, int64_t seq, int64_t head_dim, double base,
                   cudaStream_t stream) {
  if (seq * head_dim == 0) return;
  rotary_angles_kernel<<<flat_grid(seq * head_dim / 2), kThreads, 0, stream>>>(angles, seq,
                                                                               head_dim, base);
  CUDA_CHECK_LAUNCH();
}

void rotary(bf16* qkv, int64_t rows, int64_t micro_batch, int64_t kv_heads, int64_t group,
            int64_t head_dim, const float2* angles, bool inverse, cudaStream_t stream) {
  if (rows * kv_heads * head_dim == 0) return;
  if (head_dim % 4 != 0) {
    throw ExecutorError("rotary: head size " + std::to_string(head_dim) +
                        ", expected a multiple of 4");
  }
  rotary_kernel<<<grid_of(rows), kThreads, 0, stream>>>(qkv, rows, micro_batch, kv_heads, group,
                                                        head_dim, angles, inverse ? -1.f : 1.f);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
