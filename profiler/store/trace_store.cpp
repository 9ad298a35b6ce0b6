// The SQLite trace store (see trace_store.h): schema, writer, reader and multi-rank merge.
//
// Every SQLite call goes through MPSIM_SQLITE_CHECK, which throws StoreError naming the database,
// the call's text, its file:line and SQLite's message. The schema is written down once, in
// kSchemaSql below, and documented in profiler/README.md.
#include "profiler/store/trace_store.h"

#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace mpsim::profiler {
namespace {

namespace fs = std::filesystem;

// The whole schema, version kSchemaVersion. Times are ns on the rank's CUPTI clock; every activity
// table has a `rank` column so that merged databases keep ranks; names are StringIds ids.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE MPSIM_META(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE StringIds(id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
CREATE TABLE RANKS(rank INTEGER PRIMARY KEY, localRank INTEGER NOT NULL,
  worldSize INTEGER NOT NULL, pid INTEGER NOT NULL, hostname TEXT NOT NULL, command TEXT NOT NULL,
  rankSource TEXT NOT NULL, startNs INTEGER NOT NULL, endNs INTEGER,
  clockOffsetNs INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL(start INTEGER NOT NULL, end INTEGER NOT NULL,
  deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, streamId INTEGER NOT NULL,
  correlationId INTEGER NOT NULL, demangledName INTEGER NOT NULL REFERENCES StringIds(id),
  shortName INTEGER NOT NULL REFERENCES StringIds(id),
  mangledName INTEGER NOT NULL REFERENCES StringIds(id),
  gridX INTEGER NOT NULL, gridY INTEGER NOT NULL, gridZ INTEGER NOT NULL,
  blockX INTEGER NOT NULL, blockY INTEGER NOT NULL, blockZ INTEGER NOT NULL,
  registersPerThread INTEGER NOT NULL, staticSharedMemory INTEGER NOT NULL,
  dynamicSharedMemory INTEGER NOT NULL, isNccl INTEGER NOT NULL, rank INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_MEMCPY(start INTEGER NOT NULL, end INTEGER NOT NULL,
  deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, streamId INTEGER NOT NULL,
  correlationId INTEGER NOT NULL, bytes INTEGER NOT NULL, copyKind INTEGER NOT NULL,
  srcKind INTEGER NOT NULL, dstKind INTEGER NOT NULL, rank INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_MEMSET(start INTEGER NOT NULL, end INTEGER NOT NULL,
  deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, streamId INTEGER NOT NULL,
  correlationId INTEGER NOT NULL, bytes INTEGER NOT NULL, value INTEGER NOT NULL,
  rank INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME(start INTEGER NOT NULL, end INTEGER NOT NULL,
  eventClass INTEGER NOT NULL, globalTid INTEGER NOT NULL, correlationId INTEGER NOT NULL,
  nameId INTEGER NOT NULL REFERENCES StringIds(id), returnValue INTEGER NOT NULL,
  rank INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_SYNCHRONIZATION(start INTEGER NOT NULL, end INTEGER NOT NULL,
  contextId INTEGER NOT NULL, streamId INTEGER NOT NULL, correlationId INTEGER NOT NULL,
  globalTid INTEGER NOT NULL, syncType INTEGER NOT NULL, rank INTEGER NOT NULL);
CREATE TABLE NVTX_EVENTS(start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL,
  rangeId INTEGER NOT NULL, category INTEGER NOT NULL, color INTEGER NOT NULL,
  textId INTEGER REFERENCES StringIds(id), domainId INTEGER REFERENCES StringIds(id),
  globalTid INTEGER NOT NULL, int64Value INTEGER, doubleValue REAL, rank INTEGER NOT NULL);
CREATE TABLE TARGET_INFO_GPU(id INTEGER NOT NULL, name TEXT NOT NULL, uuid TEXT NOT NULL,
  busLocation TEXT NOT NULL, totalMemory INTEGER NOT NULL, smCount INTEGER NOT NULL,
  computeMajor INTEGER NOT NULL, computeMinor INTEGER NOT NULL, rank INTEGER NOT NULL,
  PRIMARY KEY(rank, id));
CREATE TABLE PROFILER_OVERHEAD(start INTEGER NOT NULL, end INTEGER NOT NULL,
  globalTid INTEGER NOT NULL, rank INTEGER NOT NULL);
CREATE TABLE PROFILER_DROPPED(rank INTEGER PRIMARY KEY, count INTEGER NOT NULL);
CREATE INDEX kernel_rank_start ON CUPTI_ACTIVITY_KIND_KERNEL(rank, start);
CREATE INDEX kernel_correlation ON CUPTI_ACTIVITY_KIND_KERNEL(correlationId);
CREATE INDEX runtime_rank_start ON CUPTI_ACTIVITY_KIND_RUNTIME(rank, start);
CREATE INDEX runtime_correlation ON CUPTI_ACTIVITY_KIND_RUNTIME(correlationId);
CREATE INDEX nvtx_rank_start ON NVTX_EVENTS(rank, start);
)sql";

constexpr const char* kProducer = "mpsim profiler";

class Connection;
int check_sqlite(const Connection& conn, int rc, const char* call, const char* file, int line);

// The one checking macro: evaluates an SQLite call and throws StoreError unless it returned
// SQLITE_OK, SQLITE_ROW or SQLITE_DONE. Yields the call's result code.
#define MPSIM_SQLITE_CHECK(conn, call) check_sqlite((conn), (call), #call, __FILE__, __LINE__)

// An open database handle; closed (unchecked) on destruction, or checked by close().
class Connection {
 public:
  Connection(std::string path, int flags) : path_(std::move(path)) {
    try {
      MPSIM_SQLITE_CHECK(*this, sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr));
      MPSIM_SQLITE_CHECK(*this, sqlite3_extended_result_codes(db_, 1));
      MPSIM_SQLITE_CHECK(*this, sqlite3_busy_timeout(db_, 5000));
    } catch (...) {
      sqlite3_close_v2(db_);  // a failed open still allocates a handle
      throw;
    }
  }
  ~Connection() { sqlite3_close_v2(db_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_; }
  const std::string& path() const { return path_; }
  void exec(const char* sql) {
    MPSIM_SQLITE_CHECK(*this, sqlite3_exec(db_, sql, nullptr, nullptr, nullptr));
  }
  void close() {
    if (db_ == nullptr) return;
    MPSIM_SQLITE_CHECK(*this, sqlite3_close(db_));
    db_ = nullptr;
  }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

int check_sqlite(const Connection& conn, int rc, const char* call, const char* file, int line) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return rc;
  const char* message = conn.db() != nullptr ? sqlite3_errmsg(conn.db()) : sqlite3_errstr(rc);
  throw StoreError(conn.path() + ": " + call + " failed (" + fs::path(file).filename().string() +
                   ":" + std::to_string(line) + "): " + message);
}

// A prepared statement, reusable: bind all parameters, then run() or step through rows.
class Statement {
 public:
  Statement(Connection& conn, const char* sql) : conn_(&conn) {
    MPSIM_SQLITE_CHECK(conn, sqlite3_prepare_v2(conn.db(), sql, -1, &stmt_, nullptr));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(Statement&& other) noexcept
      : conn_(other.conn_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  template <class... Args>
  Statement& bind(const Args&... args) {
    int index = 0;
    (bind_one(++index, args), ...);
    return *this;
  }
  // Binds, steps to completion and resets: one INSERT/UPDATE.
  template <class... Args>
  void run(const Args&... args) {
    bind(args...);
    while (next()) {
    }
  }
  // Steps once; false (and reset, ready for reuse) when the rows are exhausted.
  bool next() {
    int rc = 0;
    try {
      rc = MPSIM_SQLITE_CHECK(*conn_, sqlite3_step(stmt_));
    } catch (...) {
      sqlite3_reset(stmt_);  // repeats the error just reported; leaves the statement reusable
      throw;
    }
    if (rc == SQLITE_ROW) return true;
    MPSIM_SQLITE_CHECK(*conn_, sqlite3_reset(stmt_));
    return false;
  }
  // Reads the current row's columns, from the first, into `out...` (integers, double, string).
  template <class... Out>
  void columns(Out&... out) const {
    int index = 0;
    (column_one(index++, out), ...);
  }
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  template <class T>
  void bind_one(int index, const T& value) {
    if constexpr (std::is_same_v<T, std::nullopt_t>) {
      MPSIM_SQLITE_CHECK(*conn_, sqlite3_bind_null(stmt_, index));
    } else if constexpr (std::is_same_v<T, std::optional<int64_t>> ||
                         std::is_same_v<T, std::optional<double>>) {
      if (value)
        bind_one(index, *value);
      else
        MPSIM_SQLITE_CHECK(*conn_, sqlite3_bind_null(stmt_, index));
    } else if constexpr (std::is_same_v<T, std::string>) {
      MPSIM_SQLITE_CHECK(
          *conn_, sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                                    SQLITE_TRANSIENT));
    } else if constexpr (std::is_floating_point_v<T>) {
      MPSIM_SQLITE_CHECK(*conn_, sqlite3_bind_double(stmt_, index, value));
    } else {
      static_assert(std::is_integral_v<T> || std::is_enum_v<T>);
      // uint64 values (thread ids) are stored as their two's-complement int64 and read back
      // exactly.
      MPSIM_SQLITE_CHECK(*conn_, sqlite3_bind_int64(stmt_, index, static_cast<int64_t>(value)));
    }
  }
  template <class T>
  void column_one(int index, T& out) const {
    if constexpr (std::is_same_v<T, std::string>) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
      out = text != nullptr ? std::string(text, sqlite3_column_bytes(stmt_, index)) : "";
    } else if constexpr (std::is_floating_point_v<T>) {
      out = sqlite3_column_double(stmt_, index);
    } else {
      static_assert(std::is_integral_v<T>);
      out = static_cast<T>(sqlite3_column_int64(stmt_, index));
    }
  }

  Connection* conn_;
  sqlite3_stmt* stmt_ = nullptr;
};

// --- Opening and recognising stores
// ---------------------------------------------------------------

// Throws unless `conn` is an SQLite database holding an MPSIM_META table.
void require_store(Connection& conn) {
  int64_t tables = 0;
  try {
    Statement probe(
        conn, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'MPSIM_META'");
    if (probe.next()) probe.columns(tables);
    while (probe.next()) {
    }
  } catch (const StoreError&) {
    throw StoreError(conn.path() + ": not an SQLite database (" + sqlite3_errmsg(conn.db()) +
                     "); expected an mpsim trace store");
  }
  if (tables == 0) {
    throw StoreError(conn.path() + ": not an mpsim trace store (no MPSIM_META table)");
  }
}

std::string meta_value(Connection& conn, const char* key) {
  Statement query(conn, "SELECT value FROM MPSIM_META WHERE key = ?");
  std::string value;
  bool found = query.bind(std::string(key)).next();
  if (found) query.columns(value);
  while (query.next()) {
  }
  if (!found) throw StoreError(conn.path() + ": MPSIM_META has no " + key + " row");
  return value;
}

void require_schema_version(Connection& conn) {
  std::string version = meta_value(conn, "schema_version");
  if (version != std::to_string(kSchemaVersion)) {
    throw StoreError(conn.path() + ": schema_version " + version + " is not supported; expected " +
                     std::to_string(kSchemaVersion));
  }
}

// Refuses to go on if `path` exists and is not an mpsim store: never destroy a user's file.
void check_replaceable(const std::string& path) {
  if (!fs::exists(path)) return;
  try {
    Connection conn(path, SQLITE_OPEN_READONLY);
    require_store(conn);
  } catch (const StoreError& e) {
    throw StoreError(path + ": exists and is not an mpsim trace store; refusing to replace it (" +
                     e.what() + ")");
  }
}

// Removes a database and its WAL side files (a stale -wal would otherwise be replayed).
void remove_database(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ignored;  // absent files are fine
    fs::remove(path + suffix, ignored);
  }
}

// --- Writing
// ----------------------------------------------------------------------------------------

std::string short_name(const std::string& demangled) {
  return demangled.substr(0, demangled.find_first_of("(<"));
}

// The prepared INSERTs, made once per database and reused for every batch.
struct Inserts {
  explicit Inserts(Connection& c)
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
  Statement string_insert, string_lookup;
  Statement kernel, memcpy, memset, runtime, sync, nvtx, gpu, overhead, dropped;
  Statement begin, commit;
};

// Creates a fresh store at a path and writes ranks into it; shared by TraceWriter and merge.
class StoreWriter {
 public:
  explicit StoreWriter(const std::string& path) : conn_(prepare_path(path), kCreateFlags) {
    conn_.exec("PRAGMA journal_mode=WAL");
    conn_.exec("PRAGMA synchronous=NORMAL");
    create_schema();
    inserts_ = std::make_unique<Inserts>(conn_);
  }

  const std::string& path() const { return conn_.path(); }

  void add_process(const ProcessInfo& p) {
    transaction([&] {
      Statement(conn_, "INSERT INTO RANKS VALUES (?,?,?,?,?,?,?,?,?,?)")
          .run(p.rank, p.local_rank, p.world_size, p.pid, p.hostname, p.command, p.rank_source,
               p.start_ns, end_or_null(p.end_ns), p.clock_offset_ns);
    });
  }

  // Writes the whole batch in one transaction: all of it or none.
  void add_batch(int32_t rank, const RecordBatch& batch) {
    transaction([&] { insert_batch(rank, batch); });
  }

  void set_end(int32_t rank, int64_t end_ns) {
    transaction(
        [&] { Statement(conn_, "UPDATE RANKS SET endNs = ? WHERE rank = ?").run(end_ns, rank); });
  }

  // Finalizes the statements and closes the database, checked. A finished store leaves WAL mode
  // (the WAL is checkpointed into the file), so it is one self-contained file that readers open
  // without creating -wal or -shm files beside it.
  void close() {
    inserts_.reset();
    conn_.exec("PRAGMA journal_mode=DELETE");
    conn_.close();
  }

 private:
  static constexpr int kCreateFlags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

  static std::string prepare_path(const std::string& path) {
    check_replaceable(path);
    remove_database(path);
    return path;
  }
  // endNs is NULL until the process has finished.
  static std::optional<int64_t> end_or_null(int64_t end_ns) {
    return end_ns == 0 ? std::nullopt : std::optional<int64_t>(end_ns);
  }

  void create_schema() {
    conn_.exec("BEGIN");
    conn_.exec(kSchemaSql);
    Statement meta(conn_, "INSERT INTO MPSIM_META VALUES (?, ?)");
    meta.run(std::string("schema_version"), std::to_string(kSchemaVersion));
    meta.run(std::string("producer"), std::string(kProducer));
    conn_.exec("COMMIT");
  }

  template <class Body>
  void transaction(Body&& body) {
    if (!inserts_) throw StoreError(path() + ": the store is closed");
    inserts_->begin.run();
    try {
      body();
      inserts_->commit.run();
    } catch (...) {
      sqlite3_exec(conn_.db(), "ROLLBACK", nullptr, nullptr, nullptr);  // the first error wins
      throw;
    }
  }

  void insert_batch(int32_t rank, const RecordBatch& b) {
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

  // The StringIds id of `value`, inserting it the first time it is seen in this database.
  int64_t string_id(const std::string& value) {
    inserts_->string_insert.run(value);
    int64_t id = 0;
    Statement& lookup = inserts_->string_lookup.bind(value);
    if (lookup.next()) lookup.columns(id);
    while (lookup.next()) {
    }
    return id;
  }
  std::optional<int64_t> optional_string_id(const std::string& value) {
    return value.empty() ? std::nullopt : std::optional<int64_t>(string_id(value));
  }

  void insert(int32_t rank, const KernelRecord& k) {
    inserts_->kernel.run(k.start, k.end, k.device_id, k.context_id, k.stream_id, k.correlation_id,
                         string_id(k.demangled_name), string_id(short_name(k.demangled_name)),
                         string_id(k.mangled_name), k.grid_x, k.grid_y, k.grid_z, k.block_x,
                         k.block_y, k.block_z, k.registers_per_thread, k.static_shared_bytes,
                         k.dynamic_shared_bytes, is_nccl_kernel(k.demangled_name), rank);
  }
  void insert(int32_t rank, const MemcpyRecord& m) {
    inserts_->memcpy.run(m.start, m.end, m.device_id, m.context_id, m.stream_id, m.correlation_id,
                         m.bytes, m.copy_kind, m.src_kind, m.dst_kind, rank);
  }
  void insert(int32_t rank, const MemsetRecord& m) {
    inserts_->memset.run(m.start, m.end, m.device_id, m.context_id, m.stream_id, m.correlation_id,
                         m.bytes, m.value, rank);
  }
  void insert(int32_t rank, const ApiRecord& a) {
    inserts_->runtime.run(a.start, a.end, a.driver ? 1 : 0, a.thread_id, a.correlation_id,
                          string_id(a.name), a.return_value, rank);
  }
  void insert(int32_t rank, const SyncRecord& s) {
    inserts_->sync.run(s.start, s.end, s.context_id, s.stream_id, s.correlation_id, s.thread_id,
                       s.sync_type, rank);
  }
  void insert(int32_t rank, const NvtxRecord& n) {
    std::optional<int64_t> end = n.end == -1 ? std::nullopt : std::optional<int64_t>(n.end);
    std::optional<int64_t> int_value =
        n.has_int_payload ? std::optional<int64_t>(n.int_payload) : std::nullopt;
    std::optional<double> double_value =
        n.has_double_payload ? std::optional<double>(n.double_payload) : std::nullopt;
    inserts_->nvtx.run(n.start, end, n.event_type, n.range_id, n.category, n.color,
                       optional_string_id(n.text), optional_string_id(n.domain), n.thread_id,
                       int_value, double_value, rank);
  }
  void insert(int32_t rank, const GpuInfo& g) {
    inserts_->gpu.run(g.device_id, g.name, g.uuid, g.bus_location, g.total_memory_bytes, g.sm_count,
                      g.compute_major, g.compute_minor, rank);
  }

  Connection conn_;
  std::unique_ptr<Inserts> inserts_;  // declared after conn_: finalized before it closes
};

// --- Reading
// ----------------------------------------------------------------------------------------

// Every StringIds row, for resolving name ids; id NULL (absent) resolves to "".
class StringTable {
 public:
  explicit StringTable(Connection& conn) {
    Statement all(conn, "SELECT id, value FROM StringIds");
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

// --- TraceWriter
// ------------------------------------------------------------------------------------

struct TraceWriter::Impl {
  std::string path;
  int32_t rank = 0;
  std::unique_ptr<StoreWriter> store;  // null once finished
};

TraceWriter::TraceWriter(const std::string& path, const ProcessInfo& process)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->rank = process.rank;
  impl_->store = std::make_unique<StoreWriter>(path);
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
  std::unique_ptr<StoreWriter> store = std::move(impl_->store);
  store->close();
}

const std::string& TraceWriter::path() const { return impl_->path; }

// --- TraceReader
// ------------------------------------------------------------------------------------

struct TraceReader::Impl {
  explicit Impl(const std::string& path)
      : conn(existing(path), SQLITE_OPEN_READONLY), strings((validate(conn), conn)) {}

  static std::string existing(const std::string& path) {
    if (!fs::exists(path)) throw StoreError(path + ": no such file; expected an mpsim trace store");
    return path;
  }
  static Connection& validate(Connection& c) {
    require_store(c);
    require_schema_version(c);
    return c;
  }
  // A query over one rank's rows of one table, in start order (insertion order for ties).
  Statement rows(const std::string& columns, const std::string& table, int32_t rank) {
    std::string sql = "SELECT " + columns + " FROM " + table + " WHERE rank = ?";
    if (table != "TARGET_INFO_GPU" && table != "PROFILER_DROPPED") sql += " ORDER BY start, rowid";
    Statement query(conn, sql.c_str());
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

  Connection conn;
  StringTable strings;
};

ProcessInfo TraceReader::Impl::process(int32_t rank) {
  Statement q(conn,
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
  Statement q = rows(
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
  Statement q = rows(
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
  Statement q = rows("start, end, deviceId, contextId, streamId, correlationId, bytes, value",
                     "CUPTI_ACTIVITY_KIND_MEMSET", rank);
  while (q.next()) {
    MemsetRecord m;
    q.columns(m.start, m.end, m.device_id, m.context_id, m.stream_id, m.correlation_id, m.bytes,
              m.value);
    out.push_back(m);
  }
}

void TraceReader::Impl::read(int32_t rank, std::vector<ApiRecord>& out) {
  Statement q = rows("start, end, eventClass, globalTid, correlationId, nameId, returnValue",
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
  Statement q = rows("start, end, contextId, streamId, correlationId, globalTid, syncType",
                     "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION", rank);
  while (q.next()) {
    SyncRecord s;
    q.columns(s.start, s.end, s.context_id, s.stream_id, s.correlation_id, s.thread_id,
              s.sync_type);
    out.push_back(s);
  }
}

void TraceReader::Impl::read(int32_t rank, std::vector<NvtxRecord>& out) {
  Statement q = rows(
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
  Statement q =
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
  Statement q = rows("start, end, globalTid", "PROFILER_OVERHEAD", rank);
  while (q.next()) {
    OverheadRecord o;
    q.columns(o.start, o.end, o.thread_id);
    out.push_back(o);
  }
}

int64_t TraceReader::Impl::dropped(int32_t rank) {
  Statement q = rows("count", "PROFILER_DROPPED", rank);
  int64_t count = 0;
  while (q.next()) q.columns(count);
  return count;
}

TraceReader::TraceReader(const std::string& path) : impl_(std::make_unique<Impl>(path)) {}
TraceReader::~TraceReader() = default;

std::vector<int32_t> TraceReader::ranks() const {
  Statement q(impl_->conn, "SELECT rank FROM RANKS ORDER BY rank");
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

// --- merge_ranks
// --------------------------------------------------------------------------------------

namespace {

// Moves every time of one rank by `delta` ns (marks keep their end of -1; an unknown end stays 0).
void shift_times(RankTrace& t, int64_t delta) {
  auto shift = [delta](auto& records) {
    for (auto& r : records) {
      r.start += delta;
      r.end += delta;
    }
  };
  RecordBatch& b = t.records;
  shift(b.kernels);
  shift(b.memcpys);
  shift(b.memsets);
  shift(b.api_calls);
  shift(b.syncs);
  shift(b.overhead);
  for (NvtxRecord& n : b.nvtx) {
    n.start += delta;
    if (n.end != -1) n.end += delta;
  }
  t.process.start_ns += delta;
  if (t.process.end_ns != 0) t.process.end_ns += delta;
}

void write_merged(const std::vector<std::string>& inputs, StoreWriter& out) {
  std::map<int32_t, std::string> source_of_rank;
  std::optional<int64_t> base_offset;  // the first input's clock offset
  for (const std::string& input : inputs) {
    for (RankTrace& t : TraceReader(input).read_all()) {
      auto [it, fresh] = source_of_rank.emplace(t.process.rank, input);
      if (!fresh) {
        throw StoreError(out.path() + ": rank " + std::to_string(t.process.rank) +
                         " appears in both " + it->second + " and " + input);
      }
      if (!base_offset) base_offset = t.process.clock_offset_ns;
      shift_times(t, t.process.clock_offset_ns - *base_offset);
      t.process.clock_offset_ns = *base_offset;  // its times are now on the first input's clock
      out.add_process(t.process);
      out.add_batch(t.process.rank, t.records);
    }
  }
}

}  // namespace

void merge_ranks(const std::vector<std::string>& inputs, const std::string& output) {
  if (inputs.empty()) throw StoreError(output + ": nothing to merge (no input databases)");
  check_replaceable(output);
  const std::string tmp = output + ".tmp";
  try {
    StoreWriter out(tmp);
    write_merged(inputs, out);
    out.close();
  } catch (...) {
    remove_database(tmp);  // leave no half-merged file behind
    throw;
  }
  remove_database(output);
  std::error_code error;
  fs::rename(tmp, output, error);
  if (error) throw StoreError(output + ": cannot rename " + tmp + " to it: " + error.message());
}

// --- rank_path
// ----------------------------------------------------------------------------------------

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

}  // namespace

std::string rank_path(const std::string& pattern, int32_t rank, int64_t pid) {
  std::string path = pattern;
  const bool has_rank = path.find("%r") != std::string::npos;
  replace_all(path, "%r", std::to_string(rank));
  replace_all(path, "%p", std::to_string(pid));
  if (has_rank) return path;
  // Insert before the file name's extension; a leading dot (".trace") is not an extension.
  const size_t name_start = path.find_last_of('/') + 1;  // npos + 1 == 0
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || dot <= name_start) dot = path.size();
  return path.substr(0, dot) + ".rank" + std::to_string(rank) + path.substr(dot);
}

}  // namespace mpsim::profiler
