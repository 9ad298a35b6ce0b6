// The parameters of one rank in flat buffers, and how they are grouped for data parallelism.
//
// Tensors are laid out in the order their gradients become final during the last micro-batch's
// backward pass (the head, the layers from last to first chunk and layer, the embedding, and last
// the tied word embedding when first and last stage share it over PP), in "units" (the head, one
// layer, the embedding, the tied word), each tensor aligned to 64 elements. DP buckets are runs of
// whole units of at least `bucket_params` parameters, taken greedily in that order as the
// simulator does (its `comm/dp/bucket<N>`), padded to a multiple of 64 x DP elements so every DP
// rank owns an equal, aligned shard of each bucket under the distributed optimizer.
//
// Buffers: bf16 weights (what GEMMs read) and fp32 gradients cover the whole layout; fp32 master
// weights and the two AdamW moments cover it too, or with `shard_optimizer` only this DP rank's
// shard of each bucket (concatenated). Weights are initialised deterministically (param_init.h),
// identical whatever the parallel layout. Throws ExecutorError on allocation failure and
// std::invalid_argument for an unknown tensor name.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "executor/core/gpt_params.h"
#include "executor/core/rank_layout.h"
#include "executor/cuda/device_memory.h"
#include "simulator/schedule/pipeline_schedule.h"

namespace mpsim::executor {

struct ParamEntry {
  const ParamSpec* spec = nullptr;
  int64_t offset = 0;  // in the flat layout
  int64_t count = 0;   // elements of this rank's shard of the tensor
  int unit = 0;
  // Counted in the global gradient norm by this rank (each distinct element counted once over
  // TP replicas and tied copies; DP handled by the caller).
  bool norm_owner = false;
};

struct GradUnit {
  int64_t begin = 0, end = 0;  // flat range
  int bucket = 0;
};

struct GradBucket {
  int64_t begin = 0, end = 0;  // flat range, (end - begin) % (64 * dp) == 0
  int last_unit = 0;           // the bucket may be reduced once this unit's gradients are final
  int64_t shard_offset = 0;    // where this rank's shard starts in the sharded optimizer buffers
  int64_t shard_size() const { return end - begin; }  // per rank: divide by dp
};

class ParamStore {
 public:
  ParamStore(const GptCatalogue& catalogue, const RankLayout& layout,
             const schedule::PipelineSchedule& schedule, int64_t bucket_params,
             bool shard_optimizer, uint64_t seed, DeviceMemory& memory, cudaStream_t stream);

  __nv_bfloat16* weight(const std::string& name) const;
  float* grad(const std::string& name) const;
  const ParamEntry& entry(const std::string& name) const;
  bool has(const std::string& name) const { return index_.count(name) > 0; }

  int layer_unit(int64_t layer) const { return layer_units_.at(layer); }
  int head_unit() const { return head_unit_; }            // -1 when this rank has no head
  int embedding_unit() const { return embedding_unit_; }  // -1 when it has no embedding
  int word_unit() const { return word_unit_; }            // -1 unless tied over PP

  const std::vector<ParamEntry>& entries() const { return entries_; }
  const std::vector<GradUnit>& units() const { return units_; }
  const std::vector<GradBucket>& buckets() const { return buckets_; }
  int64_t size() const { return size_; }              // flat elements
  int64_t parameters() const { return parameters_; }  // real elements (no padding)
  bool sharded() const { return sharded_; }
  int dp() const { return dp_; }
  int dp_rank() const { return dp_rank_; }

  __nv_bfloat16* model() const { return model_.as<__nv_bfloat16>(); }
  float* grads() const { return grads_.as<float>(); }
  float* master() const { return master_.as<float>(); }
  float* adam_m() const { return adam_m_.as<float>(); }
  float* adam_v() const { return adam_v_.as<float>(); }
  // One bit per flat element: set where the parameter takes weight decay (2-D weights).
  const uint32_t* decay_bits() const { return decay_bits_.as<uint32_t>(); }

 private:
  void add_unit(const std::vector<const ParamSpec*>& specs, const RankLayout& layout);
  // The constructor's steps, in order. The units of this rank, in the order their gradients
  // become final (entries, index and unit numbers).
  void add_units(const GptCatalogue& catalogue, const RankLayout& layout,
                 const schedule::PipelineSchedule& schedule);
  // The DP buckets over the units, with the padding that aligns them moved into the layout; sets
  // size_.
  void form_buckets(int64_t bucket_params);
  // The device buffers, by memory category.
  void allocate(DeviceMemory& memory, cudaStream_t stream);
  // Zero gradients and moments, initialised master and bf16 weights, the weight-decay mask;
  // returns with `stream` synchronised.
  void initialise(uint64_t seed, DeviceMemory& memory, cudaStream_t stream);
  // Elements of each optimizer buffer: this rank's shards, or the whole layout.
  int64_t optimizer_elements() const;

  std::vector<ParamEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<GradUnit> units_;
  std::vector<GradBucket> buckets_;
  std::unordered_map<int64_t, int> layer_units_;
  int head_unit_ = -1, embedding_unit_ = -1, word_unit_ = -1;
  int64_t size_ = 0, parameters_ = 0;
  bool sharded_ = false;
  int dp_ = 1, dp_rank_ = 0;
  int tp_ = 1, tp_rank_ = 0;
  DeviceBuffer model_, grads_, master_, adam_m_, adam_v_, decay_bits_;
};

}  // namespace mpsim::executor
