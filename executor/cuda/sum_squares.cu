// Sum of squares (flat layout, one atomicAdd per block); see sum_squares.h.
#include "executor/cuda/kernel_helpers.cuh"
#include "executor/cuda/sum_squares.h"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

__global__ void sum_squares_kernel(const float* x, int64_t n, float* out, bool vec) {
  __shared__ float smem[32];
  float s = 0.f;
  int64_t done = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = global_thread(); i < n4; i += grid_threads()) {
      const float4 v = reinterpret_cast<const float4*>(x)[i];
      s += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    done = n4 * 4;
  }
  for (int64_t i = done + global_thread(); i < n; i += grid_threads()) s += x[i] * x[i];
  s = row_reduce(s, Sum{}, smem);
  if (threadIdx.x == 0) atomicAdd(out, s);
}

}  // namespace

void sum_squares(const float* x, int64_t n, float* out, cudaStream_t stream) {
  if (n <= 0) return;
  const unsigned grid = static_cast<unsigned>(
      std::clamp<int64_t>(ceil_div(n, int64_t{kThreads} * 8), 1, int64_t{sm_count()} * 4));
  sum_squares_kernel<<<grid, kThreads, 0, stream>>>(x, n, out, aligned16(x));
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
