// Memory as the GPU sees it: the tensors the memory model counts (model state and activations)
// plus what a training process holds besides them, against what the driver lets it allocate.
//
//   device bytes = tensors · (1 + fragmentation) + CUDA context + library workspace
//                  + NCCL communicators · bytes per communicator
//   usable bytes = the profile's usable memory (the driver's total) · (1 − headroom)
//
// The overheads are the profile's MemoryOverheads (defaults measured on the project's H200:
// simulator/spec/hardware.h). NCCL communicators: one per parallel group of more than one rank
// that a rank uses for collectives or transfers: TP, DP, PP (the pipeline's sends), and on the
// first and last stage, with PP and tied embeddings, the embedding group (Megatron-LM's
// word-embedding all-reduce between them). Peers' buffers are not counted (the default was measured
// with one rank). All functions are pure; none throws.
#pragma once

#include <cstdint>

#include "simulator/spec/hardware.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::memory {

// What a rank holds besides its tensors, in bytes.
struct RuntimeMemory {
  double cuda_context = 0;
  double library_workspace = 0;
  double nccl = 0;
  double total() const { return cuda_context + library_workspace + nccl; }
};

// NCCL communicators a rank of pipeline stage `stage` holds (see above).
int64_t nccl_communicators(const spec::ParallelConfig& config, bool tied_embeddings, int64_t stage);

RuntimeMemory runtime_memory(const spec::Hardware& hardware, const spec::ParallelConfig& config,
                             bool tied_embeddings, int64_t stage);

// The caching allocator's reserve above `tensor_bytes` of live tensors.
double fragmentation_bytes(const spec::Hardware& hardware, double tensor_bytes);

// tensors + fragmentation + runtime memory.
double device_bytes(const spec::Hardware& hardware, const spec::ParallelConfig& config,
                    bool tied_embeddings, int64_t stage, double tensor_bytes);

// What a rank may use: usable memory (the HBM capacity where unset) less `headroom`, a fraction
// in [0, 1) kept free.
double usable_bytes(const spec::Hardware& hardware, double headroom);

}  // namespace mpsim::memory
