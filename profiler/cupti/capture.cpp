#include "profiler/cupti/capture.h"

#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

// The one check every CUPTI call goes through: records the call's text and file:line.
#define MPSIM_CUPTI_CHECK(call) check((call), #call, __FILE__, __LINE__)

namespace mpsim::profiler::cupti {
namespace {

// CUPTI's buffer callbacks take no user pointer; they reach the started Capture through this.
std::atomic<Capture*> g_started{nullptr};

void CUPTIAPI on_buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  if (Capture* c = g_started.load()) return c->buffer_requested(buffer, size, max_records);
  *buffer = nullptr, *size = 0, *max_records = 0;  // CUPTI drops records: nobody collects them
}

void CUPTIAPI on_buffer_completed(CUcontext context, uint32_t stream, uint8_t* buffer,
                                  size_t /*size*/, size_t valid) {
  if (Capture* c = g_started.load()) return c->buffer_completed(context, stream, buffer, valid);
  std::free(buffer);
}

constexpr CUpti_ActivityKind kKinds[] = {
    CUPTI_ACTIVITY_KIND_DEVICE,          CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
    CUPTI_ACTIVITY_KIND_MEMCPY,          CUPTI_ACTIVITY_KIND_MEMSET,
    CUPTI_ACTIVITY_KIND_RUNTIME,         CUPTI_ACTIVITY_KIND_DRIVER,
    CUPTI_ACTIVITY_KIND_SYNCHRONIZATION, CUPTI_ACTIVITY_KIND_MARKER,
    CUPTI_ACTIVITY_KIND_MARKER_DATA,  // payloads (NCCL's message sizes), colors, categories
    CUPTI_ACTIVITY_KIND_OVERHEAD,
};

// A whole-string non-negative integer, or -1.
int64_t env_integer(const char* text) {
  if (!text || !*text) return -1;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  return (*end == '\0' && v >= 0 && v <= INT32_MAX) ? v : -1;
}

// The first of `names` holding an integer; -1 if none.
int64_t first_integer(const EnvLookup& env, std::initializer_list<const char*> names,
                      std::string* source = nullptr) {
  for (const char* name : names) {
    const int64_t v = env_integer(env(name));
    if (v < 0) continue;
    if (source) *source = name;
    return v;
  }
  return -1;
}

std::string read_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\0') text.pop_back();
  for (char& c : text) c = c == '\0' ? ' ' : c;
  return text;
}

std::string host_name() {
  char name[256] = {};
  return gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string("unknown");
}

int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

RankIdentity rank_from_env(const EnvLookup& env, int64_t pid) {
  RankIdentity who;
  const int64_t rank = first_integer(
      env, {"MPSIM_RANK", "RANK", "LOCAL_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"},
      &who.source);
  if (rank < 0) {
    who.source = "pid";
    who.rank = static_cast<int32_t>(pid);
  } else {
    who.rank = static_cast<int32_t>(rank);
  }
  const int64_t local =
      first_integer(env, {"LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"});
  who.local_rank = local >= 0 ? static_cast<int32_t>(local) : (rank >= 0 ? who.rank : 0);
  const int64_t world = first_integer(env, {"WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"});
  who.world_size = world > 0 ? static_cast<int32_t>(world) : 1;
  return who;
}

ProcessInfo describe_process(const RankIdentity& who, int64_t cupti_now_ns,
                             int64_t realtime_now_ns) {
  ProcessInfo p;
  p.rank = who.rank;
  p.local_rank = who.local_rank;
  p.world_size = who.world_size;
  p.rank_source = who.source;
  p.pid = getpid();
  p.hostname = host_name();
  p.command = read_command_line();
  p.start_ns = cupti_now_ns;
  p.clock_offset_ns = realtime_now_ns - cupti_now_ns;
  return p;
}

Capture::Capture(std::unique_ptr<CuptiApi> api, SinkFactory make_sink, CaptureOptions options)
    : api_(std::move(api)),
      make_sink_(std::move(make_sink)),
      options_(std::move(options)),
      converter_([this](bool driver, uint32_t cbid) { return api_->api_name(driver, cbid); },
                 [this](uint32_t domain, uint64_t payload) {
                   return api_->take_nvtx_message_bytes(domain, payload);
                 }) {
  if (!options_.env)
    options_.env = [](const char* name) { return static_cast<const char*>(std::getenv(name)); };
}

Capture::~Capture() { stop(); }

std::ostream& Capture::warnings() const {
  return options_.warnings ? *options_.warnings : std::cerr;
}

bool Capture::check(CUptiResult result, const char* call, const char* file, int line) {
  if (result == CUPTI_SUCCESS) return true;
  fail(call, file, line, api_->result_text(result));
  return false;
}

