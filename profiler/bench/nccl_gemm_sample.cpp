// A 2-GPU (any N-GPU) sample program for the profiler's GPU test: one process per GPU, each
// running `--iterations` steps of
//   NVTX "step" { NVTX "gemm" { --gemms cuBLAS bf16 GEMMs of --size³ }
//                 NVTX "allreduce" { NCCL all-reduce of 64 MiB fp32 } }
// and printing each step's time. Without --rank it is the launcher: it re-executes itself once
// per GPU with --rank r and RANK/LOCAL_RANK/WORLD_SIZE set (before any CUDA call, so each child
// is profiled as its own rank) and returns 0 when every child did. NCCL's unique id goes from
// rank 0 to the others through a file (--id-file). NCCL_NVLS_ENABLE=0 is set for the children.
// Errors print the failing call with file:line and exit 1: this is a program, not a library.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include <nvtx3/nvToolsExt.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/atomic_file.h"
#include "common/process/child_process.h"

#define SAMPLE_CHECK(ok, call, message)                                                            \
  do {                                                                                             \
    if (!(ok)) {                                                                                   \
      std::fprintf(stderr, "nccl_gemm_sample: %s failed at %s:%d: %s\n", call, __FILE__, __LINE__, \
                   message);                                                                       \
      std::exit(1);                                                                                \
    }                                                                                              \
  } while (0)
