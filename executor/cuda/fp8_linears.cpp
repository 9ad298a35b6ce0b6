// See fp8_linears.h.
#include "executor/cuda/fp8_linears.h"

#include <string>

#include "executor/cuda/cuda_check.h"
#include "executor/cuda/fp8.h"

namespace mpsim::executor {
namespace {

using kernels::Fp8Format;
using bf16 = __nv_bfloat16;

Fp8Format format_of(int role) { return role == 2 ? Fp8Format::kE5M2 : Fp8Format::kE4M3; }

}  // namespace

Fp8Linears::Fp8Linears(DeviceMemory& memory, cudaStream_t stream, Fp8Gemm& gemm, int64_t linears)
    : memory_(memory), stream_(stream), gemm_(gemm), linears_(static_cast<size_t>(linears)) {
  const int64_t n = tensors();
  auto floats = [&](int64_t count) {
    return DeviceBuffer(memory, MemoryCategory::kOptimizer, count * 4, stream);
  };
  amax_ = floats(n);
  history_ = floats(n * kAmaxHistory);
  scale_ = floats(n);
  scale_inv_ = floats(n);
  max_value_ = floats(n);
  std::vector<float> ones(static_cast<size_t>(n), 1.0f), max_values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    max_values[static_cast<size_t>(i)] = kernels::fp8_max(format_of(static_cast<int>(i % 3)));
  CUDA_CHECK(cudaMemsetAsync(amax_.get(), 0, n * 4, stream));
  CUDA_CHECK(cudaMemsetAsync(history_.get(), 0, n * kAmaxHistory * 4, stream));
  CUDA_CHECK(cudaMemcpyAsync(scale_.get(), ones.data(), n * 4, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaMemcpyAsync(scale_inv_.get(), ones.data(), n * 4, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(
      cudaMemcpyAsync(max_value_.get(), max_values.data(), n * 4, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));  // the host vectors go
}

float* Fp8Linears::scale(int64_t linear, Role role) const {
  return scale_.as<float>() + 3 * linear + role;
}
const float* Fp8Linears::scale_inv(int64_t linear, Role role) const {
  return scale_inv_.as<float>() + 3 * linear + role;
}
float* Fp8Linears::amax(int64_t linear, Role role) const {
  return amax_.as<float>() + 3 * linear + role;
}

void Fp8Linears::set_weight(int64_t linear, const bf16* weight, int64_t in, int64_t out) {
  if (in % 16 != 0 || out % 16 != 0) {
    throw ExecutorError("FP8 linear " + std::to_string(out) + " x " + std::to_string(in) +
                        ": sizes must be multiples of 16 for FP8 GEMMs");
  }
  Linear& l = linears_.at(static_cast<size_t>(linear));
  l.weight = weight;
  l.in = in;
  l.out = out;
  l.w8 = DeviceBuffer(memory_, MemoryCategory::kWeights, in * out, stream_);
  l.w8t = DeviceBuffer(memory_, MemoryCategory::kWeights, in * out, stream_);
}

void Fp8Linears::cast_weights() {
  if (step_ == 0) {
    // The first weight scales from the initial weights themselves (a first step of the recipe
    // that only the weights' amaxes enter; the others keep scale 1), not from scale 1.
    quantize_weights();
    update_scales({});
  }
  quantize_weights();
}

void Fp8Linears::quantize_weights() {
  for (size_t i = 0; i < linears_.size(); ++i) {
    const Linear& l = linears_[i];
    if (l.weight == nullptr) continue;
    const auto n = static_cast<int64_t>(i);
    kernels::quantize_fp8(l.weight, l.out, l.in, Fp8Format::kE4M3, scale(n, kWeight), l.w8.get(),
                          l.w8t.get(), amax(n, kWeight), stream_);
  }
}

void Fp8Linears::cast_input(int64_t linear, const bf16* x, int64_t tokens, DeviceBuffer& x8,
                            DeviceBuffer& x8t, MemoryCategory keep) {
  const Linear& l = linears_.at(static_cast<size_t>(linear));
  x8 = DeviceBuffer(memory_, MemoryCategory::kWorkspace, tokens * l.in, stream_);
  x8t = DeviceBuffer(memory_, keep, tokens * l.in, stream_);
  kernels::quantize_fp8(x, tokens, l.in, Fp8Format::kE4M3, scale(linear, kInput), x8.get(),
                        x8t.get(), amax(linear, kInput), stream_);
}

void Fp8Linears::forward(int64_t linear, const DeviceBuffer& x8, int64_t tokens, bf16* y) {
  const Linear& l = linears_.at(static_cast<size_t>(linear));
  gemm_.gemm_tn(tokens, l.out, l.in, {x8.get(), l.in, Fp8Format::kE4M3, scale_inv(linear, kInput)},
                {l.w8.get(), l.in, Fp8Format::kE4M3, scale_inv(linear, kWeight)}, y, l.out, false,
                0.0f, true);
}

void Fp8Linears::cast_gradient(int64_t linear, const bf16* dy, int64_t tokens, DeviceBuffer& dy8,
                               DeviceBuffer& dy8t) {
  const Linear& l = linears_.at(static_cast<size_t>(linear));
  dy8 = DeviceBuffer(memory_, MemoryCategory::kWorkspace, tokens * l.out, stream_);
  dy8t = DeviceBuffer(memory_, MemoryCategory::kWorkspace, tokens * l.out, stream_);
  kernels::quantize_fp8(dy, tokens, l.out, Fp8Format::kE5M2, scale(linear, kGradient), dy8.get(),
                        dy8t.get(), amax(linear, kGradient), stream_);
}

void Fp8Linears::dgrad(int64_t linear, const DeviceBuffer& dy8, int64_t tokens, bf16* dx) {
  const Linear& l = linears_.at(static_cast<size_t>(linear));
  gemm_.gemm_tn(tokens, l.in, l.out,
                {dy8.get(), l.out, Fp8Format::kE5M2, scale_inv(linear, kGradient)},
                {l.w8t.get(), l.out, Fp8Format::kE4M3, scale_inv(linear, kWeight)}, dx, l.in, false,
                0.0f, false);
}

void Fp8Linears::wgrad(int64_t linear, const DeviceBuffer& dy8t, const DeviceBuffer& x8t,
                       int64_t tokens, float* dw) {
  const Linear& l = linears_.at(static_cast<size_t>(linear));
  gemm_.gemm_tn(l.out, l.in, tokens,
                {dy8t.get(), tokens, Fp8Format::kE5M2, scale_inv(linear, kGradient)},
                {x8t.get(), tokens, Fp8Format::kE4M3, scale_inv(linear, kInput)}, dw, l.in, true,
                1.0f, false);
}

void Fp8Linears::update_scales(const std::vector<const Communicator*>& groups) {
  for (const Communicator* g : groups)
    if (g != nullptr) g->all_reduce(amax_.get(), tensors(), ncclFloat32, ncclMax, stream_);
  kernels::update_fp8_scales(amax_.as<float>(), history_.as<float>(), scale_.as<float>(),
                             scale_inv_.as<float>(), max_value_.as<float>(), tensors(),
                             kAmaxHistory, step_++, 0.0f, stream_);
}

}  // namespace mpsim::executor
