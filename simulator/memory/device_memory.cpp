#include "simulator/memory/device_memory.h"

namespace mpsim::memory {

int64_t nccl_communicators(const spec::ParallelConfig& c, bool tied_embeddings, int64_t stage) {
  const int64_t pp = c.pipeline_parallel();
  const bool embedding_group = pp > 1 && tied_embeddings && (stage == 0 || stage == pp - 1);
  return (c.tensor_parallel() > 1 ? 1 : 0) + (c.data_parallel() > 1 ? 1 : 0) + (pp > 1 ? 1 : 0) +
         (c.context_parallel() > 1 ? 1 : 0) + (embedding_group ? 1 : 0);
}

RuntimeMemory runtime_memory(const spec::Hardware& hw, const spec::ParallelConfig& config,
                             bool tied_embeddings, int64_t stage) {
  RuntimeMemory m;
  m.cuda_context = hw.cuda_context_bytes;
  m.library_workspace = hw.library_workspace_bytes;
  m.nccl = static_cast<double>(nccl_communicators(config, tied_embeddings, stage)) *
           hw.nccl_communicator_bytes;
  return m;
}

double fragmentation_bytes(const spec::Hardware& hw, double tensor_bytes) {
  return hw.allocator_fragmentation * tensor_bytes;
}

double device_bytes(const spec::Hardware& hw, const spec::ParallelConfig& config,
                    bool tied_embeddings, int64_t stage, double tensor_bytes) {
  return tensor_bytes + fragmentation_bytes(hw, tensor_bytes) +
         runtime_memory(hw, config, tied_embeddings, stage).total();
}

double usable_bytes(const spec::Hardware& hw, double headroom) {
  // A profile built in code may leave usable memory unset: the HBM then.
  const double usable = hw.usable_memory_bytes > 0 ? hw.usable_memory_bytes : hw.hbm_capacity_bytes;
  return usable * (1 - headroom);
}

}  // namespace mpsim::memory