#define CUDA_CHECK(call)                                            \
  do {                                                              \
    cudaError_t e_ = (call);                                        \
    SAMPLE_CHECK(e_ == cudaSuccess, #call, cudaGetErrorString(e_)); \
  } while (0)
#define NCCL_CHECK(call)                                            \
  do {                                                              \
    ncclResult_t e_ = (call);                                       \
    SAMPLE_CHECK(e_ == ncclSuccess, #call, ncclGetErrorString(e_)); \
  } while (0)
#define CUBLAS_CHECK(call)                                                       \
  do {                                                                           \
    cublasStatus_t e_ = (call);                                                  \
    SAMPLE_CHECK(e_ == CUBLAS_STATUS_SUCCESS, #call, cublasGetStatusString(e_)); \
  } while (0)

namespace {

struct Options {
  int rank = -1;  // -1: launcher
  int world = 2;
  int iterations = 10;
  int gemms = 4;
  int size = 4096;
  std::string id_file;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--rank")
      o.rank = std::stoi(value);
    else if (flag == "--world")
      o.world = std::stoi(value);
    else if (flag == "--iterations")
      o.iterations = std::stoi(value);
    else if (flag == "--gemms")
      o.gemms = std::stoi(value);
    else if (flag == "--size")
      o.size = std::stoi(value);
    else if (flag == "--id-file")
      o.id_file = value;
    else
      SAMPLE_CHECK(false, "parsing flags", ("unknown flag " + flag).c_str());
  }
  return o;
}

// Rank 0 writes the id (atomically, so a reader never sees half of it); others wait.
ncclUniqueId share_unique_id(const Options& o) {
  ncclUniqueId id{};
  if (o.rank == 0) {
    NCCL_CHECK(ncclGetUniqueId(&id));
    try {
      mpsim::common::write_file_atomically(o.id_file,
                                           std::string_view(id.internal, sizeof id.internal));
    } catch (const std::exception& e) {
      SAMPLE_CHECK(false, "writing the NCCL id", e.what());
    }
    return id;
  }
  for (int waited_ms = 0; waited_ms < 120000; waited_ms += 10) {
    std::ifstream in(o.id_file, std::ios::binary);
    if (in.read(id.internal, sizeof id.internal)) return id;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  SAMPLE_CHECK(false, "waiting for the NCCL id", o.id_file.c_str());
  return id;
}

int run_rank(const Options& o) {
  CUDA_CHECK(cudaSetDevice(o.rank));
  const ncclUniqueId id = share_unique_id(o);
  ncclComm_t comm;
  NCCL_CHECK(ncclCommInitRank(&comm, o.world, id, o.rank));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  cublasHandle_t cublas;
  CUBLAS_CHECK(cublasCreate(&cublas));
  CUBLAS_CHECK(cublasSetStream(cublas, stream));

  const size_t n = static_cast<size_t>(o.size);
  const size_t reduce_count = (64u << 20) / sizeof(float);  // 64 MiB of fp32
  __nv_bfloat16 *a, *b, *c;
  float* grads;
  CUDA_CHECK(cudaMalloc(&a, n * n * sizeof(__nv_bfloat16)));
  CUDA_CHECK(cudaMalloc(&b, n * n * sizeof(__nv_bfloat16)));
  CUDA_CHECK(cudaMalloc(&c, n * n * sizeof(__nv_bfloat16)));
  CUDA_CHECK(cudaMalloc(&grads, reduce_count * sizeof(float)));
  CUDA_CHECK(cudaMemset(a, 0, n * n * sizeof(__nv_bfloat16)));
  CUDA_CHECK(cudaMemset(b, 0, n * n * sizeof(__nv_bfloat16)));
  CUDA_CHECK(cudaMemset(grads, 0, reduce_count * sizeof(float)));
  const float alpha = 1.0f, beta = 0.0f;

  for (int it = 0; it < o.iterations; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    nvtxRangePushA("step");
    nvtxRangePushA("gemm");
    for (int g = 0; g < o.gemms; ++g) {
      CUBLAS_CHECK(cublasGemmEx(cublas, CUBLAS_OP_N, CUBLAS_OP_N, o.size, o.size, o.size, &alpha, a,
                                CUDA_R_16BF, o.size, b, CUDA_R_16BF, o.size, &beta, c, CUDA_R_16BF,
                                o.size, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    nvtxRangePop();
    nvtxRangePushA("allreduce");
    NCCL_CHECK(ncclAllReduce(grads, grads, reduce_count, ncclFloat, ncclSum, comm, stream));
    nvtxRangePop();
    CUDA_CHECK(cudaStreamSynchronize(stream));
    nvtxRangePop();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("rank %d iteration %d: %.3f ms\n", o.rank, it, ms);
  }
  std::fflush(stdout);
  CUDA_CHECK(cudaFree(a));
  CUDA_CHECK(cudaFree(b));
  CUDA_CHECK(cudaFree(c));
  CUDA_CHECK(cudaFree(grads));
  CUBLAS_CHECK(cublasDestroy(cublas));
  NCCL_CHECK(ncclCommDestroy(comm));
  CUDA_CHECK(cudaStreamDestroy(stream));
  return 0;
}

// Re-executes this program once per rank and waits for all; 0 when every rank exited 0.
int launch(const Options& o, const char* self) {
  char dir[] = "/tmp/nccl_gemm_sample.XXXXXX";
  SAMPLE_CHECK(mkdtemp(dir) != nullptr, "mkdtemp", std::strerror(errno));
  const std::string id_file = std::string(dir) + "/nccl_id";
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  std::vector<pid_t> children;
  for (int r = 0; r < o.world; ++r) {
    const std::string rank = std::to_string(r), world = std::to_string(o.world);
    mpsim::common::ChildSpec spec;
    spec.program = "/proc/self/exe";
    spec.argv = {self, "--rank", rank, "--world", world};
    spec.argv.insert(spec.argv.end(), {"--iterations", std::to_string(o.iterations), "--gemms",
                                       std::to_string(o.gemms), "--size", std::to_string(o.size),
                                       "--id-file", id_file});
    spec.set = {{"RANK", rank}, {"LOCAL_RANK", rank}, {"WORLD_SIZE", world}};
    spec.exec_failure = "nccl_gemm_sample: exec: ";
    try {
      children.push_back(mpsim::common::spawn_child(mpsim::common::ChildCommand(spec)));
    } catch (const std::exception& e) {
      SAMPLE_CHECK(false, "fork", e.what());
    }
  }
  int failures = 0;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  unlink(id_file.c_str());
  rmdir(dir);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  return o.rank < 0 ? launch(o, argv[0]) : run_rank(o);
}
