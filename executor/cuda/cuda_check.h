// One checking macro per library the executor calls (CUDA runtime, cuBLAS, NCCL). A failed call
// throws ExecutorError carrying the call's text, its file:line and the library's own message, e.g.
//   executor/cuda/gemm.cu:88: cublasGemmEx(...) failed: CUBLAS_STATUS_INVALID_VALUE
// The trainer catches it at the top of the rank, prints it and exits non-zero; the launcher then
// stops the other ranks.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <stdexcept>
#include <string>

namespace mpsim::executor {

class ExecutorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_call_error(const char* call, const char* file, int line,
                                          const std::string& why) {
  throw ExecutorError(std::string(file) + ":" + std::to_string(line) + ": " + call +
                      " failed: " + why);
}

}  // namespace mpsim::executor

#define CUDA_CHECK(call)                                                      \
  do {                                                                        \
    const cudaError_t mpsim_status_ = (call);                                 \
    if (mpsim_status_ != cudaSuccess)                                         \
      ::mpsim::executor::throw_call_error(#call, __FILE__, __LINE__,          \
                                          cudaGetErrorString(mpsim_status_)); \
  } while (0)

#define CUBLAS_CHECK(call)                                                       \
  do {                                                                           \
    const cublasStatus_t mpsim_status_ = (call);                                 \
    if (mpsim_status_ != CUBLAS_STATUS_SUCCESS)                                  \
      ::mpsim::executor::throw_call_error(#call, __FILE__, __LINE__,             \
                                          cublasGetStatusString(mpsim_status_)); \
  } while (0)

#define NCCL_CHECK(call)                                                      \
  do {                                                                        \
    const ncclResult_t mpsim_status_ = (call);                                \
    if (mpsim_status_ != ncclSuccess)                                         \
      ::mpsim::executor::throw_call_error(#call, __FILE__, __LINE__,          \
                                          ncclGetErrorString(mpsim_status_)); \
  } while (0)

// After a kernel launch: reports a bad configuration at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
