// What every kernel family of the executor shares (executor/cuda/kernels.h lists the families): the
// bf16 storage type and the contract of all launchers. Tensors are row-major; activations are bf16
// with `rows` = tokens (sequence-major: row = position * micro_batch + sequence) and `cols` =
// features. Gradients of parameters are fp32 "main grads" that kernels ACCUMULATE into (+=), so
// micro-batches add up without extra passes. All arithmetic is fp32 on bf16 storage. Every
// launcher is asynchronous on `stream` and checks its launch with CUDA_CHECK (throws
// ExecutorError); none synchronises. Shapes are trusted (the model checks them once).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace mpsim::executor::kernels {

using bf16 = __nv_bfloat16;

}  // namespace mpsim::executor::kernels
