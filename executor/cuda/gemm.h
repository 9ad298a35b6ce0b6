// Row-major GEMMs on cuBLAS for the executor: the three GEMMs of a linear layer (forward,
// data gradient, weight gradient accumulated into fp32 main grads, as Megatron-LM's
// gradient-accumulation fusion) and the strided-batched GEMMs of the attention core. bf16
// inputs, fp32 accumulation; cuBLAS picks the kernel (nvjet on H100). Failures throw
// ExecutorError (CUBLAS_CHECK).
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "executor/cuda/device_memory.h"

namespace mpsim::executor {

using bf16 = __nv_bfloat16;

// A row-major matrix view: element (r, c) at data[r * ld + c]; `batch_stride` apart for
// strided-batched GEMMs.
template <typename T>
struct Matrix {
  T* data = nullptr;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

class Gemm {
 public:
  Gemm(DeviceMemory& memory, cudaStream_t stream);  // a 32 MiB cuBLAS workspace
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y[T, out] = x[T, in] W[out, in]^T
  void linear_forward(const bf16* x, const bf16* w, bf16* y, int64_t tokens, int64_t in,
                      int64_t out);
  // dx[T, in] = dy[T, out] W[out, in]
  void linear_dgrad(const bf16* dy, const bf16* w, bf16* dx, int64_t tokens, int64_t in,
                    int64_t out);
  // dW[out, in] += dy[T, out]^T x[T, in]   (fp32 accumulation into the main grad)
  void linear_wgrad(const bf16* dy, const bf16* x, float* dw, int64_t tokens, int64_t in,
                    int64_t out);

  // C_i[M, N] = alpha op(A_i) op(B_i) + beta C_i for i < batch; op transposes when the flag is
  // set (A_i is stored [K, M] when trans_a). bf16 in and out.
  void batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               Matrix<const bf16> a, Matrix<const bf16> b, Matrix<bf16> c, int64_t batch,
               float beta = 0.0f);

 private:
  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
            const void* b, int64_t ldb, float beta, void* c, int64_t ldc, cudaDataType_t c_type);

  cublasHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
};

}  // namespace mpsim::executor
