// Stream-ordered allocation with accounting by category; see device_memory.h.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

#include "executor/cuda/cuda_check.h"
#include "executor/cuda/device_memory.h"

namespace mpsim::executor {

std::string_view memory_category_name(MemoryCategory category) {
  switch (category) {
    case MemoryCategory::kWeights:
      return "weights";
    case MemoryCategory::kGradients:
      return "gradients";
    case MemoryCategory::kOptimizer:
      return "optimizer";
    case MemoryCategory::kActivations:
      return "activations";
    case MemoryCategory::kWorkspace:
      return "workspace";
  }
  return "?";
}

DeviceMemory::DeviceMemory() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool_, device));
  uint64_t keep = std::numeric_limits<uint64_t>::max();
  CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep));
}

void* DeviceMemory::allocate(MemoryCategory category, int64_t bytes, cudaStream_t stream) {
  void* pointer = nullptr;
  const cudaError_t status = cudaMallocAsync(&pointer, static_cast<size_t>(bytes), stream);
  if (status != cudaSuccess) {
    throw ExecutorError("out of GPU memory: allocating " + std::to_string(bytes) + " bytes of " +
                        std::string(memory_category_name(category)) + " with " +
                        std::to_string(usage_.live_total) + " bytes live (" +
                        cudaGetErrorString(status) + ")");
  }
  const int c = static_cast<int>(category);
  usage_.live[c] += bytes;
  usage_.peak[c] = std::max(usage_.peak[c], usage_.live[c]);
  usage_.live_total += bytes;
  usage_.peak_total = std::max(usage_.peak_total, usage_.live_total);
  return pointer;
}

void DeviceMemory::release(void* pointer, MemoryCategory category, int64_t bytes,
                           cudaStream_t stream) {
  // A destructor path: report, never throw.
  const cudaError_t status = cudaFreeAsync(pointer, stream);
  if (status != cudaSuccess)
    std::fprintf(stderr, "mpsim: cudaFreeAsync failed: %s\n", cudaGetErrorString(status));
  usage_.live[static_cast<int>(category)] -= bytes;
  usage_.live_total -= bytes;
}

void DeviceMemory::reset_peaks() {
  usage_.peak = usage_.live;
  usage_.peak_total = usage_.live_total;
  uint64_t zero = 0;
  CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReservedMemHigh, &zero));
}

int64_t DeviceMemory::pool_reserved_high() const {
  uint64_t value = 0;
  CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemHigh, &value));
  return static_cast<int64_t>(value);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    memory_ = std::exchange(other.memory_, nullptr);
    category_ = other.category_;
    bytes_ = std::exchange(other.bytes_, 0);
    stream_ = other.stream_;
    pointer_ = std::exchange(other.pointer_, nullptr);
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (pointer_ != nullptr) memory_->release(pointer_, category_, bytes_, stream_);
  pointer_ = nullptr;
  bytes_ = 0;
}

}  // namespace mpsim::executor
