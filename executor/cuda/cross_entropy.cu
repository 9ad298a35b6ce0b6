// Vocabulary-parallel cross-entropy (one block of 1-D threads per row); see cross_entropy.h.
#include "executor/cuda/cross_entropy.h"
#include "executor/cuda/kernel_helpers.cuh"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

// n_real: this rank's columns that are real vocabulary, clamp(vocab - vocab_start, 0, vocab_local).
// Each thread keeps an online (max, sum of exp) pair over its columns; the block then takes the
// row max and sums the threads' sums rescaled to it. A thread (or rank) without columns keeps
// (-FLT_MAX, 0), which rescales to 0 without forming inf - inf.
__global__ void cross_entropy_partial_kernel(const bf16* logits, const int32_t* targets,
                                             float* partial, int64_t rows, int64_t vocab_local,
                                             int64_t vocab_start, int64_t n_real, bool vec) {
  __shared__ float smem[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const bf16* row = logits + r * vocab_local;
    float m = -FLT_MAX, s = 0.f;
    auto add = [&](float v) {
      if (v > m) {
        s = s * exp2f((m - v) * kLog2e) + 1.f;
        m = v;
      } else {
        s += exp2f((v - m) * kLog2e);
      }
    };
    int64_t done = 0;
    if (vec) {
      const int64_t packs = n_real / 8;
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        float f[8];
        load_vec<8>(row + 8 * p, f);
#pragma unroll
        for (int e = 0; e < 8; ++e) add(f[e]);
      }
      done = packs * 8;
    }
    for (int64_t j = done + threadIdx.x; j < n_real; j += blockDim.x) add(__bfloat162float(row[j]));
    const float row_max = row_reduce(m, Max{}, smem);
    const float sum = row_reduce(s * exp2f((m - row_max) * kLog2e), Sum{}, smem);
    if (threadIdx.x == 0) {
      partial[r] = row_max;
      partial[rows + r] = sum;
      const int64_t t = int64_t{targets[r]} - vocab_start;
      partial[2 * rows + r] = t >= 0 && t < n_real ? __bfloat162float(row[t]) : 0.f;
    }
  }
}

// One block: threads stride over rows, ranks are merged in order, the loss is reduced in a fixed
// order.
__global__ void __launch_bounds__(1024)
    cross_entropy_combine_kernel(const float* gathered, int ranks, float* row_max, float* sums,
                                 float* loss_sum, int64_t rows) {
  __shared__ float smem[32];
  float loss = 0.f;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    float m = -FLT_MAX;
    for (int k = 0; k < ranks; ++k) m = fmaxf(m, gathered[int64_t{k} * 3 * rows + r]);
    float s = 0.f, target = 0.f;
    for (int k = 0; k < ranks; ++k) {
      const float* p = gathered + int64_t{k} * 3 * rows;
      s += p[rows + r] * exp2f((p[r] - m) * kLog2e);
      target += p[2 * rows + r];
    }
    row_max[r] = m;
    sums[r] = s;
    sums[rows + r] = target;
    loss += (m - target) + logf(s);
  }
  loss = row_reduce(loss, Sum{}, smem);
  if (threadIdx.x == 0) loss_sum[0] += loss;
}

__global__ void cross_entropy_backward_kernel(bf16* logits, const int32_t* targets,
                                              const float* row_max, const float* sums, int64_t rows,
                                              int64_t vocab_local, int64_t vocab_start,
                                              int64_t n_real, float grad_scale, bool vec) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    bf16* row = logits + r * vocab_local;
    const float m = row_max[r];
    const float scale = grad_scale / sums[r];
    const int64_t t = int64_t{targets[r]} - vocab_start;
    auto grad = [&](int64_t j, float l) {
      if (j >= n_real) return 0.f;
      float g = exp2f((l - m) * kLog2e) * scale;
      if (j == t) g -= grad_scale;
      return g;
    };
    if (vec) {
      for (int64_t p = threadIdx.x; p < vocab_local / 8; p += blockDim.x) {
        float f[8];
        load_vec<8>(row + 8 * p, f);
#pragma unroll
        for (int e = 0; e < 8; ++e) f[e] = grad(8 * p + e, f[e]);
        store_vec<8>(row + 8 * p, f);
      }
    } else {
      for (int64_t j = threadIdx.x; j < vocab_local; j += blockDim.x)
        row[j] = __float2bfloat16(grad(j, __bfloat162float(row[j])));
    }
  }
}

int64_t real_columns(int64_t vocab_local, int64_t vocab_start, int64_t vocab) {
  return std::clamp<int64_t>(vocab - vocab_start, 0, vocab_local);
}
bool row_vec(const bf16* logits, int64_t vocab_local) {
  return vocab_local % 8 == 0 && aligned16(logits);
}

}  // namespace

void cross_entropy_partial(const bf16* logits, const int32_t* targets, float* partial, int64_t rows,
                           int64_t vocab_local, int64_t vocab_start, int64_t vocab,
                           cudaStream_t stream) {
  if (rows <= 0) return;
  cross_entropy_partial_kernel<<<grid_of(rows), kThreads, 0, stream>>>(
      logits, targets, partial, rows, vocab_local, vocab_start,
      real_columns(vocab_local, vocab_start, vocab), row_vec(logits, vocab_local));
  CUDA_CHECK_LAUNCH();
}

void cross_entropy_combine(const float* gathered, int ranks, float* row_max, float* sums,
                           float* loss_sum, int64_t rows, cudaStream_t stream) {
  if (rows <= 0) return;
  cross_entropy_combine_kernel<<<1, 1024, 0, stream>>>(gathered, ranks, row_max, sums, loss_sum,
                                                       rows);
  CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(bf16* logits, const int32_t* targets, const float* row_max,
                            const float* sums, int64_t rows, int64_t vocab_local,
                            int64_t vocab_start, int64_t vocab, float grad_scale,
                            cudaStream_t stream) {
  if (rows <= 0) return;
  cross_entropy_backward_kernel<<<grid_of(rows), kThreads, 0, stream>>>(
      logits, targets, row_max, sums, rows, vocab_local, vocab_start,
      real_columns(vocab_local, vocab_start, vocab), grad_scale, row_vec(logits, vocab_local));
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
