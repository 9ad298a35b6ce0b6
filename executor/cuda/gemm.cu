// Row-major GEMMs through column-major cuBLAS; see gemm.h.
//
// A row-major matrix X (r x c, leading dimension ld) is, to cuBLAS, the column-major matrix X^T.
// So row-major C = op(A) op(B) is computed as column-major C^T = op(B)^T op(A)^T: cuBLAS is
// called with the operands swapped, each keeping its own transpose flag.
#include "executor/cuda/cuda_check.h"
#include "executor/cuda/gemm.h"

namespace mpsim::executor {
namespace {

constexpr int64_t kWorkspaceBytes = 32 << 20;

cublasOperation_t op(bool transpose) { return transpose ? CUBLAS_OP_T : CUBLAS_OP_N; }

}  // namespace

Gemm::Gemm(DeviceMemory& memory, cudaStream_t stream)
    : workspace_(memory, MemoryCategory::kWorkspace, kWorkspaceBytes, stream) {
  CUBLAS_CHECK(cublasCreate(&handle_));
  CUBLAS_CHECK(cublasSetStream(handle_, stream));
  CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_.get(), kWorkspaceBytes));
}

Gemm::~Gemm() {
  if (handle_ != nullptr) cublasDestroy(handle_);
}

void Gemm::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
                int64_t lda, const void* b, int64_t ldb, float beta, void* c, int64_t ldc,
                cudaDataType_t c_type) {
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasGemmEx(handle_, op(trans_b), op(trans_a), static_cast<int>(n),
                            static_cast<int>(m), static_cast<int>(k), &alpha, b, CUDA_R_16BF,
                            static_cast<int>(ldb), a, CUDA_R_16BF, static_cast<int>(lda), &beta, c,
                            c_type, static_cast<int>(ldc), CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
}

void Gemm::linear_forward(const bf16* x, const bf16* w, bf16* y, int64_t tokens, int64_t in,
                          int64_t out) {
  gemm(false, true, tokens, out, in, x, in, w, in, 0.0f, y, out, CUDA_R_16BF);
}

void Gemm::linear_dgrad(const bf16* dy, const bf16* w, bf16* dx, int64_t tokens, int64_t in,
                        int64_t out) {
  gemm(false, false, tokens, in, out, dy, out, w, in, 0.0f, dx, in, CUDA_R_16BF);
}

void Gemm::linear_wgrad(const bf16* dy, const bf16* x, float* dw, int64_t tokens, int64_t in,
                        int64_t out) {
  gemm(true, false, out, in, tokens, dy, out, x, in, 1.0f, dw, in, CUDA_R_32F);
}

void Gemm::batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   Matrix<const bf16> a, Matrix<const bf16> b, Matrix<bf16> c, int64_t batch,
                   float beta) {
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle_, op(trans_b), op(trans_a), static_cast<int>(n), static_cast<int>(m),
      static_cast<int>(k), &alpha, b.data, CUDA_R_16BF, static_cast<int>(b.ld), b.batch_stride,
      a.data, CUDA_R_16BF, static_cast<int>(a.ld), a.batch_stride, &beta, c.data, CUDA_R_16BF,
      static_cast<int>(c.ld), c.batch_stride, static_cast<int>(batch), CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
}

}  // namespace mpsim::executor
