// Internal to profiler/store: StoreWriter creates a fresh store at a path and writes ranks into
// it; TraceWriter (one rank, as the profiler captures it) and merge_ranks (every rank of several
// stores) are built on it. The public API is trace_store.h.
//
// Failure: StoreError naming the file (see store_schema.h). The constructor refuses to replace an
// existing file that is not an mpsim store. Each add_* call is one transaction: all of it or none.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/sqlite_db.h"
#include "profiler/store/trace_records.h"

namespace mpsim::profiler::detail {

struct Inserts;

class StoreWriter {
 public:
  // Replaces `path` if it is an mpsim store (with its -wal/-shm files), writes the schema and the
  // MPSIM_META rows; WAL journal, synchronous=NORMAL.
  explicit StoreWriter(const std::string& path);
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  const std::string& path() const { return db_.path(); }
  void add_process(const ProcessInfo& p);
  // Writes the whole batch in one transaction.
  void add_batch(int32_t rank, const RecordBatch& batch);
  void set_end(int32_t rank, int64_t end_ns);
  // Finalizes the statements and closes the database, checked. A finished store leaves WAL mode
  // (the WAL is checkpointed into the file), so it is one self-contained file that readers open
  // without creating -wal or -shm files beside it.
  void close();

 private:
  template <class Body>
  void transaction(Body&& body);
  void create_schema();
  void insert_batch(int32_t rank, const RecordBatch& b);
  // The StringIds id of `value`, inserting it the first time it is seen in this database.
  int64_t string_id(const std::string& value);
  std::optional<int64_t> optional_string_id(const std::string& value);
  void insert(int32_t rank, const KernelRecord& k);
  void insert(int32_t rank, const MemcpyRecord& m);
  void insert(int32_t rank, const MemsetRecord& m);
  void insert(int32_t rank, const ApiRecord& a);
  void insert(int32_t rank, const SyncRecord& s);
  void insert(int32_t rank, const NvtxRecord& n);
  void insert(int32_t rank, const GpuInfo& g);

  common::SqliteDb db_;
  std::unique_ptr<Inserts> inserts_;  // declared after db_: finalized before it closes
};

}  // namespace mpsim::profiler::detail
