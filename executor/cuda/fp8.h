// FP8 quantisation for the linear layers, as Transformer Engine's delayed-scaling recipe does it
// on Hopper: a tensor is cast to FP8 with a per-tensor scale (x_fp8 = fp8(x * scale), saturating at
// the format's largest finite value), its absolute maximum recorded for the recipe's history,
// and, because Hopper's FP8 GEMMs take both operands K-contiguous only ("TN"), written
// transposed too where a GEMM needs it (a fused cast + transpose). E4M3 (largest 448) holds
// activations and weights, E5M2 (57344) gradients (the "hybrid" format).
// Launchers are asynchronous on `stream`; a failed launch throws ExecutorError.
#pragma once

#include <cuda_fp8.h>

#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

enum class Fp8Format { kE4M3, kE5M2 };
// The format's largest finite value (448 or 57344).
float fp8_max(Fp8Format format);

// x [rows, cols] bf16 to FP8 of `format` with the device scalar *scale: into out [rows, cols]
// and/or out_t [cols, rows] (either may be null); *amax = max(*amax, max |x|) (atomically; the
// caller zeroes it once per recipe step). Non-finite inputs saturate.
void quantize_fp8(const bf16* x, int64_t rows, int64_t cols, Fp8Format format, const float* scale,
                  void* out, void* out_t, float* amax, cudaStream_t stream);

// in [rows, cols] FP8 (one byte per element) to out [cols, rows].
void transpose_fp8(const void* in, int64_t rows, int64_t cols, void* out, cudaStream_t stream);

// Delayed scaling, once per recipe step, for n tensors: the step's amax[i] enters the history
// (history[slot * n + i], slot = step % history_len; unwritten slots hold 0), the scale becomes
// max_value[i] / max(history of i) / 2^margin where that maximum is positive and finite (else it
// stays), scale_inv = 1 / scale, and amax[i] is zeroed for the next step.
void update_fp8_scales(float* amax, float* history, float* scale, float* scale_inv,
                       const float* max_value, int64_t n, int64_t history_len, int64_t step,
                       float margin, cudaStream_t stream);

}  // namespace mpsim::executor::kernels
