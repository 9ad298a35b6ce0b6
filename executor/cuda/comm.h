// NCCL communicators of one rank: the world (bootstrapped from one ncclUniqueId that the
// launcher's rendezvous hands out) and, split from it with ncclCommSplit, the TP, DP and PP
// groups and the tied-embedding group (first and last pipeline stage). A group of one GPU has no
// communicator and its collectives are no-ops. Every call is NCCL_CHECK'ed (throws ExecutorError).
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdint>

#include "executor/core/rank_layout.h"

namespace mpsim::executor {

class Communicator {
 public:
  Communicator() = default;
  explicit Communicator(ncclComm_t comm, int size, int rank)
      : comm_(comm), size_(size), rank_(rank) {}
  Communicator(Communicator&& other) noexcept { *this = std::move(other); }
  Communicator& operator=(Communicator&& other) noexcept;
  ~Communicator();

  int size() const { return size_; }
  int rank() const { return rank_; }
  bool active() const { return comm_ != nullptr && size_ > 1; }
  ncclComm_t get() const { return comm_; }

  // In place. No-ops on a group of one.
  void all_reduce(void* data, int64_t count, ncclDataType_t type, ncclRedOp_t op,
                  cudaStream_t stream) const;
  // out[count * size] gathers in[count] of every rank in rank order (in may be out + rank * count).
  void all_gather(const void* in, void* out, int64_t count, ncclDataType_t type,
                  cudaStream_t stream) const;
  // out[count] = sum over ranks of in[rank * count .. ] (in-place when out = in + rank * count).
  void reduce_scatter(const void* in, void* out, int64_t count, ncclDataType_t type,
                      cudaStream_t stream) const;
  void send(const void* data, int64_t count, ncclDataType_t type, int peer,
            cudaStream_t stream) const;
  void recv(void* data, int64_t count, ncclDataType_t type, int peer, cudaStream_t stream) const;

 private:
  ncclComm_t comm_ = nullptr;
  int size_ = 1, rank_ = 0;
};

struct Communicators {
  Communicator world, tp, dp, pp, embedding;
};

// Collective over the world: every rank calls it with the same id.
Communicators make_communicators(const RankLayout& layout, const ncclUniqueId& id);

}  // namespace mpsim::executor
