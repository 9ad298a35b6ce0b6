// Column sums for the kernel families (not for their callers): out[c] += sum_r of an op's
// contributions for row r and column c, for up to two outputs at once; the op may also write an
// element-wise result on the way (the GeLU backward pass writes dx while summing dbias). Used for
// the bias gradient, the bias-GeLU backward pass and the generic path of the norms' dgamma and
// dbeta. Launches are asynchronous; launch errors throw ExecutorError.
#pragma once

#include "executor/cuda/kernel_helpers.cuh"

namespace mpsim::executor::kernels::detail {

template <int kOut, int kVec>
using Acc = float[kOut > 0 ? kOut : 1][kVec];

// Blocks of (32, 8) threads; block (bx, by) covers columns [bx * 32 * kVec, +32 * kVec) of the
// rows [by * chunk, +chunk). op(r, c, acc) handles columns [c, c + kVec) of row r and adds its
// kOut column contributions to acc; the block's sums go to out0/out1 (nullable) with one
// atomicAdd per column (16-byte atomics over 4 columns when kVec is 8: cols % 8 == 0 and out
// 16-byte aligned).
template <int kVec, int kOut, class Op>
__global__ void __launch_bounds__(256)
    column_tile_kernel(Op op, float* out0, float* out1, int64_t rows, int64_t cols, int64_t chunk) {
  constexpr int kTile = 32 * kVec;
  const int64_t c0 = (int64_t{blockIdx.x} * 32 + threadIdx.x) * kVec;
  const int64_t r0 = int64_t{blockIdx.y} * chunk;
  const int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
  Acc<kOut, kVec> acc = {};
  if (c0 < cols) {
#pragma unroll 2
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) op(r, c0, acc);
  }
  if constexpr (kOut > 0) {
    __shared__ __align__(16) float buf[8][kTile];
    const int tid = threadIdx.y * 32 + threadIdx.x;
#pragma unroll
    for (int o = 0; o < kOut; ++o) {
#pragma unroll
      for (int e = 0; e < kVec; ++e) buf[threadIdx.y][threadIdx.x * kVec + e] = acc[o][e];
      __syncthreads();
      float* out = o == 0 ? out0 : out1;
      // kSpan consecutive columns per thread, for 16-byte atomics when vectorised.
      constexpr int kSpan = kVec % 4 == 0 ? 4 : 1;
      for (int j = tid * kSpan; j < kTile; j += 256 * kSpan) {
        const int64_t c = int64_t{blockIdx.x} * kTile + j;
        if (out != nullptr && c < cols) {
          float s[kSpan] = {};
#pragma unroll
          for (int yy = 0; yy < 8; ++yy)
#pragma unroll
            for (int e = 0; e < kSpan; ++e) s[e] += buf[yy][j + e];
          atomic_add_vec<kSpan>(out + c, s);
        }
      }
      __syncthreads();
    }
  }
}

struct ColumnConfig {
  dim3 grid;
  int64_t chunk;
};
// About 8 blocks of 256 per SM, each over at least 64 rows (so 8 per thread) to amortise its
// atomics.
inline ColumnConfig column_config(int64_t rows, int64_t cols, int vec) {
  const int64_t tiles = ceil_div(cols, int64_t{32} * vec);
  const int64_t target = int64_t{sm_count()} * 8;
  const int64_t chunks = std::clamp<int64_t>(ceil_div(target, tiles), 1,
                                             std::clamp<int64_t>(ceil_div(rows, 64), 1, 65535));
  const int64_t chunk = ceil_div(rows, chunks);
  return {dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(ceil_div(rows, chunk))), chunk};
}

template <int kVec, int kOut, class Op>
void launch_column_tile(Op op, float* out0, float* out1, int64_t rows, int64_t cols,
                        cudaStream_t stream) {
  const ColumnConfig cfg = column_config(rows, cols, kVec);
  column_tile_kernel<kVec, kOut>
      <<<cfg.grid, dim3(32, 8), 0, stream>>>(op, out0, out1, rows, cols, cfg.chunk);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels::detail
