// The NVTX -> kernel projection, defined once for every analysis that attributes GPU time to NVTX
// ranges (`mpsim stats`, `mpsim calibrate`): a kernel belongs to a range when the API call that
// launched it (same correlation id) started in [range start, range end) on the range's host
// thread. Nested ranges each get the kernel. Kernels whose launch call is missing from the trace
// (CUPTI dropped it) belong to no range. Marks are not ranges and get no kernels. Launching inside
// the range, not running inside it, is what counts: a kernel queued by the range and executed
// after it ends still belongs to it. Pure function of the records; never throws.
#pragma once

#include <cstddef>
#include <vector>

#include "profiler/store/trace_records.h"

namespace mpsim::profiler {

// Whether an NVTX record is a range (push/pop or start/end), not a mark.
bool is_nvtx_range(const NvtxRecord& record);

// For every record of `records.nvtx` (same index), the indices into `records.kernels` of the
// kernels projected onto it, in launch order; empty for marks and for ranges that launched
// nothing.
std::vector<std::vector<std::size_t>> project_kernels_to_ranges(const RecordBatch& records);

}  // namespace mpsim::profiler
