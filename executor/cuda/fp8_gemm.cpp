// Row-major FP8 GEMMs through column-major cuBLASLt; see fp8_gemm.h.
//
// A row-major X (r x c) is, to cuBLASLt, the column-major X^T (c x r). Row-major
// C[m, n] = A[m, k] B[n, k]^T is column-major C^T (n x m) = (B^T)^T A^T with B^T (k x n) and A^T
// (k x m) the buffers as cuBLASLt sees them: its A is our B, transposed ("T"), its B our A, as is
// ("N"), the one form Hopper's FP8 GEMMs take.
#include "executor/cuda/fp8_gemm.h"

#include <string>

#include "executor/cuda/cuda_check.h"

namespace mpsim::executor {
namespace {

constexpr int64_t kWorkspaceBytes = 32 << 20;

cudaDataType_t type_of(kernels::Fp8Format f) {
  return f == kernels::Fp8Format::kE4M3 ? CUDA_R_8F_E4M3 : CUDA_R_8F_E5M2;
}

// Owned cuBLASLt descriptors of one call.
struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t preference = nullptr;
  ~Descriptors() {
    if (preference) cublasLtMatmulPreferenceDestroy(preference);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

}  // namespace

Fp8Gemm::Fp8Gemm(DeviceMemory& memory, cudaStream_t stream)
    : stream_(stream), workspace_(memory, MemoryCategory::kWorkspace, kWorkspaceBytes, stream) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
}

Fp8Gemm::~Fp8Gemm() {
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

void Fp8Gemm::gemm_tn(int64_t m, int64_t n, int64_t k, const Fp8Operand& a, const Fp8Operand& b,
                      void* c, int64_t ldc, bool c_fp32, float beta, bool fast_accumulate) {
  if (a.format == kernels::Fp8Format::kE5M2 && b.format == kernels::Fp8Format::kE5M2)
    throw ExecutorError("FP8 GEMM: both operands E5M2; cuBLASLt takes at most one");
  if (k % 16 != 0 || a.ld % 16 != 0 || b.ld % 16 != 0) {
    throw ExecutorError("FP8 GEMM " + std::to_string(m) + " x " + std::to_string(n) + " x " +
                        std::to_string(k) +
                        ": k and the leading dimensions must be multiples "
                        "of 16");
  }
  const cudaDataType_t c_type = c_fp32 ? CUDA_R_32F : CUDA_R_16BF;
  Descriptors d;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T, keep = CUBLAS_OP_N;
  const int8_t fast = fast_accumulate ? 1 : 0;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &transpose,
                                              sizeof transpose));
  CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof keep));
  CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast));
  // cuBLASLt's A is our B and the other way round (the file comment).
  const float* a_scale = b.scale_inv;
  const float* b_scale = a.scale_inv;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scale,
                                              sizeof a_scale));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scale,
                                              sizeof b_scale));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.a, type_of(b.format), static_cast<uint64_t>(k),
                                          static_cast<uint64_t>(n), b.ld));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.b, type_of(a.format), static_cast<uint64_t>(k),
                                          static_cast<uint64_t>(m), a.ld));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.c, c_type, static_cast<uint64_t>(n),
                                          static_cast<uint64_t>(m), ldc));

  const Key key{m,
                n,
                k,
                a.ld,
                b.ld,
                ldc,
                static_cast<int>(a.format),
                static_cast<int>(b.format),
                c_fp32,
                fast_accumulate,
                beta != 0.0f};
  auto found = algos_.find(key);
  if (found == algos_.end()) {
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d.preference));
    const uint64_t workspace = kWorkspaceBytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d.preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace));
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, d.op, d.a, d.b, d.c, d.c, d.preference, 1,
                                                &result, &returned));
    if (returned == 0) {
      throw ExecutorError("FP8 GEMM " + std::to_string(m) + " x " + std::to_string(n) + " x " +
                          std::to_string(k) + ": cuBLASLt has no algorithm");
    }
    found = algos_.emplace(key, result.algo).first;
  }
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, d.op, &alpha, b.data, d.a, a.data, d.b, &beta, c, d.c, c,
                              d.c, &found->second, workspace_.get(), kWorkspaceBytes, stream_));
}

}  // namespace mpsim::executor
