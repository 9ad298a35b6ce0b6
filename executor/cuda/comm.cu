// NCCL groups of one rank; see comm.h.
#include <utility>

#include "executor/cuda/comm.h"
#include "executor/cuda/cuda_check.h"

namespace mpsim::executor {
namespace {

size_t n(int64_t count) { return static_cast<size_t>(count); }

size_t type_size(ncclDataType_t type) {
  switch (type) {
    case ncclFloat64:
    case ncclInt64:
    case ncclUint64:
      return 8;
    case ncclFloat32:
    case ncclInt32:
    case ncclUint32:
      return 4;
    case ncclFloat16:
    case ncclBfloat16:
      return 2;
    default:
      return 1;
  }
}

// Splits `world` with `color` (NCCL_SPLIT_NOCOLOR: not a member); every rank must call it.
Communicator split(const Communicator& world, int color, int key, int size) {
  ncclComm_t comm = nullptr;
  NCCL_CHECK(ncclCommSplit(world.get(), color, key, &comm, nullptr));
  if (comm == nullptr) return Communicator();
  int rank = 0;
  NCCL_CHECK(ncclCommUserRank(comm, &rank));
  return Communicator(comm, size, rank);
}

}  // namespace

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    comm_ = std::exchange(other.comm_, nullptr);
    size_ = other.size_;
    rank_ = other.rank_;
  }
  return *this;
}

Communicator::~Communicator() {
  if (comm_ != nullptr) ncclCommDestroy(comm_);
}

void Communicator::all_reduce(void* data, int64_t count, ncclDataType_t type, ncclRedOp_t op,
                              cudaStream_t stream) const {
  if (!active()) return;
  NCCL_CHECK(ncclAllReduce(data, data, n(count), type, op, comm_, stream));
}

void Communicator::all_gather(const void* in, void* out, int64_t count, ncclDataType_t type,
                              cudaStream_t stream) const {
  if (!active()) {
    if (in != out)
      CUDA_CHECK(
          cudaMemcpyAsync(out, in, n(count) * type_size(type), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  NCCL_CHECK(ncclAllGather(in, out, n(count), type, comm_, stream));
}

void Communicator::reduce_scatter(const void* in, void* out, int64_t count, ncclDataType_t type,
                                  cudaStream_t stream) const {
  if (!active()) {
    if (in != out)
      CUDA_CHECK(
          cudaMemcpyAsync(out, in, n(count) * type_size(type), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  NCCL_CHECK(ncclReduceScatter(in, out, n(count), type, ncclSum, comm_, stream));
}

void Communicator::send(const void* data, int64_t count, ncclDataType_t type, int peer,
                        cudaStream_t stream) const {
  NCCL_CHECK(ncclSend(data, n(count), type, peer, comm_, stream));
}

void Communicator::recv(void* data, int64_t count, ncclDataType_t type, int peer,
                        cudaStream_t stream) const {
  NCCL_CHECK(ncclRecv(data, n(count), type, peer, comm_, stream));
}

Communicators make_communicators(const RankLayout& l, const ncclUniqueId& id) {
  Communicators c;
  ncclComm_t world = nullptr;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  NCCL_CHECK(ncclCommInitRankConfig(&world, l.world, id, l.rank, &config));
  c.world = Communicator(world, l.world, l.rank);
  if (l.world == 1) return c;
  c.tp = split(c.world, l.pp_rank * l.dp + l.dp_rank, l.tp_rank, l.tp);
  c.dp = split(c.world, l.pp_rank * l.tp + l.tp_rank, l.dp_rank, l.dp);
  c.pp = split(c.world, l.dp_rank * l.tp + l.tp_rank, l.pp_rank, l.pp);
  const bool embedding = !l.embedding_group.empty() && (l.pp_rank == 0 || l.pp_rank == l.pp - 1);
  c.embedding = split(c.world, embedding ? l.dp_rank * l.tp + l.tp_rank : NCCL_SPLIT_NOCOLOR,
                      l.pp_rank, embedding ? 2 : 1);
  return c;
}

}  // namespace mpsim::executor
