// Records of one profiled process, in plain C++ (no CUDA or CUPTI types): what the CUPTI
// injection library (profiler/cupti) produces from activity buffers and what the store writes.
// Times are nanoseconds on CUPTI's timestamp clock (cuptiGetTimestamp), which all processes of one
// host share; the ProcessInfo row carries what is needed to align hosts (merge_ranks()).
// Names follow Nsight Systems' export columns where the concept matches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mpsim::profiler {

struct KernelRecord {
  int64_t start = 0, end = 0;
  uint32_t device_id = 0, context_id = 0, stream_id = 0, correlation_id = 0;
  std::string mangled_name;    // as the driver reports it
  std::string demangled_name;  // demangled; equal to mangled_name for C names
  int32_t grid_x = 0, grid_y = 0, grid_z = 0;
  int32_t block_x = 0, block_y = 0, block_z = 0;
  int32_t registers_per_thread = 0;
  int32_t static_shared_bytes = 0, dynamic_shared_bytes = 0;
};

// Copy kinds as CUpti_ActivityMemcpyKind numbers them (1 = HtoD, 2 = DtoH, 8 = DtoD, 10 = PtoP,
// ...).
struct MemcpyRecord {
  int64_t start = 0, end = 0;
  uint32_t device_id = 0, context_id = 0, stream_id = 0, correlation_id = 0;
  int64_t bytes = 0;
  int32_t copy_kind = 0, src_kind = 0, dst_kind = 0;
};

struct MemsetRecord {
  int64_t start = 0, end = 0;
  uint32_t device_id = 0, context_id = 0, stream_id = 0, correlation_id = 0;
  int64_t bytes = 0;
  int32_t value = 0;
};

// A CUDA runtime or driver API call on a host thread; correlation_id links a launch to its kernel.
struct ApiRecord {
  int64_t start = 0, end = 0;
  uint64_t thread_id = 0;
  uint32_t correlation_id = 0;
  std::string name;     // e.g. "cudaLaunchKernel"
  bool driver = false;  // driver API (cu*) rather than runtime API (cuda*)
  int32_t return_value = 0;
};

// Synchronization as CUpti_ActivitySynchronizationType numbers it (1 event sync, 2 stream wait
// event, 3 stream sync, 4 context sync).
struct SyncRecord {
  int64_t start = 0, end = 0;
  uint32_t context_id = 0, stream_id = 0, correlation_id = 0;
  uint64_t thread_id = 0;
  int32_t sync_type = 0;
};

// NVTX: push/pop and start/end ranges (end >= start) and marks (end = -1), with domain and
// payload. event_type follows Nsight Systems: 34 mark, 59 push/pop range, 60 start/end range.
struct NvtxRecord {
  int64_t start = 0, end = -1;
  int32_t event_type = 0;
  uint64_t thread_id = 0;
  uint64_t range_id = 0;
  std::string domain;  // "" for the default domain
  std::string text;
  int32_t category = 0;
  uint32_t color = 0;
  bool has_int_payload = false, has_double_payload = false;
  int64_t int_payload = 0;
  double double_payload = 0;
};

struct GpuInfo {
  uint32_t device_id = 0;
  std::string name, uuid, bus_location;
  int64_t total_memory_bytes = 0;
  int32_t sm_count = 0, compute_major = 0, compute_minor = 0;
};

// One profiled process. clock_offset_ns: host wall clock (CLOCK_REALTIME) minus CUPTI timestamp,
// sampled together at start, so that ranks on different hosts can be put on one clock.
struct ProcessInfo {
  int32_t rank = 0, local_rank = 0, world_size = 1;
  int64_t pid = 0;
  std::string hostname, command, rank_source;  // rank_source: "RANK", "SLURM_PROCID", ..., "pid"
  int64_t start_ns = 0, end_ns = 0;            // CUPTI clock
  int64_t clock_offset_ns = 0;
};

// The profiler's own cost: time spent in its buffer callbacks and records CUPTI dropped.
struct OverheadRecord {
  int64_t start = 0, end = 0;
  uint64_t thread_id = 0;
};

// What one flush writes, in one transaction.
struct RecordBatch {
  std::vector<KernelRecord> kernels;
  std::vector<MemcpyRecord> memcpys;
  std::vector<MemsetRecord> memsets;
  std::vector<ApiRecord> api_calls;
  std::vector<SyncRecord> syncs;
  std::vector<NvtxRecord> nvtx;
  std::vector<GpuInfo> gpus;
  std::vector<OverheadRecord> overhead;
  int64_t dropped_records = 0;
  bool empty() const {
    return kernels.empty() && memcpys.empty() && memsets.empty() && api_calls.empty() &&
           syncs.empty() && nvtx.empty() && gpus.empty() && overhead.empty() &&
           dropped_records == 0;
  }
};

// NCCL kernels are communication: their names start with "ncclDevKernel_" or "ncclKernel_".
bool is_nccl_kernel(const std::string& name);

// "YYYY-MM-DD", the UTC date of a wall-clock time in nanoseconds since the Unix epoch.
std::string utc_date(int64_t unix_ns);

// The UTC date a process started being profiled (its CUPTI start on the host's wall clock).
std::string recording_date(const ProcessInfo& process);

// "2 x NVIDIA H200": the GPUs' names with their counts, in first-seen order; "unknown GPU" when
// there is none.
std::string gpu_summary(const std::vector<GpuInfo>& gpus);

}  // namespace mpsim::profiler
