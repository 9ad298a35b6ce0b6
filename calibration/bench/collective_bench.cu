// The collectives family: calib/<allreduce|allgather|reducescatter|send>.nvlink/g=G,bytes=B for
// every power-of-two group G from 2 to the GPUs used and B from --collective-min to
// --collective-max (powers of 4).
//
// G = GPUs in the group (the first G devices, one communicator each from
//   ncclCommInitAll, one process and thread); B = buffer bytes as nccl-tests counts them
//   (allreduce: the buffer, in place; allgather: the gathered output, each rank contributing B/G,
//   in place; reducescatter: the input, each rank receiving B/G, in place; send: the message,
//   ncclSend on GPU 0 and ncclRecv on GPU 1, G = 2). bf16 data. "nvlink": the GPUs of one node.
//   The range holds the kernels of every GPU of the group: per-GPU time is that GPU's kernels.
#include <algorithm>
#include <cstdio>

#include "calibration/bench/collective_bench.h"

namespace mpsim::calibration::bench {

namespace {

void run_collectives(BenchContext& c) {
  const Options& o = c.options;
  const GpuStreams& streams = c.streams;
  Harness& harness = c.harness;
  if (streams.size() < 2) {
    std::fprintf(stderr, "calibration_bench: collectives: skipped (one GPU)\n");
    return;
  }
  const std::vector<int64_t> sizes = powers_of_four(o.collective_min, o.collective_max);
  for (int g = 2; g <= streams.size(); g *= 2) {
    std::fprintf(stderr, "calibration_bench: collectives: group of %d GPUs, %zu sizes\n", g,
                 sizes.size());
    const std::vector<Lane> lanes = streams.comm_lanes(g);
    if (!fits(0, collective_bytes(o.collective_max, g),
              "collectives of " + std::to_string(g) + " GPUs"))
      continue;
    NcclComms comms(g);
    const std::vector<DeviceArray> buffers =
        zeroed_buffers(lanes, collective_bytes(o.collective_max, g));
    std::vector<Collective> ops = {Collective::kAllReduce, Collective::kAllGather,
                                   Collective::kReduceScatter};
    if (g == 2) ops.push_back(Collective::kSend);
    for (const Collective op : ops) {
      for (const int64_t requested : sizes) {
        const int64_t bytes = collective_bytes(requested, g);
        harness.measure(collective_range_name(collective_name(op), g, bytes), lanes,
                        [&] { issue_collective(op, comms, buffers, lanes, bytes); });
      }
    }
  }
}

}  // namespace

const BenchFamily kCollectivesFamily = {"collectives", run_collectives};

std::string_view collective_name(Collective c) {
  switch (c) {
    case Collective::kAllReduce:
      return "allreduce";
    case Collective::kAllGather:
      return "allgather";
    case Collective::kReduceScatter:
      return "reducescatter";
    case Collective::kSend:
      return "send";
  }
  return "?";
}

int64_t collective_bytes(int64_t requested, int group) {
  const int64_t unit = 2 * int64_t{group};
  return std::max(unit, requested / unit * unit);
}

void issue_collective(Collective c, const NcclComms& comms, const std::vector<DeviceArray>& buffers,
                      const std::vector<Lane>& lanes, int64_t bytes) {
  const int g = comms.size();
  const size_t count = static_cast<size_t>(bytes / 2), share = count / static_cast<size_t>(g);
  NCCL_CHECK(ncclGroupStart());
  for (int r = 0; r < g; ++r) {
    bf16* buffer = buffers[static_cast<size_t>(r)].as<bf16>();
    bf16* mine = buffer + static_cast<size_t>(r) * share;
    const cudaStream_t stream = lanes[static_cast<size_t>(r)].stream;
    switch (c) {
      case Collective::kAllReduce:
        NCCL_CHECK(ncclAllReduce(buffer, buffer, count, ncclBfloat16, ncclSum, comms[r], stream));
        break;
      case Collective::kAllGather:
        NCCL_CHECK(ncclAllGather(mine, buffer, share, ncclBfloat16, comms[r], stream));
        break;
      case Collective::kReduceScatter:
        NCCL_CHECK(ncclReduceScatter(buffer, mine, share, ncclBfloat16, ncclSum, comms[r], stream));
        break;
      case Collective::kSend:
        if (r == 0) NCCL_CHECK(ncclSend(buffer, count, ncclBfloat16, 1, comms[r], stream));
        if (r == 1) NCCL_CHECK(ncclRecv(buffer, count, ncclBfloat16, 0, comms[r], stream));
        break;
    }
  }
  NCCL_CHECK(ncclGroupEnd());
}

std::vector<DeviceArray> zeroed_buffers(const std::vector<Lane>& lanes, int64_t bytes) {
  std::vector<DeviceArray> buffers;
  for (const Lane& l : lanes) {
    buffers.emplace_back(l.device, bytes);
    zero(buffers.back(), l.stream);
  }
  synchronize(lanes);
  return buffers;
}

int largest_power_of_two(int n) {
  int p = 1;
  while (2 * p <= n) p *= 2;
  return p;
}

}  // namespace mpsim::calibration::bench
