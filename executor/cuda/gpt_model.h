// The transformer layers of one pipeline rank (GPT family, and Llama family: RMSNorm, SwiGLU,
// rotary positions, grouped-query attention, no biases), forward and backward, as Megatron-LM runs
// them: column- then row-parallel linears with TP all-reduces (or, with sequence parallelism,
// all-gathers before and reduce-scatters after), a vocabulary-parallel embedding and cross-entropy,
// the attention core as cuDNN's fused flash attention (or, unfused, as cuBLAS batched GEMMs around
// a fused causal softmax), fused norm / bias-GeLU / residual kernels, and the data-gradient TP
// reduction overlapped with the weight-gradient GEMM on a second stream. Each op runs inside an
// NVTX range named as the simulator names it (range_names.h).
//
// Activations saved for the backward pass are kept per (micro-batch, chunk) until that step's
// backward; what is kept depends on recomputation: none keeps every tensor a backward needs,
// selective drops the attention probabilities (flash: the log-sum-exp), recomputed from QKV as
// `rcp/.../attn.core` (`attn.flash`), full
// keeps only each layer's input and re-runs the layer forward (`rcp/...`) before its backward.
//
// All work is enqueued on the compute stream (TP overlap on the TP stream, joined back with
// events); nothing here synchronises the host. CUDA/cuBLAS/NCCL failures throw ExecutorError.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "executor/core/gpt_params.h"
#include "executor/core/range_names.h"
#include "executor/core/rank_layout.h"
#include "executor/cuda/comm.h"
#include "executor/cuda/device_memory.h"
#include "executor/cuda/flash_attention.h"
#include "executor/cuda/fp8_linears.h"
#include "executor/cuda/gemm.h"
#include "executor/cuda/param_store.h"
#include "simulator/graph/op_label.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::executor {

struct StageResources {
  const GptCatalogue* catalogue = nullptr;
  const RankLayout* layout = nullptr;
  const spec::ParallelConfig* config = nullptr;
  ParamStore* params = nullptr;
  DeviceMemory* memory = nullptr;
  Gemm* gemm = nullptr;
  FlashAttention* flash = nullptr;  // set for the fused attention core (config attention flash)
  Fp8Gemm* fp8_gemm = nullptr;      // set for FP8 models (Transformer Engine's recipe)
  const Communicators* comm = nullptr;
  cudaStream_t compute = nullptr;
  cudaStream_t tp_stream = nullptr;
  bool nvtx = true;
};

class GptStage {
 public:
  explicit GptStage(const StageResources& resources);
  ~GptStage();
  GptStage(const GptStage&) = delete;
  GptStage& operator=(const GptStage&) = delete;

  // Elements of the tensor passed between pipeline stages ([tokens / (SP ? tp : 1), hidden]).
  int64_t boundary_elements() const { return tokens_local_ * hidden_; }

  // Forward of (micro_batch, chunk). `input` is the previous stage's output (empty on the first
  // virtual stage, which embeds `tokens` [seq * mbs], sequence-major). Returns this stage's output,
  // or an empty buffer on the last virtual stage, which adds the summed token losses of the
  // micro-batch to `loss_sum` and keeps what its backward needs. `grad_scale` multiplies the loss
  // gradient (1 / tokens of the global batch).
  DeviceBuffer forward(int micro_batch, int chunk, DeviceBuffer input, const int32_t* tokens,
                       const int32_t* targets, float* loss_sum, float grad_scale);

  // Backward of (micro_batch, chunk): `grad` is the next stage's input gradient (empty on the
  // last virtual stage). Returns the gradient of this stage's input (empty on the first virtual
  // stage). `unit_done(u)` is called, in order, for each parameter unit whose gradient becomes
  // final in this step when `last_micro_batch` is set.
  DeviceBuffer backward(int micro_batch, int chunk, DeviceBuffer grad, bool last_micro_batch,
                        const std::function<void(int unit)>& unit_done);

  // Micro-batches whose activations are still held (0 after a complete iteration).
  size_t held() const { return saved_.size(); }

