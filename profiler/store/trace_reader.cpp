// Reading a trace store: TraceReader (trace_store.h).
#include <filesystem>
#include <unordered_map>
#include <utility>

#include "common/sqlite_db.h"
#include "profiler/store/store_schema.h"
#include "profiler/store/trace_store.h"

namespace mpsim::profiler {
namespace {

namespace fs = std::filesystem;
using common::SqliteStatement;

// Every StringIds row, for resolving name ids; id NULL (absent) resolves to "".
class StringTable {
 public:
  explicit StringTable(common::SqliteDb& conn) {
    SqliteStatement all(conn, "SELECT id, value FROM StringIds");
    while (all.next()) {
      int64_t id = 0;
      std::string value;
      all.columns(id, value);
      values_.emplace(id, std::move(value));
    }
  }
  const std::string& operator()(int64_t id) const {
    static const std::string kEmpty;
    auto it = values_.find(id);
    return it == values_.end() ? kEmpty : it->second;
  }

 private:
  std::unordered_map<int64_t, std::string> values_;
};

}  // namespace

struct TraceReader::Impl {
  explicit Impl(const std::string& path)
      : conn(detail::open_store_database(existing(path), SQLITE_OPEN_READONLY)),
        strings((validate(conn), conn)) {}

  static std::string existing(const std::string& path) {
    if (!fs::exists(path)) throw StoreError(path + ": no such file; expected an mpsim trace store");
    return path;
  }
  static common::SqliteDb& validate(common::SqliteDb& c) {
    detail::require_store(c);
    detail::require_schema_version(c);
    return c;
  }
  // A query over one rank's rows of one table, in start order (insertion order for ties).
  SqliteStatement rows(const std::string& columns, const std::string& table, int32_t rank) {
    std::string sql = "SELECT " + columns + " FROM " + table + " WHERE rank = ?";
    if (table != "TARGET_INFO_GPU" && table != "PROFILER_DROPPED") sql += " ORDER BY start, rowid";
    SqliteStatement query(conn, sql.c_str());
    query.bind(rank);
    return query;
  }

  ProcessInfo process(int32_t rank);
  void read(int32_t rank, std::vector<KernelRecord>& out);
  void read(int32_t rank, std::vector<MemcpyRecord>& out);
  void read(int32_t rank, std::vector<MemsetRecord>& out);
  void read(int32_t rank, std::vector<ApiRecord>& out);
  void read(int32_t rank, std::vector<SyncRecord>& out);
  void read(int32_t rank, std::vector<NvtxRecord>& out);
  void read(int32_t rank, std::vector<GpuInfo>& out);
  void read(int32_t rank, std::vector<OverheadRecord>& out);
  int64_t dropped(int32_t rank);

