// Chrome Trace Event Format writer; see chrome_trace.h for the file layout and failure contract.
#include "common/chrome_trace.h"

#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>

namespace mpsim::common {
namespace {

using nlohmann::json;

// Microseconds rounded to whole nanoseconds, so dumps read "1234.567" rather than 17 digits of
// float noise, and so the trace keeps nanosecond resolution.
double round_to_ns(double us) { return std::round(us * 1000.0) / 1000.0; }

// One event per line; invalid UTF-8 in names (e.g. from demangled kernel names) is replaced
// rather than aborting the whole trace.
std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json metadata_event(const char* name, int64_t pid, json args) {
  return {{"ph", "M"}, {"name", name}, {"pid", pid}, {"args", std::move(args)}};
}

}  // namespace

ChromeTraceWriter::ChromeTraceWriter(const std::string& path, int64_t base_time_ns)
    : path_(path),
      file_(path),
      base_time_ns_(base_time_ns),
      uncaught_at_construction_(std::uncaught_exceptions()) {
  out_.open(file_.temp_path(), std::ios::out | std::ios::trunc | std::ios::binary);
  if (!out_)
    throw std::runtime_error(path_ + ": cannot open " + file_.temp_path() + " for writing");
  out_ << "{\"traceEvents\":[";
  check_stream("write");
}

ChromeTraceWriter::~ChromeTraceWriter() {
  if (finished_) return;
  // Publish only a trace whose writer finished its work; a writer destroyed by an exception
  // keeps the previous file at path_ intact.
  if (failed_ || std::uncaught_exceptions() > uncaught_at_construction_) {
    discard();
    return;
  }
  try {
    finish();
  } catch (...) {
    discard();  // destructors must not throw; finish() already removed the file
  }
}

void ChromeTraceWriter::check_stream(const char* what) {
  if (out_) return;
  discard();
  throw std::runtime_error(path_ + ": cannot " + what + " " + file_.temp_path());
}

void ChromeTraceWriter::discard() noexcept {
  failed_ = true;
  if (out_.is_open()) out_.close();
  file_.discard();
}

void ChromeTraceWriter::write_event(const json& event) {
  if (finished_) throw std::logic_error(path_ + ": trace event added after finish()");
  if (failed_) throw std::runtime_error(path_ + ": trace writer failed earlier");
  out_ << (events_ == 0 ? "\n" : ",\n") << dump(event);
  check_stream("write");
  ++events_;
}

void ChromeTraceWriter::process_name(int64_t pid, const std::string& name) {
  write_event(metadata_event("process_name", pid, {{"name", name}}));
}

void ChromeTraceWriter::process_sort_index(int64_t pid, int64_t index) {
  write_event(metadata_event("process_sort_index", pid, {{"sort_index", index}}));
}

void ChromeTraceWriter::thread_name(int64_t pid, int64_t tid, const std::string& name) {
  json event = metadata_event("thread_name", pid, {{"name", name}});
  event["tid"] = tid;
  write_event(event);
}

void ChromeTraceWriter::thread_sort_index(int64_t pid, int64_t tid, int64_t index) {
  json event = metadata_event("thread_sort_index", pid, {{"sort_index", index}});
  event["tid"] = tid;
  write_event(event);
}

void ChromeTraceWriter::complete(int64_t pid, int64_t tid, const std::string& name,
                                 const std::string& category, double ts_us, double dur_us,
                                 const json& args) {
  json event = {{"ph", "X"},
                {"name", name},
                {"cat", category},
                {"pid", pid},
                {"tid", tid},
                {"ts", round_to_ns(ts_us)},
                {"dur", round_to_ns(dur_us)}};
  if (!args.is_null()) event["args"] = args;
  write_event(event);
}

void ChromeTraceWriter::instant(int64_t pid, int64_t tid, const std::string& name, double ts_us,
                                const json& args) {
  json event = {{"ph", "i"},  {"s", "t"},   {"name", name},
                {"pid", pid}, {"tid", tid}, {"ts", round_to_ns(ts_us)}};
  if (!args.is_null()) event["args"] = args;
  write_event(event);
}

void ChromeTraceWriter::counter(int64_t pid, const std::string& name, double ts_us,
                                const json& values) {
  write_event(
      {{"ph", "C"}, {"name", name}, {"pid", pid}, {"ts", round_to_ns(ts_us)}, {"args", values}});
}

void ChromeTraceWriter::flow(int64_t id, const std::string& name, int64_t from_pid,
                             int64_t from_tid, double from_ts_us, int64_t to_pid, int64_t to_tid,
                             double to_ts_us, const std::string& category) {
  write_event({{"ph", "s"},
               {"id", id},
               {"name", name},
               {"cat", category},
               {"pid", from_pid},
               {"tid", from_tid},
               {"ts", round_to_ns(from_ts_us)}});
  write_event({{"ph", "f"},
               {"bp", "e"},
               {"id", id},
               {"name", name},
               {"cat", category},
               {"pid", to_pid},
               {"tid", to_tid},
               {"ts", round_to_ns(to_ts_us)}});
}

void ChromeTraceWriter::distributed_info(const json& info) { metadata("distributedInfo", info); }

void ChromeTraceWriter::metadata(const std::string& key, const json& value) {
  if (key == "traceEvents" || key == "displayTimeUnit" || key == "base_time_ns") {
    throw std::invalid_argument(path_ + ": trace metadata key '" + key + "' is reserved");
  }
  top_level_[key] = value;
}

void ChromeTraceWriter::finish() {
  if (finished_) return;
  if (failed_) throw std::runtime_error(path_ + ": trace writer failed earlier");
  out_ << "\n],\n\"displayTimeUnit\":\"ns\",\n\"base_time_ns\":" << base_time_ns_;
  for (const auto& [key, value] : top_level_.items()) {
    out_ << ",\n" << dump(json(key)) << ':' << dump(value);
  }
  out_ << "\n}\n";
  out_.flush();
  check_stream("write");
  out_.close();
  check_stream("close");
  try {
    file_.commit();  // removes the temporary file when the rename fails
  } catch (...) {
    failed_ = true;
    throw;
  }
  finished_ = true;
}

}  // namespace mpsim::common