  // FP8 models: the parameters changed (the FP8 weight copies are made again before the next
  // forward), and the recipe's once-per-iteration amax reduction over TP and DP and scale update
  // (`comm/dp/fp8.amax`). No-ops for BF16 models.
  void parameters_updated() { fp8_weights_cast_ = false; }
  void fp8_step();

 private:
  struct LayerWeights;
  struct LayerActivations;
  struct HeadActivations;
  struct ChunkActivations;

  DeviceBuffer buffer(MemoryCategory category, int64_t bytes);
  DeviceBuffer embed(int micro_batch, const int32_t* tokens);
  void embed_backward(int micro_batch, const int32_t* tokens, DeviceBuffer grad);
  DeviceBuffer layer_forward(int64_t layer, RangePass pass, int micro_batch, LayerActivations& a);
  DeviceBuffer layer_backward(int64_t layer, int micro_batch, LayerActivations& a,
                              DeviceBuffer grad);
  // The two halves of a layer, forward and backward (layer_forward and layer_backward call them).
  void attention_block_forward(int64_t layer, RangePass pass, int micro_batch, MemoryCategory keep,
                               LayerActivations& a);
  DeviceBuffer mlp_block_forward(int64_t layer, RangePass pass, int micro_batch,
                                 MemoryCategory keep, LayerActivations& a);
  void mlp_block_backward(int64_t layer, int micro_batch, LayerActivations& a, DeviceBuffer& grad);
  void attention_block_backward(int64_t layer, int micro_batch, LayerActivations& a,
                                DeviceBuffer& grad);
  void attention_probs(RangePass pass, const __nv_bfloat16* qkv, DeviceBuffer& probs,
                       MemoryCategory category);
  void attention_context(const __nv_bfloat16* probs, const __nv_bfloat16* qkv, __nv_bfloat16* ctx);
  void attention_backward(const LayerActivations& a, const __nv_bfloat16* probs,
                          const __nv_bfloat16* dctx, __nv_bfloat16* dqkv);
  // The fused core on the interleaved QKV rows (query heads packed first with grouped-query
  // attention, whose queries are not evenly strided there).
  AttentionShape flash_shape(bool packed_queries) const;
  void flash_forward(const LayerActivations& a, __nv_bfloat16* ctx, float* lse);
  void flash_backward(int micro_batch, int layer, const LayerActivations& a, const float* lse,
                      const __nv_bfloat16* dctx, __nv_bfloat16* dqkv);
  void head_forward(int micro_batch, HeadActivations& h, const int32_t* targets, float* loss_sum);
  DeviceBuffer head_backward(int micro_batch, HeadActivations& h, float grad_scale);
  // The range labels of one linear layer's backward (simulator/graph/op_label.h).
  struct LinearLabels {
    graph::OpLabel dgrad, wgrad;
    graph::OpLabel gather;  // SP: the gather of the incoming gradient (row-parallel) or the
                            // re-gather of the input (column-parallel)
    graph::OpLabel all_reduce = graph::OpLabel::kNone;      // column-parallel: TP reduction of
    graph::OpLabel reduce_scatter = graph::OpLabel::kNone;  // the input gradient (SP: RS)
    graph::OpLabel cast = graph::OpLabel::kNone;            // FP8: the output gradient's cast
  };
  // Backward of a row-parallel linear (attn.proj, mlp.fc2) from the gradient of the block's
  // output (this rank's sequence shard under SP, gathered first as `<block>.allgather`): the
  // weight gradient is accumulated, the input gradient [T, in] returned.
  // FP8 models: `fp8` names the linear (fp8_linear) and `input8t` its saved transposed FP8 input.
  DeviceBuffer row_parallel_backward(int micro_batch, int layer, const LinearLabels& labels,
                                     const __nv_bfloat16* grad, const __nv_bfloat16* weight,
                                     float* weight_grad, const __nv_bfloat16* input, int64_t in,
                                     int64_t fp8 = -1, const DeviceBuffer* input8t = nullptr);
  // Backward of a column-parallel linear (attn.qkv, mlp.fc1) whose input is a norm's output
  // (this rank's sequence shard under SP, re-gathered as `<block>.input.allgather`): the weight
  // (and, when given, bias) gradient accumulated while the input gradient is reduced over TP
  // (`<block>.allreduce`, or `.reducescatter` under SP); returns the reduced input gradient.
  DeviceBuffer column_parallel_backward(int micro_batch, int layer, const LinearLabels& labels,
                                        const __nv_bfloat16* grad, const __nv_bfloat16* weight,
                                        float* weight_grad, float* bias_grad,
                                        const __nv_bfloat16* norm_out, int64_t out,
                                        int64_t fp8 = -1, const DeviceBuffer* input8t = nullptr);
  // FP8 models: the index of layer `layer`'s linear `which` (0 qkv, 1 proj, 2 fc1, 3 fc2) in
  // fp8_, or -1 for BF16 models.
  int64_t fp8_linear(int64_t layer, int which) const;
  // A linear's three GEMMs, in FP8 where the model is (forward: on the cast input `x8`, which it
  // releases; backward: linear `fp8` >= 0, on the cast gradient and the saved transposed input
  // `x8t`), else in bf16 on x, dy and w through cuBLAS (gemm.h's shapes: [tokens, in] -> out).
  void linear_forward(int64_t layer, int which, DeviceBuffer& x8, const __nv_bfloat16* x,
                      const __nv_bfloat16* w, __nv_bfloat16* y, int64_t in, int64_t out);
  void linear_dgrad(int64_t fp8, const DeviceBuffer& dy8, const __nv_bfloat16* dy,
                    const __nv_bfloat16* w, __nv_bfloat16* dx, int64_t in, int64_t out);
  void linear_wgrad(int64_t fp8, const DeviceBuffer& dy8t, const DeviceBuffer* x8t,
                    const __nv_bfloat16* dy, const __nv_bfloat16* x, float* dw, int64_t in,
                    int64_t out);