  common::SqliteDb conn;
  StringTable strings;
};

ProcessInfo TraceReader::Impl::process(int32_t rank) {
  SqliteStatement q(
      conn,
      "SELECT rank, localRank, worldSize, pid, hostname, command, rankSource, startNs, "
      "ifnull(endNs, 0), clockOffsetNs FROM RANKS WHERE rank = ?");
  ProcessInfo p;
  if (!q.bind(rank).next()) {
    throw StoreError(conn.path() + ": no rank " + std::to_string(rank) + " in RANKS");
  }
  q.columns(p.rank, p.local_rank, p.world_size, p.pid, p.hostname, p.command, p.rank_source,
            p.start_ns, p.end_ns, p.clock_offset_ns);
  while (q.next()) {
  }
  return p;
}

void TraceReader::Impl::read(int32_t rank, std::vector<KernelRecord>& out) {
  SqliteStatement q = rows(
      "start, end, deviceId, contextId, streamId, correlationId, gridX, gridY, gridZ, blockX, "
      "blockY, blockZ, registersPerThread, staticSharedMemory, dynamicSharedMemory, "
      "mangledName, demangledName",
      "CUPTI_ACTIVITY_KIND_KERNEL", rank);
  while (q.next()) {
    KernelRecord k;
    int64_t mangled = 0, demangled = 0;
    q.columns(k.start, k.end, k.device_id, k.context_id, k.stream_id, k.correlation_id, k.grid_x,
              k.grid_y, k.grid_z, k.block_x, k.block_y, k.block_z, k.registers_per_thread,
              k.static_shared_bytes, k.dynamic_shared_bytes, mangled, demangled);
    k.mangled_name = strings(mangled);
    k.demangled_name = strings(demangled);
    out.push_back(std::move(k));
  }
}

void TraceReader::Impl::read(int32_t rank, std::vector<MemcpyRecord>& out) {
  SqliteStatement q = rows(
      "start, end, deviceId, contextId, streamId, correlationId, bytes, copyKind, srcKind, dstKind",
      "CUPTI_ACTIVITY_KIND_MEMCPY", rank);
  while (q.next()) {
    MemcpyRecord m;
    q.columns(m.start, m.end, m.device_id, m.context_id, m.stream_id, m.correlation_id, m.bytes,
              m.copy_kind, m.src_kind, m.dst_kind);
    out.push_back(m);
  }
}

void TraceReader::Impl::read(int32_t rank, std::vector<MemsetRecord>& out) {
  SqliteStatement q = rows("start, end, deviceId, contextId, streamId, correlationId, bytes, value",
                           "CUPTI_ACTIVITY_KIND_MEMSET", rank);
  while (q.next()) {
    MemsetRecord m;
    q.columns(m.start, m.end, m.device_id, m.context_id, m.stream_id, m.correlation_id, m.bytes,
              m.value);
    out.push_back(m);
  }
}

void TraceReader::Impl::read(int32_t rank, std::vector<ApiRecord>& out) {
  SqliteStatement q = rows("start, end, eventClass, globalTid, correlationId, nameId, returnValue",
                           "CUPTI_ACTIVITY_KIND_RUNTIME", rank);
  while (q.next()) {
    ApiRecord a;
    int64_t event_class = 0, name = 0;
    q.columns(a.start, a.end, event_class, a.thread_id, a.correlation_id, name, a.return_value);
    a.driver = event_class == 1;
    a.name = strings(name);
    out.push_back(std::move(a));
  }
}

void TraceReader::Impl::read(int32_t rank, std::vector<SyncRecord>& out) {
  SqliteStatement q = rows("start, end, contextId, streamId, correlationId, globalTid, syncType",
                           "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION", rank);
  while (q.next()) {
    SyncRecord s;
    q.columns(s.start, s.end, s.context_id, s.stream_id, s.correlation_id, s.thread_id,
              s.sync_type);
    out.push_back(s);
  }
}

void TraceReader::Impl::read(int32_t rank, std::vector<NvtxRecord>& out) {
  SqliteStatement q = rows(
      "start, ifnull(end, -1), eventType, rangeId, category, color, ifnull(textId, 0), "
      "ifnull(domainId, 0), globalTid, int64Value, doubleValue",
      "NVTX_EVENTS", rank);
  while (q.next()) {
    NvtxRecord n;
    int64_t text = 0, domain = 0;
    q.columns(n.start, n.end, n.event_type, n.range_id, n.category, n.color, text, domain,
              n.thread_id, n.int_payload, n.double_payload);
    n.has_int_payload = !q.is_null(9);
    n.has_double_payload = !q.is_null(10);
    n.text = strings(text);  // id 0 is never assigned: NULL reads as ""
    n.domain = strings(domain);
    out.push_back(std::move(n));
  }
}

void TraceReader::Impl::read(int32_t rank, std::vector<GpuInfo>& out) {
  SqliteStatement q =
      rows("id, name, uuid, busLocation, totalMemory, smCount, computeMajor, computeMinor",
           "TARGET_INFO_GPU", rank);
  while (q.next()) {
    GpuInfo g;
    q.columns(g.device_id, g.name, g.uuid, g.bus_location, g.total_memory_bytes, g.sm_count,
              g.compute_major, g.compute_minor);
    out.push_back(std::move(g));
  }
}

void TraceReader::Impl::read(int32_t rank, std::vector<OverheadRecord>& out) {
  SqliteStatement q = rows("start, end, globalTid", "PROFILER_OVERHEAD", rank);
  while (q.next()) {
    OverheadRecord o;
    q.columns(o.start, o.end, o.thread_id);
    out.push_back(o);
  }
}

int64_t TraceReader::Impl::dropped(int32_t rank) {
  SqliteStatement q = rows("count", "PROFILER_DROPPED", rank);
  int64_t count = 0;
  while (q.next()) q.columns(count);
  return count;
}

TraceReader::TraceReader(const std::string& path) : impl_(std::make_unique<Impl>(path)) {}
TraceReader::~TraceReader() = default;

std::vector<int32_t> TraceReader::ranks() const {
  SqliteStatement q(impl_->conn, "SELECT rank FROM RANKS ORDER BY rank");
  std::vector<int32_t> ranks;
  while (q.next()) q.columns(ranks.emplace_back());
  return ranks;
}

RankTrace TraceReader::read_rank(int32_t rank) const {
  RankTrace t;
  t.process = impl_->process(rank);
  RecordBatch& r = t.records;
  impl_->read(rank, r.kernels);
  impl_->read(rank, r.memcpys);
  impl_->read(rank, r.memsets);
  impl_->read(rank, r.api_calls);
  impl_->read(rank, r.syncs);
  impl_->read(rank, r.nvtx);
  impl_->read(rank, r.gpus);
  impl_->read(rank, r.overhead);
  r.dropped_records = impl_->dropped(rank);
  return t;
}

std::vector<RankTrace> TraceReader::read_all() const {
  std::vector<RankTrace> all;
  for (int32_t rank : ranks()) all.push_back(read_rank(rank));
  return all;
}

}  // namespace mpsim::profiler
