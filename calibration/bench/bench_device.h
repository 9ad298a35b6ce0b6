// The device resources calibration_bench measures with: buffers, streams (a compute and a
// communication stream per GPU), the executor's Gemm on GPU 0, NCCL communicators, events, and
// deterministic data to fill buffers with.
//
// Failure: CUDA and NCCL failures throw executor::ExecutorError (the executor's CUDA_CHECK /
// NCCL_CHECK: the call, file:line and the library's message); destructors never throw (a failed
// release is printed), and while an exception unwinds they do not wait on the GPU.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "executor/cuda/cuda_check.h"
#include "executor/cuda/device_memory.h"
#include "executor/cuda/flash_attention.h"
#include "executor/cuda/fp8_gemm.h"
#include "executor/cuda/gemm.h"

namespace mpsim::calibration::bench {

using executor::bf16;
using executor::DeviceMemory;
using executor::ExecutorError;
using executor::Gemm;

// One cudaMalloc'ed buffer on one GPU, freed (cudaFree, which synchronises) when destroyed.
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(int device, int64_t bytes) : device_(device), bytes_(bytes) {
    CUDA_CHECK(cudaSetDevice(device));
    if (bytes <= 0) return;
    const cudaError_t status = cudaMalloc(&pointer_, static_cast<size_t>(bytes));
    if (status != cudaSuccess) {
      throw ExecutorError("allocating " + std::to_string(bytes) + " bytes on GPU " +
                          std::to_string(device) + ": " + cudaGetErrorString(status));
    }
  }
  DeviceArray(DeviceArray&& other) noexcept { *this = std::move(other); }
  DeviceArray& operator=(DeviceArray&& other) noexcept {
    if (this != &other) {
      release();
      device_ = other.device_;
      bytes_ = std::exchange(other.bytes_, 0);
      pointer_ = std::exchange(other.pointer_, nullptr);
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { release(); }

  template <typename T>
  T* as() const {
    return static_cast<T*>(pointer_);
  }
  int64_t bytes() const { return bytes_; }

 private:
  void release() noexcept {
    if (pointer_ == nullptr) return;
    cudaSetDevice(device_);
    const cudaError_t status = cudaFree(pointer_);
    if (status != cudaSuccess)
      std::fprintf(stderr, "calibration_bench: cudaFree failed: %s\n", cudaGetErrorString(status));
    pointer_ = nullptr;
  }

  int device_ = 0;
  int64_t bytes_ = 0;
  void* pointer_ = nullptr;
};

// A compute and a communication stream on each of the first `gpus` GPUs.
struct Lane {
  int device = 0;
  cudaStream_t stream = nullptr;
};

class GpuStreams {
 public:
  explicit GpuStreams(int gpus) {
    for (int d = 0; d < gpus; ++d) {
      CUDA_CHECK(cudaSetDevice(d));
      Lane compute{d, nullptr}, comm{d, nullptr};
      CUDA_CHECK(cudaStreamCreateWithFlags(&compute.stream, cudaStreamNonBlocking));
      compute_.push_back(compute);
      CUDA_CHECK(cudaStreamCreateWithFlags(&comm.stream, cudaStreamNonBlocking));
      comm_.push_back(comm);
    }
  }
  GpuStreams(const GpuStreams&) = delete;
  GpuStreams& operator=(const GpuStreams&) = delete;
  ~GpuStreams() {
    const bool failing = std::uncaught_exceptions() > 0;  // then never wait on the GPU
    for (const std::vector<Lane>* lanes : {&compute_, &comm_}) {
      for (const Lane& l : *lanes) {
        cudaSetDevice(l.device);
        if (!failing) cudaStreamSynchronize(l.stream);
        cudaStreamDestroy(l.stream);
      }
    }
  }
  int size() const { return static_cast<int>(compute_.size()); }
  Lane compute(int d) const { return compute_.at(d); }
  std::vector<Lane> comm_lanes(int gpus) const { return {comm_.begin(), comm_.begin() + gpus}; }

 private:
  std::vector<Lane> compute_, comm_;
};

// The executor's Gemm on one GPU's compute stream (its 32 MiB cuBLAS workspace comes from the
// executor's DeviceMemory).
class GemmContext {
 public:
  explicit GemmContext(Lane lane) : lane_(lane) {
    CUDA_CHECK(cudaSetDevice(lane.device));
    memory_ = std::make_unique<DeviceMemory>();
    gemm_ = std::make_unique<Gemm>(*memory_, lane.stream);
  }
  // The executor's FP8 GEMMs (cuBLASLt), created at first use.
  executor::Fp8Gemm& fp8_gemm() {
    if (!fp8_gemm_) fp8_gemm_ = std::make_unique<executor::Fp8Gemm>(*memory_, lane_.stream);
    return *fp8_gemm_;
  }
  // The executor's fused attention (cuDNN), created at first use.
  executor::FlashAttention& flash() {
    if (!flash_) flash_ = std::make_unique<executor::FlashAttention>(*memory_, lane_.stream);
    return *flash_;
  }
  GemmContext(const GemmContext&) = delete;
  GemmContext& operator=(const GemmContext&) = delete;
  ~GemmContext() {
    cudaSetDevice(lane_.device);
    flash_.reset();
    fp8_gemm_.reset();
    gemm_.reset();  // releases the workspace on the stream, which must still exist
  }
  Gemm& gemm() { return *gemm_; }
  Lane lane() const { return lane_; }
  // Makes the context's GPU current: cuBLAS handles and kernels need it.
  void activate() const { CUDA_CHECK(cudaSetDevice(lane_.device)); }

 private:
  Lane lane_;
  std::unique_ptr<DeviceMemory> memory_;
  std::unique_ptr<Gemm> gemm_;
  std::unique_ptr<executor::FlashAttention> flash_;
  std::unique_ptr<executor::Fp8Gemm> fp8_gemm_;
};

// NCCL communicators over the first `g` GPUs, one per GPU, from one ncclCommInitAll.
class NcclComms {
 public:
  explicit NcclComms(int g) : comms_(static_cast<size_t>(g), nullptr) {
    std::vector<int> devices(static_cast<size_t>(g));
    std::iota(devices.begin(), devices.end(), 0);
    NCCL_CHECK(ncclCommInitAll(comms_.data(), g, devices.data()));
  }
  NcclComms(const NcclComms&) = delete;
  NcclComms& operator=(const NcclComms&) = delete;
  // Unwinding from a failure aborts instead: a destroy could wait on work that never completes.
  ~NcclComms() {
    const bool failing = std::uncaught_exceptions() > 0;
    for (ncclComm_t c : comms_) {
      if (c == nullptr) continue;
      const ncclResult_t status = failing ? ncclCommAbort(c) : ncclCommDestroy(c);
      if (status != ncclSuccess)
        std::fprintf(stderr, "calibration_bench: releasing an NCCL communicator failed: %s\n",
                     ncclGetErrorString(status));
    }
  }
  int size() const { return static_cast<int>(comms_.size()); }
  ncclComm_t operator[](int rank) const { return comms_.at(static_cast<size_t>(rank)); }

 private:
  std::vector<ncclComm_t> comms_;
};

// An event without timing, for ordering streams.
class SyncEvent {
 public:
  explicit SyncEvent(int device) : device_(device) {
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  }
  SyncEvent(const SyncEvent&) = delete;
  SyncEvent& operator=(const SyncEvent&) = delete;
  ~SyncEvent() {
    cudaSetDevice(device_);
    cudaEventDestroy(event_);
  }
  cudaEvent_t get() const { return event_; }

 private:
  int device_;
  cudaEvent_t event_ = nullptr;
};

// Uniform values in [lo, hi) from a hash of (seed, index) over the whole buffer: the same on every
// run (T: float or bf16).
template <typename T>
void fill_uniform(const DeviceArray& buffer, float lo, float hi, uint64_t seed,
                  cudaStream_t stream);
// Class ids in [0, vocab) from a hash of (seed, index).
void fill_targets(const DeviceArray& buffer, int64_t vocab, uint64_t seed, cudaStream_t stream);
void zero(const DeviceArray& buffer, cudaStream_t stream);
// Whether `bytes` fit in the free memory of `device` (with a margin); prints a note when not.
bool fits(int device, int64_t bytes, const std::string& what);

}  // namespace mpsim::calibration::bench
