// Summaries of a profiled run (`mpsim stats run.sqlite`), computed from TraceReader records.
// Metrics are defined here once:
//   kernel summary, by demangled name: time % (of all kernel time on the rank), total, instances,
//     mean, median, min, max (ns).
//   NVTX range summary, by range text: instances, total and mean wall time of the ranges, and the
//     GPU time of the kernels launched inside each range (the NVTX -> kernel projection of
//     nvtx_projection.h: a kernel belongs to a range when the API call that launched it, matched
//     by correlation id, started inside the range on the same thread), and the sum of the ranges'
//     integer payloads (NCCL's ranges carry their message size in bytes).
//   communication vs computation, per rank and device: time covered by NCCL kernels, by other
//     kernels, by both at once (overlap), and GPU idle time (the span from the first kernel start
//     to the last kernel end not covered by any kernel, memcpy or memset).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "profiler/store/trace_store.h"

namespace mpsim::profiler {

struct KernelSummaryRow {
  std::string name;
  double time_percent = 0;
  int64_t total_ns = 0, instances = 0, min_ns = 0, max_ns = 0;
  double mean_ns = 0, median_ns = 0;
};

struct NvtxSummaryRow {
  std::string text;
  std::string domain;
  int64_t instances = 0;
  int64_t total_ns = 0;  // wall time of the ranges
  double mean_ns = 0;
  int64_t gpu_time_ns = 0;  // kernels launched inside the ranges
  int64_t kernels = 0;
  int64_t payload_sum = 0;  // integer payloads added up: bytes for NCCL's collectives
};

struct DeviceActivity {
  int32_t rank = 0;
  uint32_t device_id = 0;
  int64_t span_ns = 0;           // first kernel start to last kernel end
  int64_t compute_ns = 0;        // covered by non-NCCL kernels
  int64_t communication_ns = 0;  // covered by NCCL kernels
  int64_t overlap_ns = 0;        // covered by both
  int64_t idle_ns = 0;           // covered by nothing (kernels, memcpy, memset)
};

struct TraceStats {
  std::vector<KernelSummaryRow> kernels;  // by total time, descending
  std::vector<NvtxSummaryRow> nvtx;       // by total time, descending
  std::vector<DeviceActivity> devices;
};

TraceStats compute_stats(const std::vector<RankTrace>& ranks);

std::string format_stats(const TraceStats& stats);  // aligned text tables

}  // namespace mpsim::profiler
