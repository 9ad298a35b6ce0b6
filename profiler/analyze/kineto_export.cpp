// Chrome-trace export in Kineto's layout; see kineto_export.h for the layout.
#include "profiler/analyze/kineto_export.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "common/chrome_trace.h"

namespace mpsim::profiler {
namespace {

using common::ChromeTraceWriter;
using nlohmann::json;

// Pids of GPU processes of merged ranks: rank * kRankPidStride + device id.
constexpr int64_t kRankPidStride = 1000;
constexpr int32_t kNvtxMark = 34;

// Names as CUpti_ActivityMemcpyKind / CUpti_ActivityMemoryKind number them, spelled as Kineto does.
std::string copy_kind_name(int32_t kind) {
  static const char* const kNames[] = {"Unknown", "HtoD", "DtoH", "HtoA", "AtoH", "AtoA",
                                       "AtoD",    "DtoA", "DtoD", "HtoH", "PtoP"};
  return kind >= 0 && kind <= 10 ? kNames[kind] : "Unknown";
}

std::string memory_kind_name(int32_t kind) {
  static const char* const kNames[] = {"Unknown", "Pageable", "Pinned",        "Device",
                                       "Array",   "Managed",  "Device Static", "Managed Static"};
  return kind >= 0 && kind <= 7 ? kNames[kind] : "Unknown";
}

// The earliest timestamp of any record of any rank: the trace's time base (0 when empty).
int64_t earliest_time(const std::vector<RankTrace>& ranks) {
  int64_t t = std::numeric_limits<int64_t>::max();
  auto take = [&](const auto& records) {
    for (const auto& r : records) t = std::min(t, r.start);
  };
  for (const RankTrace& rank : ranks) {
    const RecordBatch& b = rank.records;
    take(b.kernels), take(b.memcpys), take(b.memsets), take(b.api_calls), take(b.syncs);
    take(b.nvtx), take(b.overhead);
  }
  return t == std::numeric_limits<int64_t>::max() ? 0 : t;
}

// Writes one rank: GPU activities, API calls, NVTX, flows and process/thread names.
class RankExporter {
 public:
  RankExporter(ChromeTraceWriter& writer, const RankTrace& trace, int64_t base_ns, bool merged)
      : w_(writer), t_(trace), base_ns_(base_ns), merged_(merged) {}

  void write() {
    index_launches();
    write_kernels();
    write_memcpys();
    write_memsets();
    write_api_calls();
    write_nvtx();
    write_names();
  }

 private:
  int32_t rank() const { return t_.process.rank; }
  int64_t cpu_pid() const { return t_.process.pid; }
  int64_t gpu_pid(uint32_t device) const {
    return merged_ ? rank() * kRankPidStride + device : device;
  }
  double us(int64_t ns) const { return static_cast<double>(ns - base_ns_) / 1000.0; }
  double dur_us(int64_t start, int64_t end) const {
    return static_cast<double>(end - start) / 1000.0;
  }
  int64_t flow_id(uint32_t correlation) const {
    return merged_ ? (static_cast<int64_t>(rank()) << 32) | correlation : correlation;
  }

  void index_launches() {
    for (const ApiRecord& api : t_.records.api_calls) launch_[api.correlation_id] = &api;
  }

  // Common "X" event on a stream plus the arrow from its launch call, if that is in the trace.
  void gpu_event(const std::string& name, const char* category, uint32_t device, uint32_t stream,
                 uint32_t correlation, int64_t start, int64_t end, json args) {
    args["device"] = device;
    args["stream"] = stream;
    args["correlation"] = correlation;
    const int64_t pid = gpu_pid(device);
    w_.complete(pid, stream, name, category, us(start), dur_us(start, end), args);
    streams_.insert({device, stream});
    const auto launch = launch_.find(correlation);
    if (launch == launch_.end()) return;
    const ApiRecord& api = *launch->second;
    w_.flow(flow_id(correlation), "ac2g", cpu_pid(), static_cast<int64_t>(api.thread_id),
            us(api.start), pid, stream, us(start), "ac2g");
  }

  void write_kernels() {
    for (const KernelRecord& k : t_.records.kernels) {
      const std::string& name = k.demangled_name.empty() ? k.mangled_name : k.demangled_name;
      json args = {{"grid", {k.grid_x, k.grid_y, k.grid_z}},
                   {"block", {k.block_x, k.block_y, k.block_z}},
                   {"registers per thread", k.registers_per_thread},
                   {"shared memory", k.static_shared_bytes + k.dynamic_shared_bytes}};
      if (is_nccl_kernel(name)) args["is_nccl"] = true;
      gpu_event(name, "kernel", k.device_id, k.stream_id, k.correlation_id, k.start, k.end, args);
    }
  }

