// Conversion of CUPTI activity records into the profiler's plain records (trace_records.h).
//
// Each convert_* function is pure: it reads one CUPTI struct and returns one record, copying
// every string (CUPTI owns its strings only until the buffer is released). Kernel names are
// demangled with abi::__cxa_demangle; a name that does not demangle (a C name) is kept as is.
//
// ActivityConverter dispatches a record by its kind into a RecordBatch and keeps the one piece of
// state that spans records and buffers: NVTX ranges, which CUPTI reports as a MARKER start record
// (with the name), an optional MARKER_DATA record (payload, color, category) and a MARKER end
// record, all sharing one id. A range becomes one NvtxRecord when its end arrives; a mark
// (instantaneous marker) is emitted at once. Kinds it does not know are counted and skipped.
// Nothing here calls CUPTI or throws on odd input.
#pragma once

#include <cupti_activity.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "profiler/store/trace_records.h"

namespace mpsim::profiler::cupti {

// The newest kernel record of CUDA 13's CUPTI; CONCURRENT_KERNEL activities use it.
using KernelActivity = CUpti_ActivityKernel10;
using MemcpyActivity = CUpti_ActivityMemcpy6;
using MemsetActivity = CUpti_ActivityMemset4;
using MarkerActivity = CUpti_ActivityMarker2;
using MarkerDataActivity = CUpti_ActivityMarkerData2;
using OverheadActivity = CUpti_ActivityOverhead3;
using SyncActivity = CUpti_ActivitySynchronization2;
using DeviceActivity = CUpti_ActivityDevice5;

// Nsight Systems' NVTX event types.
inline constexpr int32_t kNvtxMark = 34;
inline constexpr int32_t kNvtxPushPopRange = 59;
inline constexpr int32_t kNvtxStartEndRange = 60;

// "_Z..." -> "void foo<int>(int)"; anything that does not demangle is returned unchanged.
std::string demangle(const char* name);

KernelRecord convert_kernel(const KernelActivity& k);
MemcpyRecord convert_memcpy(const MemcpyActivity& m);
MemsetRecord convert_memset(const MemsetActivity& m);
// `name` is the API function's name as cuptiGetCallbackName gives it ("cudaLaunchKernel").
ApiRecord convert_api(const CUpti_ActivityAPI& a, bool driver, std::string name);
SyncRecord convert_sync(const SyncActivity& s);
OverheadRecord convert_overhead(const OverheadActivity& o);
GpuInfo convert_device(const DeviceActivity& d);

// Names a runtime (driver = false) or driver API callback id.
using ApiNamer = std::function<std::string(bool driver, uint32_t cbid)>;
// Decodes an NVTX extended payload (MARKER_DATA with CUPTI_METRIC_VALUE_KIND_NVTX_EXTENDED_PAYLOAD:
// the CUPTI domain id and the address of the nvtxPayloadData_t CUPTI allocated) into a message
// size in bytes, if its schema has one (NCCL's collectives do), and releases CUPTI's copy.
using PayloadDecoder =
    std::function<std::optional<int64_t>(uint32_t cupti_domain_id, uint64_t payload_address)>;

class ActivityConverter {
 public:
  explicit ActivityConverter(ApiNamer namer, PayloadDecoder decoder = {});

  // Appends what `record` holds to `batch`; returns false for a kind it does not convert.
  bool add(const CUpti_Activity& record, RecordBatch& batch);

  size_t open_ranges() const { return open_.size(); }
  int64_t skipped_records() const { return skipped_; }

 private:
  void add_marker(const MarkerActivity& m, RecordBatch& batch);
  void add_marker_data(const MarkerDataActivity& d, RecordBatch& batch);
  void apply_marker_data(const MarkerDataActivity& d, NvtxRecord& r) const;

  // A range whose start arrived; `start_thread` tells push/pop (same thread at the end) from
  // start/end ranges.
  struct OpenRange {
    NvtxRecord record;
    uint64_t start_thread = 0;
  };

  ApiNamer namer_;
  PayloadDecoder decoder_;
  std::unordered_map<uint32_t, OpenRange> open_;
  std::unordered_map<uint32_t, MarkerDataActivity> pending_data_;  // data seen before its start
  int64_t skipped_ = 0;
};

}  // namespace mpsim::profiler::cupti
