// The capture core: turns CUPTI's completed activity buffers into RecordBatches and hands them to
// a BatchSink (the TraceWriter in the injection library, a vector in tests).
//
// Capture::start() checks that CUPTI is free (subscribe), registers the buffer callbacks, enables
// the activity kinds (CONCURRENT_KERNEL, never the serializing KERNEL kind; memcpy, memset,
// runtime and driver API, synchronization, NVTX markers, overhead, device) and starts a background
// thread that asks CUPTI for completed buffers and writes what was collected every flush period
// (500 ms), so a program that crashes keeps what was flushed. Capture::stop() (atexit) forces a
// last flush, writes it and closes the sink.
//
// Failure policy: the profiler never aborts or throws into the observed program. Every CUPTI call
// goes through MPSIM_CUPTI_CHECK (capture.cpp), which on failure prints once
//   mpsim profile: <call> failed at <file>:<line>: <message>; profiling stopped
// and stops profiling; a sink that throws is handled the same way. If another tool already holds
// CUPTI (nsys, Kineto) start() warns once and returns false, and the program runs unprofiled.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "profiler/cupti/activity_buffer.h"
#include "profiler/store/trace_records.h"

namespace mpsim::profiler::cupti {

// Where batches go. write() and finish() may throw std::exception; Capture turns that into the
// warning above.
class BatchSink {
 public:
  virtual ~BatchSink() = default;
  virtual void write(const RecordBatch& batch) = 0;
  virtual void finish(int64_t end_ns) = 0;
};
// Opens the sink once the process is known (rank, clock offset).
using SinkFactory = std::function<std::unique_ptr<BatchSink>(const ProcessInfo&)>;

// Rank of this process, from the first of MPSIM_RANK (`mpsim train`), RANK, LOCAL_RANK,
// SLURM_PROCID, OMPI_COMM_WORLD_RANK that holds a non-negative integer, else the pid (source
// "pid"). local_rank and world_size come from LOCAL_RANK/SLURM_LOCALID/OMPI_COMM_WORLD_LOCAL_RANK
// and WORLD_SIZE/SLURM_NTASKS/OMPI_COMM_WORLD_SIZE (defaults: rank, 1).
struct RankIdentity {
  int32_t rank = 0, local_rank = 0, world_size = 1;
  std::string source;
};
using EnvLookup = std::function<const char*(const char*)>;
RankIdentity rank_from_env(const EnvLookup& env, int64_t pid);

// This process: rank, pid, hostname, command line (/proc/self/cmdline, words joined by spaces),
// start time on the CUPTI clock and CLOCK_REALTIME minus the CUPTI clock.
ProcessInfo describe_process(const RankIdentity& who, int64_t cupti_now_ns,
                             int64_t realtime_now_ns);

struct CaptureOptions {
  std::chrono::milliseconds flush_period{500};
  size_t buffer_bytes = 8u << 20;    // one CUPTI activity buffer
  std::ostream* warnings = nullptr;  // nullptr: std::cerr
  EnvLookup env;                     // empty: ::getenv
};

class Capture {
 public:
  Capture(std::unique_ptr<CuptiApi> api, SinkFactory make_sink, CaptureOptions options = {});
  ~Capture();  // stop()
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Returns whether profiling runs. At most one Capture is started per process (CUPTI's buffer
  // callbacks carry no user pointer).
  bool start();
  // Idempotent; safe after a failure.
  void stop();
  bool active() const { return active_.load(); }
  const ProcessInfo& process() const { return process_; }

  // CUPTI's buffer callbacks (reached through static trampolines; tests call them directly).
  void buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records);
  void buffer_completed(CUcontext context, uint32_t stream, uint8_t* buffer, size_t valid);
  // Writes what was collected since the last write (the background thread calls it).
  void write_pending();

  // The checking behind MPSIM_CUPTI_CHECK; false (and profiling stopped) on failure.
  bool check(CUptiResult result, const char* call, const char* file, int line);
  void fail(const char* call, const char* file, int line, const std::string& message);

 private:
  bool enable_kinds();
  void disable_kinds();
  void flush_loop();
  std::ostream& warnings() const;

  std::unique_ptr<CuptiApi> api_;
  SinkFactory make_sink_;
  CaptureOptions options_;
  ProcessInfo process_;
  std::unique_ptr<BatchSink> sink_;

  std::mutex records_mutex_;  // pending_ and converter_ (CUPTI's thread and the flusher)
  RecordBatch pending_;
  ActivityConverter converter_;
  std::mutex sink_mutex_;  // sink_ (the flusher and stop())

  std::atomic<bool> active_{false};
  std::atomic<bool> warned_{false};
  std::atomic<bool> stopped_{false};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by wake_mutex_
  std::thread flusher_;
};

}  // namespace mpsim::profiler::cupti