  // Data gradient of a column-parallel linear reduced over TP (all-reduce, or reduce-scatter
  // under SP) on the TP stream while `overlap` (the weight gradient) runs.
  DeviceBuffer reduce_overlapped(RangePass pass, int micro_batch, int layer, graph::OpLabel label,
                                 DeviceBuffer partial, const std::function<void()>& overlap);
  // Blocking TP ops on the compute stream.
  DeviceBuffer gather_sequence(RangePass pass, int micro_batch, int layer, graph::OpLabel label,
                               const __nv_bfloat16* local,
                               MemoryCategory category = MemoryCategory::kWorkspace);
  DeviceBuffer reduce_sequence(RangePass pass, int micro_batch, int layer, graph::OpLabel label,
                               DeviceBuffer partial,
                               MemoryCategory category = MemoryCategory::kWorkspace);
  void fork_tp();
  void join_tp();

  StageResources r_;
  int64_t tp_ = 1, seq_ = 0, mbs_ = 0, tokens_ = 0, tokens_local_ = 0, hidden_ = 0;
  int64_t heads_local_ = 0, kv_local_ = 0, group_ = 1, head_dim_ = 0, qkv_local_ = 0;
  int64_t ffn_local_ = 0, fc1_local_ = 0;  // fc1's output is 2 x ffn with SwiGLU
  bool swiglu_ = false, rms_ = false, rotary_ = false;
  DeviceBuffer rotary_angles_;  // (cos, sin) per position and pair, rotary models only
  int64_t vocab_ = 0, vocab_local_ = 0, vocab_start_ = 0;
  bool sp_ = false, flash_ = false;
  std::unique_ptr<Fp8Linears> fp8_;   // FP8 models only
  std::vector<int64_t> local_layer_;  // global layer -> index among this rank's layers (or -1)
  bool fp8_weights_cast_ = false;
  spec::Recompute recompute_ = spec::RECOMPUTE_NONE;
  std::vector<LayerWeights> weights_;  // indexed by global layer (only this rank's are set)
  std::map<std::pair<int, int>, ChunkActivations> saved_;
  cudaEvent_t fork_event_ = nullptr, join_event_ = nullptr;
};

}  // namespace mpsim::executor
