// Fused causal attention (flash attention) through cuDNN's graph API: one kernel for the forward
// pass and one for the backward pass, no s x s tensor in memory. The graphs are the ones cuDNN's
// fused-attention engines match (and cudnn-frontend's scaled-dot-product-attention node builds):
//   forward   S = Q K^T * scale, causal mask, P = softmax(S) (saving the log-sum-exp), O = P V
//   backward  dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)) * scale, dQ = dS K,
//             dK = dS^T Q
// with grouped-query attention (query head i uses key/value head i / (heads / kv_heads)). Tensors
// are bf16 views [batch, heads, seq, head_dim] with arbitrary strides (the last dimension
// contiguous), so the trainer's interleaved QKV rows are read in place; the log-sum-exp is fp32
// [batch, heads, seq]. Plans are built once per shape and layout and cached. Failures (no engine
// for the shape, a cuDNN error) throw ExecutorError with cuDNN's own message.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "executor/cuda/device_memory.h"

struct cudnnContext;

namespace mpsim::executor {

// Strides (in elements) of a [batch, heads, seq, head_dim] view; head_dim has stride 1.
struct HeadStrides {
  int64_t batch = 0, head = 0, seq = 0;
  auto key() const { return std::tuple(batch, head, seq); }
};

struct AttentionShape {
  int64_t batch = 0, heads = 0, kv_heads = 0, seq = 0, head_dim = 0;
  HeadStrides q, k, v, o;  // o: the output's (and the output gradient's) layout
  auto key() const {
    return std::tuple(batch, heads, kv_heads, seq, head_dim, q.key(), k.key(), v.key(), o.key());
  }
};

class FlashAttention {
 public:
  FlashAttention(DeviceMemory& memory, cudaStream_t stream);
  ~FlashAttention();
  FlashAttention(const FlashAttention&) = delete;
  FlashAttention& operator=(const FlashAttention&) = delete;

  // o = softmax(causal(q k^T / sqrt(head_dim))) v; lse[b, h, s] = log sum_j exp(score_ij).
  void forward(const AttentionShape& shape, const __nv_bfloat16* q, const __nv_bfloat16* k,
               const __nv_bfloat16* v, __nv_bfloat16* o, float* lse);
  // Gradients of the forward's inputs from the output gradient `dout` (laid out as o). dq, dk
  // and dv are laid out as q, k and v and overwritten.
  void backward(const AttentionShape& shape, const __nv_bfloat16* q, const __nv_bfloat16* k,
                const __nv_bfloat16* v, const __nv_bfloat16* o, const __nv_bfloat16* dout,
                const float* lse, __nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv);

  struct Plan;  // a finalized cuDNN execution plan and the descriptors it was built from

 private:
  const Plan& plan(const AttentionShape& shape, bool backward);

  DeviceMemory& memory_;
  cudaStream_t stream_;
  cudnnContext* handle_ = nullptr;
  std::map<std::tuple<bool, decltype(AttentionShape{}.key())>, std::unique_ptr<Plan>> plans_;
};

}  // namespace mpsim::executor
