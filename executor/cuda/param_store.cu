// Flat parameter layout, DP buckets and initialisation; see param_store.h.
#include <algorithm>
#include <stdexcept>

#include "executor/core/param_init.h"
#include "executor/cuda/cuda_check.h"
#include "executor/cuda/kernels.h"
#include "executor/cuda/param_store.h"

namespace mpsim::executor {
namespace {

constexpr int64_t kAlign = 64;  // elements: 128-byte aligned bf16, 256-byte aligned fp32

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

}  // namespace

void ParamStore::add_unit(const std::vector<const ParamSpec*>& specs, const RankLayout& layout) {
  GradUnit unit;
  unit.begin = size_;
  for (const ParamSpec* spec : specs) {
    ParamEntry e;
    e.spec = spec;
    e.offset = size_;
    e.count = spec->local_size(layout.tp);
    e.unit = static_cast<int>(units_.size());
    e.norm_owner = spec->split != Split::kReplicated || layout.tp_rank == 0;
    index_[spec->name] = entries_.size();
    entries_.push_back(e);
    size_ = round_up(size_ + e.count, kAlign);
    parameters_ += e.count;
  }
  unit.end = size_;
  units_.push_back(unit);
}

ParamStore::ParamStore(const GptCatalogue& catalogue, const RankLayout& layout,
                       const schedule::PipelineSchedule& schedule, int64_t bucket_params,
                       bool shard_optimizer, uint64_t seed, DeviceMemory& memory,
                       cudaStream_t stream)
    : sharded_(shard_optimizer && layout.dp > 1),
      dp_(layout.dp),
      dp_rank_(layout.dp_rank),
      tp_(layout.tp),
      tp_rank_(layout.tp_rank) {
  add_units(catalogue, layout, schedule);
  form_buckets(bucket_params);
  allocate(memory, stream);
  initialise(seed, memory, stream);
}

void ParamStore::add_units(const GptCatalogue& catalogue, const RankLayout& layout,
                           const schedule::PipelineSchedule& schedule) {
  const bool word_over_pp = !layout.embedding_group.empty();
  const ParamSpec* word = &catalogue.embedding[0];
  // Units in the order their gradients become final: the last micro-batch's backward steps.
  for (const schedule::PipelineStep& step : schedule.steps(layout.pp_rank)) {
    if (step.forward || step.micro_batch != schedule.micro_batches() - 1) continue;
    if (layout.last_virtual_stage(step.chunk)) {
      std::vector<const ParamSpec*> specs;
      for (const ParamSpec& p : catalogue.head) specs.push_back(&p);
      head_unit_ = static_cast<int>(units_.size());
      add_unit(specs, layout);
    }
    const int64_t first = layout.first_layer(step.chunk);
    for (int64_t layer = first + layout.layers_per_chunk - 1; layer >= first; --layer) {
      std::vector<const ParamSpec*> specs;
      for (const ParamSpec& p : catalogue.layers[layer]) specs.push_back(&p);
      layer_units_[layer] = static_cast<int>(units_.size());
      add_unit(specs, layout);
    }
    if (layout.first_virtual_stage(step.chunk)) {
      std::vector<const ParamSpec*> specs;
      for (const ParamSpec& p : catalogue.embedding)
        if (&p != word || !word_over_pp) specs.push_back(&p);
      embedding_unit_ = static_cast<int>(units_.size());
      add_unit(specs, layout);
    }
  }
  const bool holds_word = layout.holds_embedding() || (catalogue.dims.tied && layout.holds_head());
  if (word_over_pp && holds_word) {
    word_unit_ = static_cast<int>(units_.size());
    add_unit({word}, layout);
    if (!layout.holds_embedding()) entries_.back().norm_owner = false;  // the first stage counts it
  }
}

void ParamStore::form_buckets(int64_t bucket_params) {
  // Buckets: whole units, greedily, at least bucket_params each.
  int64_t begin = 0, accumulated = 0, shard_offset = 0;
  const int64_t bucket_align = kAlign * dp_;
  for (size_t u = 0; u < units_.size(); ++u) {
    accumulated += units_[u].end - units_[u].begin;
    units_[u].bucket = static_cast<int>(buckets_.size());
    if (accumulated < bucket_params && u + 1 < units_.size()) continue;
    GradBucket b;
    b.begin = begin;
    b.end = round_up(units_[u].end, bucket_align);
    b.last_unit = static_cast<int>(u);
    b.shard_offset = shard_offset;
    shard_offset += (b.end - b.begin) / dp_;
    // Padding joins the bucket: move the layout on.
    const int64_t pad = b.end - units_[u].end;
    if (pad > 0 && u + 1 < units_.size()) {
      for (size_t later = u + 1; later < units_.size(); ++later) {
        units_[later].begin += pad;
        units_[later].end += pad;
      }
      for (ParamEntry& e : entries_)
        if (e.unit > static_cast<int>(u)) e.offset += pad;
    }
    buckets_.push_back(b);
    begin = b.end;
    accumulated = 0;
  }
  size_ = buckets_.empty() ? 0 : buckets_.back().end;
}

int64_t ParamStore::optimizer_elements() const { return sharded_ ? size_ / dp_ : size_; }

void ParamStore::allocate(DeviceMemory& memory, cudaStream_t stream) {
  model_ = DeviceBuffer(memory, MemoryCategory::kWeights, size_ * 2, stream);
  grads_ = DeviceBuffer(memory, MemoryCategory::kGradients, size_ * 4, stream);
  master_ = DeviceBuffer(memory, MemoryCategory::kOptimizer, optimizer_elements() * 4, stream);
  adam_m_ = DeviceBuffer(memory, MemoryCategory::kOptimizer, optimizer_elements() * 4, stream);
  adam_v_ = DeviceBuffer(memory, MemoryCategory::kOptimizer, optimizer_elements() * 4, stream);
  decay_bits_ = DeviceBuffer(memory, MemoryCategory::kOptimizer, (size_ + 31) / 32 * 4, stream);
}

void ParamStore::initialise(uint64_t seed, DeviceMemory& memory, cudaStream_t stream) {
  // With a sharded optimizer the whole tensor set is initialised in a temporary and each rank
  // keeps its shards' master weights; otherwise straight into the master weights.
  DeviceBuffer full;
  if (sharded_) full = DeviceBuffer(memory, MemoryCategory::kWorkspace, size_ * 4, stream);
  float* init = sharded_ ? full.as<float>() : master();
  kernels::fill_fp32(init, 0.0f, size_, stream);
  kernels::fill_fp32(grads(), 0.0f, size_, stream);
  kernels::fill_fp32(adam_m(), 0.0f, optimizer_elements(), stream);
  kernels::fill_fp32(adam_v(), 0.0f, optimizer_elements(), stream);
  std::vector<uint32_t> bits(static_cast<size_t>((size_ + 31) / 32), 0);
  for (const ParamEntry& e : entries_) {
    const ParamSpec& p = *e.spec;
    kernels::init_parameter(init + e.offset, p.local_rows(tp_), p.local_cols(tp_),
                            p.row_offset(tp_, tp_rank_), p.col_offset(tp_, tp_rank_), p.cols, seed,
                            parameter_id(p.name), p.mean, p.std, stream);
    if (!p.decay) continue;
    for (int64_t k = e.offset; k < e.offset + e.count; ++k)
      bits[static_cast<size_t>(k >> 5)] |= 1u << (k & 31);
  }
  kernels::cast_fp32_to_bf16(init, model(), size_, stream);
  if (sharded_) {
    for (const GradBucket& b : buckets_) {
      const int64_t shard = b.shard_size() / dp_;
      CUDA_CHECK(cudaMemcpyAsync(master() + b.shard_offset, init + b.begin + dp_rank_ * shard,
                                 shard * 4, cudaMemcpyDeviceToDevice, stream));
    }
  }
  CUDA_CHECK(cudaMemcpyAsync(decay_bits_.get(), bits.data(), bits.size() * 4,
                             cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));  // `bits` is pageable host memory about to go
}

const ParamEntry& ParamStore::entry(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) throw std::invalid_argument("no parameter '" + name + "' on this rank");
  return entries_[it->second];
}

__nv_bfloat16* ParamStore::weight(const std::string& name) const {
  return model() + entry(name).offset;
}
float* ParamStore::grad(const std::string& name) const { return grads() + entry(name).offset; }

}  // namespace mpsim::executor
