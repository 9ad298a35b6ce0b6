// ChromeTraceWriter: streams a Chrome Trace Event Format file (JSON object form) that Perfetto,
// chrome://tracing and Holistic Trace Analysis load. Shared by the simulator and the profiler.
//
// Events are written as they are added (constant memory). Timestamps are microseconds relative
// to a base the caller states (stored in the file's metadata as `baseTimeNanoseconds`-style
// "base_time_ns"). finish() closes the JSON; the destructor calls it. On an I/O failure the
// writer throws std::runtime_error naming the path; the file is written to `path + ".tmp"` and
// renamed on finish(), so an existing file is never left half-overwritten.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace mpsim::report {

class ChromeTraceWriter {
 public:
  ChromeTraceWriter(const std::string& path, int64_t base_time_ns);
  ~ChromeTraceWriter();
  ChromeTraceWriter(const ChromeTraceWriter&) = delete;
  ChromeTraceWriter& operator=(const ChromeTraceWriter&) = delete;

  // "M" metadata events.
  void process_name(int64_t pid, const std::string& name);
  void process_sort_index(int64_t pid, int64_t index);
  void thread_name(int64_t pid, int64_t tid, const std::string& name);
  void thread_sort_index(int64_t pid, int64_t tid, int64_t index);
  // "X" complete event.
  void complete(int64_t pid, int64_t tid, const std::string& name, const std::string& category,
                double ts_us, double dur_us, const nlohmann::json& args = nullptr);
  // "i" instant event (thread scope).
  void instant(int64_t pid, int64_t tid, const std::string& name, double ts_us,
               const nlohmann::json& args = nullptr);
  // "C" counter: one series per key of `values`.
  void counter(int64_t pid, const std::string& name, double ts_us, const nlohmann::json& values);
  // Flow arrow from (pid, tid, ts) of one slice to another ("s" then "f" with binding "e").
  void flow(int64_t id, const std::string& name, int64_t from_pid, int64_t from_tid,
            double from_ts_us, int64_t to_pid, int64_t to_tid, double to_ts_us);
  // Top-level "distributedInfo" block (Kineto's layout; HTA reads "rank").
  void distributed_info(const nlohmann::json& info);
  // Extra top-level metadata key.
  void metadata(const std::string& key, const nlohmann::json& value);

  void finish();
  int64_t events_written() const { return events_; }

 private:
  void write_event(const nlohmann::json& event);
  std::string path_;
  std::ofstream out_;
  int64_t base_time_ns_;
  int64_t events_ = 0;
  bool finished_ = false;
  nlohmann::json top_level_ = nlohmann::json::object();
};

}  // namespace mpsim::report
