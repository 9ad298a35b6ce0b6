// The SQLite trace store: one database per rank (or one merged database with every rank),
// versioned, with Nsight Systems' export names where the concept matches. The schema is written
// down once, in store_schema.cpp, and documented in profiler/README.md. Implemented in
// store_writer.cpp (TraceWriter), trace_reader.cpp (TraceReader) and trace_merge.cpp
// (merge_ranks, rank_path), over the one SQLite wrapper of common/sqlite_db.h.
//
// TraceWriter opens (creates) a database in WAL mode and writes each RecordBatch in one
// transaction, so a process that dies keeps every batch written before. TraceReader refuses a
// database whose schema_version it does not know, with a message naming the file and both
// versions. All SQLite calls are checked; failures throw StoreError naming the path, the call,
// its file:line and the SQLite message. Nothing here needs CUDA.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "profiler/store/trace_records.h"

namespace mpsim::profiler {

inline constexpr int kSchemaVersion = 1;

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TraceWriter {
 public:
  // Creates `path` (an existing file is replaced only if it is an mpsim trace store; anything
  // else is refused) and writes the schema and the process row.
  TraceWriter(const std::string& path, const ProcessInfo& process);
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  void write(const RecordBatch& batch);  // one transaction
  void finish(int64_t end_ns);           // records the process end; closes
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Everything in one database, every table filtered to nothing or to one rank.
struct RankTrace {
  ProcessInfo process;
  RecordBatch records;  // gpus included; dropped_records is the total
};

class TraceReader {
 public:
  explicit TraceReader(
      const std::string& path);  // throws StoreError (missing, not a store, version)
  ~TraceReader();
  std::vector<int32_t> ranks() const;
  RankTrace read_rank(int32_t rank) const;
  std::vector<RankTrace> read_all() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Combines per-rank databases into one at `output` (every row keeps its rank). Timestamps are put
// on one clock: each rank's times are shifted by its clock_offset_ns minus the first input's, so
// ranks on one host (same CUPTI clock) are unchanged. Throws StoreError on conflicting ranks.
void merge_ranks(const std::vector<std::string>& inputs, const std::string& output);

// Expands an -o pattern for one rank: "%r" becomes the rank, "%p" the pid; a pattern without
// "%r" gets ".rank<N>" inserted before its extension ("run.sqlite" -> "run.rank3.sqlite").
std::string rank_path(const std::string& pattern, int32_t rank, int64_t pid);

}  // namespace mpsim::profiler