  void write_memcpys() {
    for (const MemcpyRecord& m : t_.records.memcpys) {
      const std::string name = "Memcpy " + copy_kind_name(m.copy_kind) + " (" +
                               memory_kind_name(m.src_kind) + " -> " +
                               memory_kind_name(m.dst_kind) + ")";
      gpu_event(name, "gpu_memcpy", m.device_id, m.stream_id, m.correlation_id, m.start, m.end,
                {{"bytes", m.bytes}});
    }
  }

  void write_memsets() {
    for (const MemsetRecord& m : t_.records.memsets) {
      gpu_event("Memset (Device)", "gpu_memset", m.device_id, m.stream_id, m.correlation_id,
                m.start, m.end, {{"bytes", m.bytes}});
    }
  }

  void write_api_calls() {
    for (const ApiRecord& api : t_.records.api_calls) {
      const auto tid = static_cast<int64_t>(api.thread_id);
      w_.complete(cpu_pid(), tid, api.name, api.driver ? "cuda_driver" : "cuda_runtime",
                  us(api.start), dur_us(api.start, api.end),
                  {{"correlation", api.correlation_id}, {"return value", api.return_value}});
      threads_.insert(tid);
    }
  }

  static json nvtx_args(const NvtxRecord& r) {
    json args = json::object();
    if (!r.domain.empty()) args["domain"] = r.domain;
    if (r.category != 0) args["category"] = r.category;
    if (r.has_int_payload) args["payload"] = r.int_payload;
    if (r.has_double_payload) args["payload"] = r.double_payload;
    return args;
  }

  void write_nvtx() {
    for (const NvtxRecord& r : t_.records.nvtx) {
      const auto tid = static_cast<int64_t>(r.thread_id);
      threads_.insert(tid);
      const json args = nvtx_args(r);
      if (r.event_type == kNvtxMark || r.end < r.start) {
        w_.instant(cpu_pid(), tid, r.text, us(r.start), args.empty() ? json() : args);
      } else {
        w_.complete(cpu_pid(), tid, r.text, "user_annotation", us(r.start), dur_us(r.start, r.end),
                    args.empty() ? json() : args);
      }
    }
  }

  // Processes sort by rank, the CPU before its GPUs; threads and streams by id.
  void write_names() {
    const std::string prefix = "rank " + std::to_string(rank());
    const int64_t order = static_cast<int64_t>(rank()) * (kRankPidStride + 1);
    w_.process_name(cpu_pid(), prefix + " CPU (pid " + std::to_string(cpu_pid()) + ")");
    w_.process_sort_index(cpu_pid(), order);
    for (int64_t tid : threads_) w_.thread_name(cpu_pid(), tid, "thread " + std::to_string(tid));
    std::set<uint32_t> devices;
    for (const auto& [device, stream] : streams_) {
      if (devices.insert(device).second) {
        w_.process_name(gpu_pid(device), prefix + " GPU " + std::to_string(device));
        w_.process_sort_index(gpu_pid(device), order + 1 + device);
      }
      w_.thread_name(gpu_pid(device), stream, "stream " + std::to_string(stream));
      w_.thread_sort_index(gpu_pid(device), stream, stream);
    }
  }

  ChromeTraceWriter& w_;
  const RankTrace& t_;
  int64_t base_ns_;
  bool merged_;
  std::unordered_map<uint32_t, const ApiRecord*> launch_;  // by correlation id
  std::set<std::pair<uint32_t, uint32_t>> streams_;        // (device, stream) seen
  std::set<int64_t> threads_;                              // host threads seen
};

// Kineto's "deviceProperties": one entry per device id, the first rank that has it.
json device_properties(const std::vector<RankTrace>& ranks) {
  json list = json::array();
  std::set<uint32_t> seen;
  for (const RankTrace& rank : ranks) {
    for (const GpuInfo& gpu : rank.records.gpus) {
      if (!seen.insert(gpu.device_id).second) continue;
      list.push_back({{"id", gpu.device_id},
                      {"name", gpu.name},
                      {"totalGlobalMem", gpu.total_memory_bytes},
                      {"computeMajor", gpu.compute_major},
                      {"computeMinor", gpu.compute_minor},
                      {"numSms", gpu.sm_count}});
    }
  }
  return list;
}

}  // namespace

void export_chrome_trace(const std::vector<RankTrace>& ranks, const std::string& path) {
  const int64_t base_ns = earliest_time(ranks);
  ChromeTraceWriter writer(path, base_ns);
  const bool merged = ranks.size() > 1;
  for (const RankTrace& rank : ranks) RankExporter(writer, rank, base_ns, merged).write();
  if (!ranks.empty()) {
    writer.distributed_info({{"backend", "nccl"},
                             {"rank", ranks.front().process.rank},
                             {"world_size", ranks.front().process.world_size}});
  }
  writer.metadata("deviceProperties", device_properties(ranks));
  writer.metadata("schemaVersion", 1);
  writer.finish();
}

}  // namespace mpsim::profiler
