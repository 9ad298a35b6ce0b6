// Chrome-trace export of profiled runs in PyTorch Kineto's layout, which Perfetto,
// chrome://tracing and Holistic Trace Analysis (HTA) read (`mpsim trace run.sqlite -o run.json`).
//
// Layout (written through common::ChromeTraceWriter):
//   GPU work: "X" events on pid = device id (one rank) or rank * 1000 + device id (several
//     ranks merged), tid = stream id; cat "kernel", "gpu_memcpy" or "gpu_memset"; args "device",
//     "stream", "correlation", and "grid", "block", "registers per thread", "shared memory" for
//     kernels, "bytes" for copies. NCCL kernels keep cat "kernel" and get "is_nccl": true.
//   CPU: CUDA API calls as "X" events with cat "cuda_runtime" or "cuda_driver" on pid = the
//     process id, tid = the host thread id; NVTX ranges as cat "user_annotation" on their thread;
//     NVTX marks as instant events.
//   Flows: one launch -> GPU activity arrow per correlated pair (the writer's "s"/"f" pair, name
//     "ac2g", binding point "e"); id = correlation id, or (rank << 32) | correlation id when
//     several ranks are merged, so ids stay unique in the file.
//   Timestamps: microseconds relative to the earliest record of all ranks (stated in the file's
//     "base_time_ns").
//   Top level: "distributedInfo" {"backend":"nccl","rank":R,"world_size":W} (R of the first
//     rank), "deviceProperties" (Kineto's keys, one entry per device id) and "schemaVersion".
//
// Failure: throws std::runtime_error from the writer when the file cannot be written; `path` then
// keeps whatever it held before. An empty `ranks` writes a trace with no events.
#pragma once

#include <string>
#include <vector>

#include "profiler/store/trace_store.h"

namespace mpsim::profiler {

void export_chrome_trace(const std::vector<RankTrace>& ranks, const std::string& path);

}  // namespace mpsim::profiler
