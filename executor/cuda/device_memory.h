// GPU memory of one rank, allocated stream-ordered from CUDA's memory pool (cudaMallocAsync, a
// caching allocator: freed blocks are reused without returning to the driver) and accounted by
// category, so the trainer can report what its peak consists of:
//   weights      bf16 model parameters (the copy GEMMs read)
//   gradients    fp32 main gradients (accumulated over micro-batches, reduced over DP)
//   optimizer    fp32 master weights and AdamW moments (sharded over DP with --dist-opt)
//   activations  tensors saved by a forward pass for its backward pass
//   workspace    temporaries that live within one op or one pipeline step (GEMM outputs
//                consumed at once, attention scores, logits, received pipeline tensors, cuBLAS)
// Accounting happens when work is enqueued (host order), which is the order the compute stream
// runs it in; peaks are therefore the schedule's peaks. Allocation failures throw ExecutorError.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mpsim::executor {

enum class MemoryCategory { kWeights, kGradients, kOptimizer, kActivations, kWorkspace };
inline constexpr int kMemoryCategories = 5;
std::string_view memory_category_name(MemoryCategory category);

struct MemoryUsage {
  std::array<int64_t, kMemoryCategories> live{}, peak{};  // bytes
  int64_t live_total = 0, peak_total = 0;
};

class DeviceMemory {
 public:
  DeviceMemory();  // on the current device; keeps freed memory cached in the pool
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* allocate(MemoryCategory category, int64_t bytes, cudaStream_t stream);
  void release(void* pointer, MemoryCategory category, int64_t bytes, cudaStream_t stream);

  const MemoryUsage& usage() const { return usage_; }
  void reset_peaks();
  // Bytes the pool has reserved from the driver at its high-water mark (what nvidia-smi sees,
  // less the CUDA context and library handles).
  int64_t pool_reserved_high() const;

 private:
  cudaMemPool_t pool_ = nullptr;
  MemoryUsage usage_;
};

// One allocation, owned: released (stream-ordered, on the stream it was allocated on unless
// told otherwise) when destroyed.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceMemory& memory, MemoryCategory category, int64_t bytes, cudaStream_t stream)
      : memory_(&memory),
        category_(category),
        bytes_(bytes),
        stream_(stream),
        pointer_(bytes > 0 ? memory.allocate(category, bytes, stream) : nullptr) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }

  void reset();
  template <typename T>
  T* as() const {
    return static_cast<T*>(pointer_);
  }
  void* get() const { return pointer_; }
  int64_t bytes() const { return bytes_; }
  explicit operator bool() const { return pointer_ != nullptr; }

 private:
  DeviceMemory* memory_ = nullptr;
  MemoryCategory category_ = MemoryCategory::kWorkspace;
  int64_t bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  void* pointer_ = nullptr;
};

}  // namespace mpsim::executor
