// The vocabulary-parallel embedding: each tensor-parallel rank holds a slice of the word table;
// learned positions are optional (absent with rotary positions).
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError. Layouts and the
// accumulation into fp32 main grads: kernel_types.h.
#pragma once

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

// out[r, :] = word[tokens[r] - vocab_start, :] if the token falls in this rank's slice
// [vocab_start, vocab_start + vocab_local), else 0; plus position[r / micro_batch, :] when
// `position` is not null. rows = seq * micro_batch.
void embedding_forward(const int32_t* tokens, const bf16* word, const bf16* position, bf16* out,
                       int64_t rows, int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                       int64_t vocab_local, cudaStream_t stream);
// dword[tokens[r] - vocab_start, :] += dout[r, :] for local tokens; dposition[r / micro_batch, :]
// += dout[r, :] when dposition is not null.
void embedding_backward(const int32_t* tokens, const bf16* dout, float* dword, float* dposition,
                        int64_t rows, int64_t hidden, int64_t micro_batch, int64_t vocab_start,
                        int64_t vocab_local, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
