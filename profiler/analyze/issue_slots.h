// Issue slots: what a kernel occupies its stream for, defined once for every analysis that turns
// kernel records into op times (`mpsim calibrate`'s tables, `mpsim validate`'s measured op times).
//
//   launch gap   of a kernel: the idle time on its GPU and stream since the previous kernel (of
//                the given set) ended there, capped at kMaxLaunchGapNs; longer idle is a wait
//                (on the host, another stream, a peer), not a launch gap. The first kernel of a
//                stream in the set is charged the mean gap of the others (0 when it is alone).
//   issue slot   the kernel's duration plus its launch gap.
//
// Why: back-to-back dependent kernels on one stream are 1-3 us apart on the project's H100/H200
// machines even with the launch queue full (measured in profiled executor runs, 2026-11-26), and
// a training step pays that gap before each of its thousands of kernels (about 10 % of a 2-GPU
// step). Counting bare kernel time would leave that time to no op.
// Pure function of the records; never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "profiler/store/trace_records.h"

namespace mpsim::profiler {

inline constexpr int64_t kMaxLaunchGapNs = 10000;

// The launch gap of each of `indices`' kernels (into `kernels`), in the order of `indices`.
std::vector<int64_t> launch_gaps(const std::vector<KernelRecord>& kernels,
                                 const std::vector<std::size_t>& indices);

}  // namespace mpsim::profiler
