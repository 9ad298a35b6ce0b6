// Cross-entropy partials and their combination; see loss_kernels.h.
#include "executor/cuda/loss_kernels.h"

#include <cfloat>

#include "executor/cuda/cuda_check.h"

namespace mpsim::executor::kernels {
namespace {

constexpr int kThreads = 256;

// Merges (m, s) pairs of an online softmax: s counts exp(x - m).
__device__ void merge(float& m, float& s, float m2, float s2) {
  if (s2 == 0.0f) return;
  if (s == 0.0f) {
    m = m2;
    s = s2;
    return;
  }
  const float mm = fmaxf(m, m2);
  s = s * __expf(m - mm) + s2 * __expf(m2 - mm);
  m = mm;
}

__global__ void partial_kernel(const __nv_bfloat16* logits, const int32_t* targets, float* partial,
                               int64_t rows, int64_t vocab_local, int64_t vocab_start,
                               int64_t vocab) {
  const int64_t row = blockIdx.x;
  const __nv_bfloat16* x = logits + row * vocab_local;
  int64_t real = vocab - vocab_start;  // real (unpadded) columns of this slice
  real = real < 0 ? 0 : (real > vocab_local ? vocab_local : real);
  float m = -FLT_MAX, s = 0.0f;
  for (int64_t j = threadIdx.x; j < real; j += blockDim.x) {
    const float v = __bfloat162float(x[j]);
    if (v > m) {
      s = s * __expf(m - v) + 1.0f;
      m = v;
    } else {
      s += __expf(v - m);
    }
  }
  __shared__ float sm[kThreads], ss[kThreads];
  sm[threadIdx.x] = m;
  ss[threadIdx.x] = s;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      float a = sm[threadIdx.x], b = ss[threadIdx.x];
      merge(a, b, sm[threadIdx.x + stride], ss[threadIdx.x + stride]);
      sm[threadIdx.x] = a;
      ss[threadIdx.x] = b;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    partial[row] = ss[0] > 0.0f ? sm[0] : -FLT_MAX;
    partial[rows + row] = ss[0];
    const int64_t t = static_cast<int64_t>(targets[row]) - vocab_start;
    partial[2 * rows + row] = (t >= 0 && t < real) ? __bfloat162float(x[t]) : 0.0f;
  }
}

__global__ void combine_kernel(const float* gathered, int ranks, float* row_max, float* sums,
                               float* loss_sum, int64_t rows) {
  float loss = 0.0f;
  for (int64_t row = blockIdx.x * blockDim.x + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float m = -FLT_MAX, s = 0.0f, target = 0.0f;
    for (int r = 0; r < ranks; ++r) {
      const float* p = gathered + static_cast<int64_t>(r) * 3 * rows;
      merge(m, s, p[row], p[rows + row]);
      target += p[2 * rows + row];
    }
    row_max[row] = m;
    sums[row] = s;
    sums[rows + row] = target;
    loss += logf(s) + m - target;
  }
  for (int offset = 16; offset > 0; offset /= 2) loss += __shfl_down_sync(0xffffffffu, loss, offset);
  if ((threadIdx.x & 31) == 0) atomicAdd(loss_sum, loss);
}

}  // namespace

void cross_entropy_partial(const __nv_bfloat16* logits, const int32_t* targets, float* partial,
                           int64_t rows, int64_t vocab_local, int64_t vocab_start, int64_t vocab,
                           cudaStream_t stream) {
  if (rows == 0) return;
  partial_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, targets, partial, rows, vocab_local, vocab_start, vocab);
  CUDA_CHECK_LAUNCH();
}

void cross_entropy_combine(const float* gathered, int ranks, float* row_max, float* sums,
                           float* loss_sum, int64_t rows, cudaStream_t stream) {
  if (rows == 0) return;
  const int64_t blocks = (rows + kThreads - 1) / kThreads;
  combine_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(gathered, ranks, row_max,
                                                                        sums, loss_sum, rows);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
