// The linear layers of one pipeline rank under Transformer Engine's FP8 recipe (delayed scaling,
// hybrid format), as the stage (gpt_model.h) runs them with `mpsim train --fp8`:
//   forward   the input cast to E4M3 with its scale, the GEMM operand and (saved for the weight
//             gradient) its transpose; y = x w^T against the FP8 weight (fast accumulation)
//   backward  the output gradient cast to E5M2 and transposed; dx = dy (w^T)^T against the
//             weight's FP8 transpose; dw += dy^T (x^T)^T into the fp32 main gradient
//   weights   cast once per iteration, before the first forward (the FP8 copy and its transpose,
//             model state as the simulator counts it)
//   recipe    per tensor (each linear's input, weight and output gradient) an amax history of
//             kAmaxHistory steps; once per iteration the step's amaxes are reduced (max) over the
//             stage's TP and DP groups and the scales become max_value / max(history)
// Attention, norms, the embedding and the LM head stay BF16, as do the master weights. Every
// buffer comes from the stage's DeviceMemory (weights: kWeights; operands: kWorkspace; saved
// transposes: the caller's category).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "executor/cuda/comm.h"
#include "executor/cuda/device_memory.h"
#include "executor/cuda/fp8_gemm.h"

namespace mpsim::executor {

class Fp8Linears {
 public:
  static constexpr int64_t kAmaxHistory = 1024;  // Transformer Engine's default length
  // One linear layer: its bf16 weight [out, in] and the index of its first recipe tensor.
  struct Linear {
    const __nv_bfloat16* weight = nullptr;
    int64_t in = 0, out = 0;
    DeviceBuffer w8, w8t;  // FP8 copy [out, in] and transpose [in, out]
  };

  // `linears` layers' weights (in order); their recipe tensors are 3 i, 3 i + 1, 3 i + 2.
  Fp8Linears(DeviceMemory& memory, cudaStream_t stream, Fp8Gemm& gemm, int64_t linears);

  // Index of linear (layer slot, which) as registered; which = 0 qkv, 1 proj, 2 fc1, 3 fc2.
  void set_weight(int64_t linear, const __nv_bfloat16* weight, int64_t in, int64_t out);

  // The weights' FP8 copies, with the weight scales of the last step (call before the first
  // forward of each iteration); the first call sets the weight scales from the weights first.
  void cast_weights();

  // x [tokens, in] (bf16) to the GEMM operand `x8` [tokens, in] and the saved transpose `x8t`
  // [in, tokens] (both allocated here; x8t in `keep`).
  void cast_input(int64_t linear, const __nv_bfloat16* x, int64_t tokens, DeviceBuffer& x8,
                  DeviceBuffer& x8t, MemoryCategory keep);
  // y [tokens, out] = x8 w^T (bf16 out).
  void forward(int64_t linear, const DeviceBuffer& x8, int64_t tokens, __nv_bfloat16* y);
  // dy [tokens, out] (bf16) to dy8 [tokens, out] and dy8t [out, tokens] (E5M2, workspace).
  void cast_gradient(int64_t linear, const __nv_bfloat16* dy, int64_t tokens, DeviceBuffer& dy8,
                     DeviceBuffer& dy8t);
  // dx [tokens, in] = dy8 (w^T)^T (bf16 out).
  void dgrad(int64_t linear, const DeviceBuffer& dy8, int64_t tokens, __nv_bfloat16* dx);
  // dw [out, in] += dy8t (x8t)^T (fp32).
  void wgrad(int64_t linear, const DeviceBuffer& dy8t, const DeviceBuffer& x8t, int64_t tokens,
             float* dw);

  // The step's amax reduction over `groups` (max) and the scales' update; once per iteration.
  void update_scales(const std::vector<const Communicator*>& groups);

  int64_t tensors() const { return 3 * static_cast<int64_t>(linears_.size()); }

 private:
  enum Role { kInput = 0, kWeight = 1, kGradient = 2 };
  void quantize_weights();  // each weight's FP8 copy and transpose at its current scale
  float* scale(int64_t linear, Role role) const;
  const float* scale_inv(int64_t linear, Role role) const;
  float* amax(int64_t linear, Role role) const;

  DeviceMemory& memory_;
  cudaStream_t stream_;
  Fp8Gemm& gemm_;
  std::vector<Linear> linears_;
  DeviceBuffer amax_, history_, scale_, scale_inv_, max_value_;
  int64_t step_ = 0;
};

}  // namespace mpsim::executor