void Capture::fail(const char* call, const char* file, int line, const std::string& message) {
  active_ = false;
  if (warned_.exchange(true)) return;
  warnings() << "mpsim profile: " << call << " failed at " << file << ":" << line << ": " << message
             << "; profiling stopped\n";
  warnings().flush();
  wake_.notify_all();
}

bool Capture::start() {
  if (active_ || stopped_) return active_;
  const CUptiResult subscribed = api_->subscribe();
  if (subscribed == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
    warned_ = true;
    warnings() << "mpsim profile: CUPTI is already in use by another tool (nsys, Kineto, ...); "
                  "the program runs unprofiled\n";
    return false;
  }
  if (!MPSIM_CUPTI_CHECK(subscribed)) return false;
  uint64_t now = 0;
  if (!MPSIM_CUPTI_CHECK(api_->timestamp(&now))) return false;
  process_ = describe_process(rank_from_env(options_.env, getpid()), static_cast<int64_t>(now),
                              realtime_ns());
  try {
    sink_ = make_sink_(process_);
  } catch (const std::exception& e) {
    fail("opening the trace database", __FILE__, __LINE__, e.what());
    return false;
  }
  Capture* expected = nullptr;
  if (!g_started.compare_exchange_strong(expected, this)) {
    fail("Capture::start", __FILE__, __LINE__, "another capture is running in this process");
    return false;
  }
  active_ = true;
  if (!MPSIM_CUPTI_CHECK(api_->register_callbacks(on_buffer_requested, on_buffer_completed)) ||
      !enable_kinds()) {
    return false;
  }
  flusher_ = std::thread([this] { flush_loop(); });
  return true;
}

bool Capture::enable_kinds() {
  for (CUpti_ActivityKind kind : kKinds) {
    if (!MPSIM_CUPTI_CHECK(api_->enable(kind))) return false;
  }
  return true;
}

void Capture::disable_kinds() {
  for (CUpti_ActivityKind kind : kKinds) api_->disable(kind);  // best effort: we are stopping
}

void Capture::flush_loop() {
  std::unique_lock lock(wake_mutex_);
  while (!stopping_ && active_) {
    wake_.wait_for(lock, options_.flush_period);
    if (stopping_ || !active_) break;
    lock.unlock();
    if (MPSIM_CUPTI_CHECK(api_->flush_all(false))) write_pending();
    lock.lock();
  }
  const bool failed = !stopping_;
  lock.unlock();
  if (failed) disable_kinds();  // profiling stopped: spare the program CUPTI's cost
}

void Capture::stop() {
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  if (g_started.load() != this) return;  // never started
  if (active_ && MPSIM_CUPTI_CHECK(api_->flush_all(true))) write_pending();
  disable_kinds();
  uint64_t now = 0;
  api_->timestamp(&now);
  std::lock_guard lock(sink_mutex_);
  if (sink_ && !warned_) {
    try {
      sink_->finish(static_cast<int64_t>(now));
    } catch (const std::exception& e) {
      fail("TraceWriter::finish", __FILE__, __LINE__, e.what());
    }
  }
  sink_.reset();
  active_ = false;
  g_started = nullptr;
}

void Capture::buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *max_records = 0;  // as many as fit
  *size = active_ ? options_.buffer_bytes : 0;
  *buffer = active_ ? static_cast<uint8_t*>(std::aligned_alloc(8, options_.buffer_bytes)) : nullptr;
  if (!*buffer) *size = 0;
}

void Capture::buffer_completed(CUcontext context, uint32_t stream, uint8_t* buffer, size_t valid) {
  if (active_) {
    std::lock_guard lock(records_mutex_);
    const WalkResult walk = walk_buffer(*api_, buffer, valid, converter_, pending_);
    if (walk.status != CUPTI_SUCCESS) {
      check(walk.status, "cuptiActivityGetNextRecord(buffer, valid, &record)", __FILE__, __LINE__);
    }
    size_t dropped = 0;
    if (active_ && MPSIM_CUPTI_CHECK(api_->dropped_records(context, stream, &dropped))) {
      pending_.dropped_records += static_cast<int64_t>(dropped);
    }
  }
  std::free(buffer);
}

void Capture::write_pending() {
  RecordBatch batch;
  {
    std::lock_guard lock(records_mutex_);
    std::swap(batch, pending_);
  }
  if (batch.empty() || !active_) return;
  std::lock_guard lock(sink_mutex_);
  if (!sink_) return;
  try {
    sink_->write(batch);
  } catch (const std::exception& e) {
    fail("TraceWriter::write", __FILE__, __LINE__, e.what());
  }
}

}  // namespace mpsim::profiler::cupti
