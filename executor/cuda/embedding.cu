// Vocabulary-parallel embedding, forward and backward (rows layout); see embedding.h.
#include "executor/cuda/embedding.h"
#include "executor/cuda/kernel_helpers.cuh"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

template <int kVec>
__global__ void embedding_forward_kernel(const int32_t* tokens, const bf16* word,
                                         const bf16* position, bf16* out, int64_t rows,
                                         int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                                         int64_t vocab_local) {
  MPSIM_FOR_ROWS(r, rows) {
    const int64_t local = int64_t{tokens[r]} - vocab_start;
    const bool owned = local >= 0 && local < vocab_local;
    const bf16* w = word + local * hidden;
    const bf16* p = position ? position + (r / micro_batch) * hidden : nullptr;
    bf16* o = out + r * hidden;
    for (int64_t c = int64_t{threadIdx.x} * kVec; c < hidden; c += int64_t{blockDim.x} * kVec) {
      float v[kVec] = {};
      if (owned) load_vec<kVec>(w + c, v);
      if (p) {
        float q[kVec];
        load_vec<kVec>(p + c, q);
#pragma unroll
        for (int e = 0; e < kVec; ++e) v[e] += q[e];
      }
      store_vec<kVec>(o + c, v);
    }
  }
}

// p[e] += f[e] where this thread is the only writer.
template <int kVec>
__device__ __forceinline__ void add_to_vec(float* p, const float (&f)[kVec]) {
  if constexpr (kVec % 4 == 0) {
#pragma unroll
    for (int e = 0; e < kVec; e += 4) {
      float4 v = *reinterpret_cast<float4*>(p + e);
      v.x += f[e];
      v.y += f[e + 1];
      v.z += f[e + 2];
      v.w += f[e + 3];
      *reinterpret_cast<float4*>(p + e) = v;
    }
  } else {
#pragma unroll
    for (int e = 0; e < kVec; ++e) p[e] += f[e];
  }
}

// One "row" per position s: the thread owning (s, c) sums dout over the micro_batch sequences
// for dposition (sole writer, no atomics) and scatters each row into dword with atomics.
template <int kVec>
__global__ void embedding_backward_kernel(const int32_t* tokens, const bf16* dout, float* dword,
                                          float* dposition, int64_t rows, int64_t hidden,
                                          int64_t micro_batch, int64_t vocab_start,
                                          int64_t vocab_local) {
  const int64_t positions = ceil_div(rows, micro_batch);
  MPSIM_FOR_ROWS(s, positions) {
    const int64_t r_begin = s * micro_batch;
    const int64_t r_end = r_begin + micro_batch < rows ? r_begin + micro_batch : rows;
    for (int64_t c = int64_t{threadIdx.x} * kVec; c < hidden; c += int64_t{blockDim.x} * kVec) {
      float acc[kVec] = {};
      for (int64_t r = r_begin; r < r_end; ++r) {
        float g[kVec];
        load_vec<kVec>(dout + r * hidden + c, g);
        const int64_t local = int64_t{tokens[r]} - vocab_start;
        if (local >= 0 && local < vocab_local) atomic_add_vec<kVec>(dword + local * hidden + c, g);
#pragma unroll
        for (int e = 0; e < kVec; ++e) acc[e] += g[e];
      }
      if (dposition) add_to_vec<kVec>(dposition + s * hidden + c, acc);
    }
  }
}

}  // namespace

void embedding_forward(const int32_t* tokens, const bf16* word, const bf16* position, bf16* out,
                       int64_t rows, int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                       int64_t vocab_local, cudaStream_t stream) {
  if (rows <= 0 || hidden <= 0) return;
  const bool vec = hidden % 8 == 0 && all_aligned16(word, position, out);
  MPSIM_LAUNCH_ROWS(embedding_forward_kernel, vec, rows, hidden, stream, tokens, word, position,
                    out, rows, hidden, micro_batch, vocab_start, vocab_local);
}

void embedding_backward(const int32_t* tokens, const bf16* dout, float* dword, float* dposition,
                        int64_t rows, int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                        int64_t vocab_local, cudaStream_t stream) {
  if (rows <= 0 || hidden <= 0) return;
  const bool vec = hidden % 8 == 0 && all_aligned16(dout, dword, dposition);
  const int64_t positions = ceil_div(rows, micro_batch);
  MPSIM_LAUNCH_ROWS(embedding_backward_kernel, vec, positions, hidden, stream, tokens, dout, dword,
                    dposition, rows, hidden, micro_batch, vocab_start, vocab_local);
}

}  // namespace mpsim::executor::kernels
