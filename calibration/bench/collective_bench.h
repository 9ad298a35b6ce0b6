// The collectives family's shared pieces: the four NCCL operations, their byte rounding and their
// issue over a group, used by the grid (collective_bench.cu), the point list (points_bench.cu) and
// the interference (interference_bench.cu).
//
// Failure: CUDA and NCCL failures throw executor::ExecutorError.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "calibration/bench/harness.h"

namespace mpsim::calibration::bench {

enum class Collective { kAllReduce, kAllGather, kReduceScatter, kSend };

std::string_view collective_name(Collective c);

// The requested bytes rounded down to whole bf16 elements, equal shares over the group.
int64_t collective_bytes(int64_t requested, int group);

// One collective over the group, from this thread, in one NCCL group call. buffers[r] is rank r's
// buffer (on GPU r) of at least `bytes`; lanes[r] its stream.
void issue_collective(Collective c, const NcclComms& comms, const std::vector<DeviceArray>& buffers,
                      const std::vector<Lane>& lanes, int64_t bytes);

// One zeroed buffer of `bytes` per lane's GPU (the lanes synchronised after).
std::vector<DeviceArray> zeroed_buffers(const std::vector<Lane>& lanes, int64_t bytes);

// The largest power of two not above n (n >= 1).
int largest_power_of_two(int n);

}  // namespace mpsim::calibration::bench
