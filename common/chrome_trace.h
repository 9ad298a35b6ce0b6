// ChromeTraceWriter: streams a Chrome Trace Event Format file (JSON object form) that Perfetto,
// chrome://tracing and Holistic Trace Analysis load. Shared by the simulator and the profiler.
//
// File layout:
//   {"traceEvents":[ <one event per line> ],
//    "displayTimeUnit":"ns", "base_time_ns":<base>, "distributedInfo":{...}, <metadata...>}
// Events are written as they are added (one nlohmann dump per event, constant memory).
// Timestamps and durations are microseconds (doubles, rounded to whole nanoseconds) relative to
// `base_time_ns`, which the caller states (e.g. the simulated iteration's start, 0, or the
// profiler's first CUPTI timestamp).
//
// Failure: the file is written to `path + ".tmp"` (a common::ReplacingFile) and renamed to
// `path` by finish(), so `path`
// never holds a half-written trace and an existing file there stays untouched until a complete
// one replaces it. Any I/O failure throws std::runtime_error naming the path and removes the
// temporary file. The destructor calls finish() when the writer goes out of scope normally; when
// it is destroyed by an exception unwinding the stack (or after a failed write) it only removes
// the temporary file. Adding events after finish() throws std::logic_error.
#pragma once

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/atomic_file.h"

namespace mpsim::common {

class ChromeTraceWriter {
 public:
  ChromeTraceWriter(const std::string& path, int64_t base_time_ns);
  ~ChromeTraceWriter();
  ChromeTraceWriter(const ChromeTraceWriter&) = delete;
  ChromeTraceWriter& operator=(const ChromeTraceWriter&) = delete;

  // "M" metadata events: name processes (ranks) and threads (streams) and order them.
  void process_name(int64_t pid, const std::string& name);
  void process_sort_index(int64_t pid, int64_t index);
  void thread_name(int64_t pid, int64_t tid, const std::string& name);
  void thread_sort_index(int64_t pid, int64_t tid, int64_t index);
  // "X" complete event. `args` is omitted from the event when null.
  void complete(int64_t pid, int64_t tid, const std::string& name, const std::string& category,
                double ts_us, double dur_us, const nlohmann::json& args = nullptr);
  // "i" instant event (thread scope).
  void instant(int64_t pid, int64_t tid, const std::string& name, double ts_us,
               const nlohmann::json& args = nullptr);
  // "C" counter (process scope): one series per key of `values`, e.g. {"allocated_bytes": 1e9}.
  void counter(int64_t pid, const std::string& name, double ts_us, const nlohmann::json& values);
  // Flow arrow from the slice enclosing (from_pid, from_tid, from_ts) to the slice enclosing
  // (to_pid, to_tid, to_ts): an "s" then an "f" event with binding point "e" (enclosing slice),
  // both with the given category (Kineto uses "ac2g" for launch -> kernel) and id (unique per
  // arrow and category).
  void flow(int64_t id, const std::string& name, int64_t from_pid, int64_t from_tid,
            double from_ts_us, int64_t to_pid, int64_t to_tid, double to_ts_us,
            const std::string& category = "flow");
  // Top-level "distributedInfo" block (Kineto's layout; HTA reads "rank", "world_size").
  void distributed_info(const nlohmann::json& info);
  // Extra top-level key, written by finish(). Reserved keys ("traceEvents", "displayTimeUnit",
  // "base_time_ns") throw std::invalid_argument.
  void metadata(const std::string& key, const nlohmann::json& value);

  // Closes the JSON, flushes and renames the temporary file to `path`. Idempotent.
  void finish();
  int64_t events_written() const { return events_; }
  const std::string& path() const { return path_; }

 private:
  void write_event(const nlohmann::json& event);
  void check_stream(const char* what);  // throws (and discards) if the stream has failed
  void discard() noexcept;              // closes and removes the temporary file

  std::string path_;
  ReplacingFile file_;  // declared before out_: the stream closes before the file is removed
  std::ofstream out_;
  int64_t base_time_ns_;
  int64_t events_ = 0;
  int uncaught_at_construction_ = 0;  // std::uncaught_exceptions() when constructed
  bool finished_ = false;
  bool failed_ = false;
  nlohmann::json top_level_ = nlohmann::json::object();
};

}  // namespace mpsim::common
