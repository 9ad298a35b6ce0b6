// Writing a trace store: StoreWriter (store_writer.h) and TraceWriter (trace_store.h).
#include "profiler/store/store_writer.h"

#include <iostream>
#include <optional>
#include <utility>

#include "profiler/store/store_schema.h"
#include "profiler/store/trace_store.h"

namespace mpsim::profiler {
namespace detail {
namespace {

using common::SqliteStatement;

constexpr int kCreateFlags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

std::string prepared_path(const std::string& path) {
  check_replaceable(path);
  remove_database(path);
  return path;
}

// endNs is NULL until the process has finished.
std::optional<int64_t> end_or_null(int64_t end_ns) {
  return end_ns == 0 ? std::nullopt : std::optional<int64_t>(end_ns);
}

std::string short_name(const std::string& demangled) {
  return demangled.substr(0, demangled.find_first_of("(<"));
}

}  // namespace

// The prepared INSERTs, made once per database and reused for every batch.
struct Inserts {
  explicit Inserts(common::SqliteDb& c)
      : string_insert(c, "INSERT OR IGNORE INTO StringIds(value) VALUES (?)"),
        string_lookup(c, "SELECT id FROM StringIds WHERE value = ?"),
        kernel(c,
               "INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES "
               "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
        memcpy(c, "INSERT INTO CUPTI_ACTIVITY_KIND_MEMCPY VALUES (?,?,?,?,?,?,?,?,?,?,?)"),
        memset(c, "INSERT INTO CUPTI_ACTIVITY_KIND_MEMSET VALUES (?,?,?,?,?,?,?,?,?)"),
        runtime(c, "INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (?,?,?,?,?,?,?,?)"),
        sync(c, "INSERT INTO CUPTI_ACTIVITY_KIND_SYNCHRONIZATION VALUES (?,?,?,?,?,?,?,?)"),
        nvtx(c, "INSERT INTO NVTX_EVENTS VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"),
        gpu(c, "INSERT OR REPLACE INTO TARGET_INFO_GPU VALUES (?,?,?,?,?,?,?,?,?)"),
        overhead(c, "INSERT INTO PROFILER_OVERHEAD VALUES (?,?,?,?)"),
        dropped(c,
                "INSERT INTO PROFILER_DROPPED VALUES (?, ?) "
                "ON CONFLICT(rank) DO UPDATE SET count = count + excluded.count"),
        begin(c, "BEGIN IMMEDIATE"),
        commit(c, "COMMIT") {}
  SqliteStatement string_insert, string_lookup;
  SqliteStatement kernel, memcpy, memset, runtime, sync, nvtx, gpu, overhead, dropped;
  SqliteStatement begin, commit;
};

StoreWriter::StoreWriter(const std::string& path)
    : db_(open_store_database(prepared_path(path), kCreateFlags)) {
  db_.exec("PRAGMA journal_mode=WAL");
  db_.exec("PRAGMA synchronous=NORMAL");
  create_schema();
  inserts_ = std::make_unique<Inserts>(db_);
}

StoreWriter::~StoreWriter() = default;

void StoreWriter::add_process(const ProcessInfo& p) {
  transaction([&] {
    SqliteStatement(db_, "INSERT INTO RANKS VALUES (?,?,?,?,?,?,?,?,?,?)")
        .run(p.rank, p.local_rank, p.world_size, p.pid, p.hostname, p.command, p.rank_source,
             p.start_ns, end_or_null(p.end_ns), p.clock_offset_ns);
  });
}

void StoreWriter::add_batch(int32_t rank, const RecordBatch& batch) {
  transaction([&] { insert_batch(rank, batch); });
}

void StoreWriter::set_end(int32_t rank, int64_t end_ns) {
  transaction(
      [&] { SqliteStatement(db_, "UPDATE RANKS SET endNs = ? WHERE rank = ?").run(end_ns, rank); });
}

void StoreWriter::close() {
  inserts_.reset();
  db_.exec("PRAGMA journal_mode=DELETE");
  db_.close();
}

void StoreWriter::create_schema() {
  db_.exec("BEGIN");
  db_.exec(kSchemaSql);
  SqliteStatement meta(db_, "INSERT INTO MPSIM_META VALUES (?, ?)");
  meta.run(std::string("schema_version"), std::to_string(kSchemaVersion));
  meta.run(std::string("producer"), std::string(kProducer));
  db_.exec("COMMIT");
}

template <class Body>
void StoreWriter::transaction(Body&& body) {
  if (!inserts_) throw StoreError(path() + ": the store is closed");
  inserts_->begin.run();
  try {
    body();
    inserts_->commit.run();
  } catch (...) {
    db_.rollback();  // the first error wins
    throw;
  }
}

void StoreWriter::insert_batch(int32_t rank, const RecordBatch& b) {
  for (const auto& k : b.kernels) insert(rank, k);
  for (const auto& m : b.memcpys) insert(rank, m);
  for (const auto& m : b.memsets) insert(rank, m);
  for (const auto& a : b.api_calls) insert(rank, a);
  for (const auto& s : b.syncs) insert(rank, s);
  for (const auto& n : b.nvtx) insert(rank, n);
  for (const auto& g : b.gpus) insert(rank, g);
  for (const auto& o : b.overhead) inserts_->overhead.run(o.start, o.end, o.thread_id, rank);
  if (b.dropped_records != 0) inserts_->dropped.run(rank, b.dropped_records);
}

int64_t StoreWriter::string_id(const std::string& value) {
  inserts_->string_insert.run(value);
  int64_t id = 0;
  SqliteStatement& lookup = inserts_->string_lookup.bind(value);
  if (lookup.next()) lookup.columns(id);
  while (lookup.next()) {
  }
  return id;
}

std::optional<int64_t> StoreWriter::optional_string_id(const std::string& value) {
  return value.empty() ? std::nullopt : std::optional<int64_t>(string_id(value));
}

void StoreWriter::insert(int32_t rank, const KernelRecord& k) {
  inserts_->kernel.run(k.start, k.end, k.device_id, k.context_id, k.stream_id, k.correlation_id,
                       string_id(k.demangled_name), string_id(short_name(k.demangled_name)),
                       string_id(k.mangled_name), k.grid_x, k.grid_y, k.grid_z, k.block_x,
                       k.block_y, k.block_z, k.registers_per_thread, k.static_shared_bytes,
                       k.dynamic_shared_bytes, is_nccl_kernel(k.demangled_name), rank);
}

void StoreWriter::insert(int32_t rank, const MemcpyRecord& m) {
  inserts_->memcpy.run(m.start, m.end, m.device_id, m.context_id, m.stream_id, m.correlation_id,
                       m.bytes, m.copy_kind, m.src_kind, m.dst_kind, rank);
}

void StoreWriter::insert(int32_t rank, const MemsetRecord& m) {
  inserts_->memset.run(m.start, m.end, m.device_id, m.context_id, m.stream_id, m.correlation_id,
                       m.bytes, m.value, rank);
}

void StoreWriter::insert(int32_t rank, const ApiRecord& a) {
  inserts_->runtime.run(a.start, a.end, a.driver ? 1 : 0, a.thread_id, a.correlation_id,
                        string_id(a.name), a.return_value, rank);
}

void StoreWriter::insert(int32_t rank, const SyncRecord& s) {
  inserts_->sync.run(s.start, s.end, s.context_id, s.stream_id, s.correlation_id, s.thread_id,
                     s.sync_type, rank);
}

void StoreWriter::insert(int32_t rank, const NvtxRecord& n) {
  std::optional<int64_t> end = n.end == -1 ? std::nullopt : std::optional<int64_t>(n.end);
  std::optional<int64_t> int_value =
      n.has_int_payload ? std::optional<int64_t>(n.int_payload) : std::nullopt;
  std::optional<double> double_value =
      n.has_double_payload ? std::optional<double>(n.double_payload) : std::nullopt;
  inserts_->nvtx.run(n.start, end, n.event_type, n.range_id, n.category, n.color,
                     optional_string_id(n.text), optional_string_id(n.domain), n.thread_id,
                     int_value, double_value, rank);
}

void StoreWriter::insert(int32_t rank, const GpuInfo& g) {
  inserts_->gpu.run(g.device_id, g.name, g.uuid, g.bus_location, g.total_memory_bytes, g.sm_count,
                    g.compute_major, g.compute_minor, rank);
}

}  // namespace detail

// --- TraceWriter ---------------------------------------------------------------------------------

struct TraceWriter::Impl {
  std::string path;
  int32_t rank = 0;
  std::unique_ptr<detail::StoreWriter> store;  // null once finished
};

TraceWriter::TraceWriter(const std::string& path, const ProcessInfo& process)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->rank = process.rank;
  impl_->store = std::make_unique<detail::StoreWriter>(path);
  impl_->store->add_process(process);
}

TraceWriter::~TraceWriter() {
  if (!impl_ || !impl_->store) return;
  try {
    impl_->store->close();
  } catch (const std::exception& e) {
    std::cerr << "mpsim profiler: " << e.what() << '\n';  // a destructor must not throw
  }
}

void TraceWriter::write(const RecordBatch& batch) {
  if (!impl_->store) throw StoreError(impl_->path + ": write() after finish()");
  if (!batch.empty()) impl_->store->add_batch(impl_->rank, batch);
}

void TraceWriter::finish(int64_t end_ns) {
  if (!impl_->store) throw StoreError(impl_->path + ": finish() called twice");
  impl_->store->set_end(impl_->rank, end_ns);
  std::unique_ptr<detail::StoreWriter> store = std::move(impl_->store);
  store->close();
}

const std::string& TraceWriter::path() const { return impl_->path; }

}  // namespace mpsim::profiler
