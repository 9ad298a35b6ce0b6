#include "profiler/cupti/activity_convert.h"

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace mpsim::profiler::cupti {
namespace {

std::string text_or_empty(const char* s) { return s ? std::string(s) : std::string(); }

uint64_t marker_thread(const MarkerActivity& m) {
  return m.objectKind == CUPTI_ACTIVITY_OBJECT_THREAD ? m.objectId.pt.threadId : 0;
}

}  // namespace

std::string demangle(const char* name) {
  if (!name) return {};
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

// The fields every GPU activity shares: when, where, and which API call launched it.
template <typename Activity, typename Record>
void copy_placement(const Activity& a, Record& r) {
  r.start = static_cast<int64_t>(a.start);
  r.end = static_cast<int64_t>(a.end);
  r.device_id = a.deviceId;
  r.context_id = a.contextId;
  r.stream_id = a.streamId;
  r.correlation_id = a.correlationId;
}

KernelRecord convert_kernel(const KernelActivity& k) {
  KernelRecord r;
  copy_placement(k, r);
  r.mangled_name = text_or_empty(k.name);
  r.demangled_name = demangle(k.name);
  r.grid_x = k.gridX, r.grid_y = k.gridY, r.grid_z = k.gridZ;
  r.block_x = k.blockX, r.block_y = k.blockY, r.block_z = k.blockZ;
  r.registers_per_thread = k.registersPerThread;
  r.static_shared_bytes = k.staticSharedMemory;
  r.dynamic_shared_bytes = k.dynamicSharedMemory;
  return r;
}

MemcpyRecord convert_memcpy(const MemcpyActivity& m) {
  MemcpyRecord r;
  copy_placement(m, r);
  r.bytes = static_cast<int64_t>(m.bytes);
  r.copy_kind = m.copyKind;
  r.src_kind = m.srcKind;
  r.dst_kind = m.dstKind;
  return r;
}

MemsetRecord convert_memset(const MemsetActivity& m) {
  MemsetRecord r;
  copy_placement(m, r);
  r.bytes = static_cast<int64_t>(m.bytes);
  r.value = static_cast<int32_t>(m.value);
  return r;
}

ApiRecord convert_api(const CUpti_ActivityAPI& a, bool driver, std::string name) {
  ApiRecord r;
  r.start = static_cast<int64_t>(a.start);
  r.end = static_cast<int64_t>(a.end);
  r.thread_id = a.threadId;
  r.correlation_id = a.correlationId;
  r.name = std::move(name);
  r.driver = driver;
  r.return_value = static_cast<int32_t>(a.returnValue);
  return r;
}

SyncRecord convert_sync(const SyncActivity& s) {
  SyncRecord r;
  r.start = static_cast<int64_t>(s.start);
  r.end = static_cast<int64_t>(s.end);
  r.context_id = s.contextId;
  r.stream_id = s.streamId;
  r.correlation_id = s.correlationId;
  r.sync_type = static_cast<int32_t>(s.type);
  return r;
}

OverheadRecord convert_overhead(const OverheadActivity& o) {
  OverheadRecord r;
  r.start = static_cast<int64_t>(o.start);
  r.end = static_cast<int64_t>(o.end);
  r.thread_id = o.objectKind == CUPTI_ACTIVITY_OBJECT_THREAD ? o.objectId.pt.threadId : 0;
  return r;
}

GpuInfo convert_device(const DeviceActivity& d) {
  GpuInfo g;
  g.device_id = d.id;
  g.name = text_or_empty(d.name);
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {  // "GPU-xxxxxxxx-xxxx-..." as nvidia-smi prints it
    if (i == 0) g.uuid = "GPU-";
    if (i == 4 || i == 6 || i == 8 || i == 10) g.uuid += '-';
    const auto byte = static_cast<unsigned char>(d.uuid.bytes[i]);
    g.uuid += kHex[byte >> 4];
    g.uuid += kHex[byte & 15];
  }
  g.total_memory_bytes = static_cast<int64_t>(d.globalMemorySize);
  g.sm_count = static_cast<int32_t>(d.numMultiprocessors);
  g.compute_major = static_cast<int32_t>(d.computeCapabilityMajor);
  g.compute_minor = static_cast<int32_t>(d.computeCapabilityMinor);
  return g;
}

ActivityConverter::ActivityConverter(ApiNamer namer, PayloadDecoder decoder)
    : namer_(std::move(namer)), decoder_(std::move(decoder)) {}

// Copies payload, color and category from a MARKER_DATA record.
void ActivityConverter::apply_marker_data(const MarkerDataActivity& d, NvtxRecord& r) const {
  switch (d.payloadKind) {
    case CUPTI_METRIC_VALUE_KIND_UINT64:
      r.has_int_payload = true;
      r.int_payload = static_cast<int64_t>(d.payload.metricValueUint64);
      break;
    case CUPTI_METRIC_VALUE_KIND_INT64:
      r.has_int_payload = true;
      r.int_payload = d.payload.metricValueInt64;
      break;
    case CUPTI_METRIC_VALUE_KIND_DOUBLE:
      // DOUBLE is kind 0, which is also what a marker without a payload carries: a 0.0 double
      // is taken as no payload.
      if (d.payload.metricValueDouble != 0.0) {
        r.has_double_payload = true;
        r.double_payload = d.payload.metricValueDouble;
      }
      break;
    case CUPTI_METRIC_VALUE_KIND_NVTX_EXTENDED_PAYLOAD:
      // NCCL's collectives: the message size in bytes, when the schema has one.
      if (decoder_) {
        if (const auto bytes =
                decoder_(d.cuptiDomainId, d.payload.metricValueNvtxExtendedPayload)) {
          r.has_int_payload = true;
          r.int_payload = *bytes;
        }
      }
      break;
    default:
      if (std::getenv("MPSIM_PROFILE_DEBUG")) {
        std::fprintf(stderr, "mpsim profile: marker %u payload kind %d not decoded\n", d.id,
                     static_cast<int>(d.payloadKind));
      }
      break;  // no payload
  }
  if (d.flags & CUPTI_ACTIVITY_FLAG_MARKER_COLOR_ARGB) r.color = d.color;
  r.category = static_cast<int32_t>(d.category);
}

bool ActivityConverter::add(const CUpti_Activity& record, RecordBatch& batch) {
  switch (record.kind) {
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      batch.kernels.push_back(convert_kernel(reinterpret_cast<const KernelActivity&>(record)));
      return true;
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      batch.memcpys.push_back(convert_memcpy(reinterpret_cast<const MemcpyActivity&>(record)));
      return true;
    case CUPTI_ACTIVITY_KIND_MEMSET:
      batch.memsets.push_back(convert_memset(reinterpret_cast<const MemsetActivity&>(record)));
      return true;
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER: {
      const auto& api = reinterpret_cast<const CUpti_ActivityAPI&>(record);
      const bool driver = record.kind == CUPTI_ACTIVITY_KIND_DRIVER;
      batch.api_calls.push_back(convert_api(api, driver, namer_(driver, api.cbid)));
      return true;
    }
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION:
      batch.syncs.push_back(convert_sync(reinterpret_cast<const SyncActivity&>(record)));
      return true;
    case CUPTI_ACTIVITY_KIND_OVERHEAD:
      batch.overhead.push_back(convert_overhead(reinterpret_cast<const OverheadActivity&>(record)));
      return true;
    case CUPTI_ACTIVITY_KIND_DEVICE:
      batch.gpus.push_back(convert_device(reinterpret_cast<const DeviceActivity&>(record)));
      return true;
    case CUPTI_ACTIVITY_KIND_MARKER:
      add_marker(reinterpret_cast<const MarkerActivity&>(record), batch);
      return true;
    case CUPTI_ACTIVITY_KIND_MARKER_DATA:
      add_marker_data(reinterpret_cast<const MarkerDataActivity&>(record), batch);
      return true;
    default:
      ++skipped_;
      return false;
  }
}

void ActivityConverter::add_marker(const MarkerActivity& m, RecordBatch& batch) {
  const uint64_t thread = marker_thread(m);
  if (m.flags & (CUPTI_ACTIVITY_FLAG_MARKER_START | CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS)) {
    NvtxRecord r;
    r.start = static_cast<int64_t>(m.timestamp);
    r.thread_id = thread;
    r.range_id = m.id;
    r.domain = text_or_empty(m.domain);
    r.text = text_or_empty(m.name);
    if (auto data = pending_data_.find(m.id); data != pending_data_.end()) {
      apply_marker_data(data->second, r);
      pending_data_.erase(data);
    }
    if (m.flags & CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS) {
      r.event_type = kNvtxMark;  // end stays -1
      batch.nvtx.push_back(std::move(r));
    } else {
      open_[m.id] = OpenRange{std::move(r), thread};
    }
    return;
  }
  if (!(m.flags & CUPTI_ACTIVITY_FLAG_MARKER_END)) return;  // sync markers: not recorded
  auto open = open_.find(m.id);
  if (open == open_.end()) {
    ++skipped_;  // an end whose start was lost (dropped, or before capture began)
    return;
  }
  NvtxRecord r = std::move(open->second.record);
  r.end = static_cast<int64_t>(m.timestamp);
  // CUPTI does not say whether a range was pushed or started; a range that ends on the thread
  // that opened it is reported as push/pop, one that crosses threads as start/end.
  r.event_type = open->second.start_thread == thread ? kNvtxPushPopRange : kNvtxStartEndRange;
  open_.erase(open);
  batch.nvtx.push_back(std::move(r));
}

void ActivityConverter::add_marker_data(const MarkerDataActivity& d, RecordBatch& batch) {
  if (auto open = open_.find(d.id); open != open_.end()) {
    apply_marker_data(d, open->second.record);
  } else if (!batch.nvtx.empty() && batch.nvtx.back().range_id == d.id &&
             batch.nvtx.back().event_type == kNvtxMark) {
    apply_marker_data(d, batch.nvtx.back());  // the data of a mark just emitted
  } else {
    pending_data_[d.id] = d;
  }
}

}  // namespace mpsim::profiler::cupti
