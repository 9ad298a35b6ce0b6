// AdamW (flat layout, 4 elements per thread when aligned); see adamw.h.
#include "executor/cuda/adamw.h"
#include "executor/cuda/kernel_helpers.cuh"

namespace mpsim::executor::kernels {
using namespace detail;  // the shared helpers of kernel_helpers.cuh

namespace {

struct AdamParams {
  float lr, beta1, beta2, eps, weight_decay, grad_scale;
  float step_size;     // lr / (1 - beta1^t)
  float inv_sqrt_bc2;  // 1 / sqrt(1 - beta2^t)
};

// torch.optim.AdamW's update: decay with the old weight, then the Adam step.
__device__ __forceinline__ void adamw_one(float& w, float g, float& m, float& v, bool decay,
                                          const AdamParams& a) {
  g *= a.grad_scale;
  m = a.beta1 * m + (1.f - a.beta1) * g;
  v = a.beta2 * v + (1.f - a.beta2) * g * g;
  const float denom = sqrtf(v) * a.inv_sqrt_bc2 + a.eps;
  if (decay) w *= 1.f - a.lr * a.weight_decay;
  w -= a.step_size * m / denom;
}

__device__ __forceinline__ bool decays(const uint32_t* bits, int64_t k) {
  return bits == nullptr || ((bits[k >> 5] >> (k & 31)) & 1u) != 0;
}

__global__ void adamw_kernel(float* master, const float* grad, float* m, float* v, bf16* model,
                             const uint32_t* bits, int64_t first_bit, int64_t n, AdamParams a,
                             bool vec) {
  int64_t done = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = global_thread(); i < n4; i += grid_threads()) {
      float4 w = reinterpret_cast<float4*>(master)[i];
      const float4 g = reinterpret_cast<const float4*>(grad)[i];
      float4 mm = reinterpret_cast<float4*>(m)[i];
      float4 vv = reinterpret_cast<float4*>(v)[i];
      const int64_t k = first_bit + 4 * i;
      adamw_one(w.x, g.x, mm.x, vv.x, decays(bits, k), a);
      adamw_one(w.y, g.y, mm.y, vv.y, decays(bits, k + 1), a);
      adamw_one(w.z, g.z, mm.z, vv.z, decays(bits, k + 2), a);
      adamw_one(w.w, g.w, mm.w, vv.w, decays(bits, k + 3), a);
      reinterpret_cast<float4*>(master)[i] = w;
      reinterpret_cast<float4*>(m)[i] = mm;
      reinterpret_cast<float4*>(v)[i] = vv;
      if (model) {
        __nv_bfloat162 h[2] = {__floats2bfloat162_rn(w.x, w.y), __floats2bfloat162_rn(w.z, w.w)};
        reinterpret_cast<uint2*>(model)[i] = *reinterpret_cast<const uint2*>(h);
      }
    }
    done = n4 * 4;
  }
  for (int64_t i = done + global_thread(); i < n; i += grid_threads()) {
    float w = master[i], mm = m[i], vv = v[i];
    adamw_one(w, grad[i], mm, vv, decays(bits, first_bit + i), a);
    master[i] = w;
    m[i] = mm;
    v[i] = vv;
    if (model) model[i] = __float2bfloat16(w);
  }
}

}  // namespace

void adamw_step(float* master, const float* grad, float* m, float* v, bf16* model,
                const uint32_t* decay_bits, int64_t first_bit, int64_t n, float lr, float beta1,
                float beta2, float eps, float weight_decay, int64_t step, float grad_scale,
                cudaStream_t stream) {
  if (n <= 0) return;
  const auto t = static_cast<float>(std::max<int64_t>(step, 1));
  AdamParams a{};
  a.lr = lr;
  a.beta1 = beta1;
  a.beta2 = beta2;
  a.eps = eps;
  a.weight_decay = weight_decay;
  a.grad_scale = grad_scale;
  a.step_size = lr / (1.f - std::pow(beta1, t));
  a.inv_sqrt_bc2 = 1.f / std::sqrt(1.f - std::pow(beta2, t));
  const bool vec = all_aligned16(master, grad, m, v) && reinterpret_cast<uintptr_t>(model) % 8 == 0;
  adamw_kernel<<<flat_grid(ceil_div(n, 4)), kThreads, 0, stream>>>(
      master, grad, m, v, model, decay_bits, first_bit, n, a, vec);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpsim::executor::kernels
