// Element-wise kernels: conversions, fills, additions, and the deterministic initialisation of
// parameters.
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

void cast_fp32_to_bf16(const float* in, bf16* out, int64_t n, cudaStream_t stream);
void fill_fp32(float* out, float value, int64_t n, cudaStream_t stream);
// out = a + b (out may alias a or b).
void add_bf16(const bf16* a, const bf16* b, bf16* out, int64_t n, cudaStream_t stream);
// dst[r * dst_ld + c] = src[r * src_ld + c] for r < rows, c < cols (strided rows, e.g. the query
// heads of the QKV rows gathered into their own tensor, and their gradient scattered back).
void copy_rows(const bf16* src, int64_t src_ld, bf16* dst, int64_t dst_ld, int64_t rows,
               int64_t cols, cudaStream_t stream);

// Deterministic parameter initialisation, the same on every GPU and in the CPU reference
// (executor/core/param_init.h): out[i] = mean + std * init_normal(seed, param_id, global index)
// where the local tensor [rows, cols] is the block starting at (row_offset, col_offset) of a
// global tensor with `global_cols` columns: global index = (row_offset + r) * global_cols +
// col_offset + c. std == 0 fills `mean`.
void init_parameter(float* out, int64_t rows, int64_t cols, int64_t row_offset, int64_t col_offset,
                    int64_t global_cols, uint64_t seed, uint64_t param_id, float mean, float std,
                    cudaStream_t stream);

}  // namespace mpsim::executor::kernels
