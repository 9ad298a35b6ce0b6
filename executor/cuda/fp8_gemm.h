// FP8 GEMMs through cuBLASLt for the linear layers under Transformer Engine's recipe: both
// operands FP8 (E4M3, or E5M2 for a gradient; not both E5M2), each with its per-tensor
// dequantisation scale (a device scalar, 1 / the quantisation scale), fp32 accumulation, the
// output bf16 or (for weight gradients accumulated into the main grads) fp32. Hopper's FP8 GEMMs
// take both operands K-contiguous only, hence one form (row-major):
//   C[m, n] = A[m, k] B[n, k]^T (+ beta C)
// A linear layer's three GEMMs in it: forward y = x w^T (A = x, B = w), data gradient
// dx = dy (w^T)^T (A = dy, B = the transposed weight), weight gradient dw += dy^T (x^T)^T
// (A = dy^T, B = x^T), the transposes made by quantize_fp8 (fp8.h). Leading dimensions and
// pointers must be 16-byte multiples. Algorithms are chosen once per shape and cached. Failures
// throw ExecutorError with cuBLASLt's message.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "executor/cuda/device_memory.h"
#include "executor/cuda/fp8.h"

namespace mpsim::executor {

struct Fp8Operand {
  const void* data = nullptr;
  int64_t ld = 0;  // elements (bytes) between rows
  kernels::Fp8Format format = kernels::Fp8Format::kE4M3;
  const float* scale_inv = nullptr;  // device scalar
};

class Fp8Gemm {
 public:
  Fp8Gemm(DeviceMemory& memory, cudaStream_t stream);  // a 32 MiB workspace
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // c_fp32: C and D fp32 (else bf16); fast_accumulate: the forward pass's faster, less exact
  // accumulation (Transformer Engine uses it forward only).
  void gemm_tn(int64_t m, int64_t n, int64_t k, const Fp8Operand& a, const Fp8Operand& b, void* c,
               int64_t ldc, bool c_fp32, float beta, bool fast_accumulate);

 private:
  using Key =
      std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, bool, bool, bool>;
  cublasLtHandle_t handle_ = nullptr;
  cudaStream_t stream_;
  DeviceBuffer workspace_;
  std::map<Key, cublasLtMatmulAlgo_t> algos_;
};

}  // namespace mpsim::executor
