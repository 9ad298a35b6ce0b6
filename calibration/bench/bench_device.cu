// calibration_bench's device resources; see bench_device.h.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <type_traits>

#include "calibration/bench/bench_device.h"
#include "calibration/bench/bench_options.h"

namespace mpsim::calibration::bench {

namespace {

// A measurement needing more than this fraction of the free GPU memory is skipped.
constexpr double kFreeMemoryFraction = 0.9;

// Uniform values in [lo, hi) from a hash of (seed, index): the same on every run.
template <typename T>
__global__ void fill_uniform_kernel(T* out, int64_t n, uint64_t seed, float lo, float hi) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    uint64_t z = seed + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float v = lo + (hi - lo) * (static_cast<float>(z >> 40) * (1.0f / 16777216.0f));
    if constexpr (std::is_same_v<T, float>) {
      out[i] = v;
    } else {
      out[i] = __float2bfloat16(v);
    }
  }
}

}  // namespace

template <typename T>
void fill_uniform(const DeviceArray& buffer, float lo, float hi, uint64_t seed,
                  cudaStream_t stream) {
  const int64_t n = buffer.bytes() / static_cast<int64_t>(sizeof(T));
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 16384);
  fill_uniform_kernel<T>
      <<<static_cast<unsigned>(blocks), 256, 0, stream>>>(buffer.as<T>(), n, seed, lo, hi);
  CUDA_CHECK_LAUNCH();
}

template void fill_uniform<float>(const DeviceArray&, float, float, uint64_t, cudaStream_t);
template void fill_uniform<bf16>(const DeviceArray&, float, float, uint64_t, cudaStream_t);

namespace {

// Class ids in [0, vocab) from a hash of (seed, index).
__global__ void fill_targets_kernel(int32_t* out, int64_t n, int64_t vocab, uint64_t seed) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    uint64_t z = seed + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    out[i] = static_cast<int32_t>((z ^ (z >> 31)) % static_cast<uint64_t>(vocab));
  }
}

}  // namespace

void fill_targets(const DeviceArray& buffer, int64_t vocab, uint64_t seed, cudaStream_t stream) {
  const int64_t n = buffer.bytes() / static_cast<int64_t>(sizeof(int32_t));
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 16384);
  fill_targets_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(buffer.as<int32_t>(), n,
                                                                         vocab, seed);
  CUDA_CHECK_LAUNCH();
}

void zero(const DeviceArray& buffer, cudaStream_t stream) {
  if (buffer.bytes() > 0)
    CUDA_CHECK(cudaMemsetAsync(buffer.as<void>(), 0, static_cast<size_t>(buffer.bytes()), stream));
}

bool fits(int device, int64_t bytes, const std::string& what) {
  CUDA_CHECK(cudaSetDevice(device));
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  if (static_cast<double>(bytes) <= kFreeMemoryFraction * static_cast<double>(free)) return true;
  std::fprintf(stderr, "calibration_bench: skipped %s: needs %.2f GiB, %.2f GiB free on GPU %d\n",
               what.c_str(), static_cast<double>(bytes) / kGiB, static_cast<double>(free) / kGiB,
               device);
  return false;
}

}  // namespace mpsim::calibration::bench
