// The injection library, libmpsim_inject.so. The CUDA driver loads it from CUDA_INJECTION64_PATH
// and calls InitializeInjection() at cuInit; NVTX loads it from NVTX_INJECTION64_PATH and calls
// InitializeInjectionNvtx2(), which we forward to libcupti's own so that NVTX ranges reach CUPTI
// as MARKER activities. Output: one trace database per process at
// rank_path($MPSIM_PROFILE_OUTPUT, rank, pid). Nothing here aborts or throws into the program.
#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>

#include "profiler/cupti/capture.h"
#include "profiler/store/trace_store.h"

namespace {

using mpsim::profiler::ProcessInfo;
using mpsim::profiler::RecordBatch;
using mpsim::profiler::TraceWriter;
namespace cupti = mpsim::profiler::cupti;

constexpr const char* kDefaultOutput = "mpsim_profile.sqlite";

// The TraceWriter as the capture's sink.
class WriterSink final : public cupti::BatchSink {
 public:
  explicit WriterSink(const ProcessInfo& process)
      : writer_(mpsim::profiler::rank_path(output_pattern(), process.rank, process.pid), process) {}
  void write(const RecordBatch& batch) override { writer_.write(batch); }
  void finish(int64_t end_ns) override { writer_.finish(end_ns); }

 private:
  static std::string output_pattern() {
    const char* pattern = std::getenv("MPSIM_PROFILE_OUTPUT");
    return pattern && *pattern ? pattern : kDefaultOutput;
  }
  TraceWriter writer_;
};

// The process's one capture: created at the first InitializeInjection, stopped at exit.
std::unique_ptr<cupti::Capture>& the_capture() {
  static auto* capture = new std::unique_ptr<cupti::Capture>();  // never destroyed: atexit stops it
  return *capture;
}

void stop_at_exit() {
  if (auto& capture = the_capture()) capture->stop();
}

void start_capture() {
  auto& capture = the_capture();
  capture = std::make_unique<cupti::Capture>(
      cupti::make_real_cupti_api(),
      [](const ProcessInfo& p) { return std::make_unique<WriterSink>(p); });
  if (capture->start()) std::atexit(stop_at_exit);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int InitializeInjection(void) {
  static std::once_flag once;
  try {
    std::call_once(once, start_capture);
  } catch (const std::exception& e) {
    std::cerr << "mpsim profile: starting the capture failed: " << e.what()
              << "; profiling stopped\n";
  }
  return 1;  // the driver goes on whatever happened here
}

// libcupti's own NVTX entry point `name`, or null (with one message) if it cannot be found.
static void* cupti_nvtx_entry(const char* name) {
  void* cupti_lib = dlopen("libcupti.so.13", RTLD_NOW | RTLD_GLOBAL);
  if (!cupti_lib) cupti_lib = dlopen("libcupti.so", RTLD_NOW | RTLD_GLOBAL);
  void* entry = cupti_lib ? dlsym(cupti_lib, name) : nullptr;
  if (!entry) {
    std::cerr << "mpsim profile: dlsym(libcupti, \"" << name
              << "\") failed: " << (cupti_lib ? "symbol not found" : dlerror())
              << "; NVTX data is not recorded\n";
  }
  return entry;
}

// NVTX's injection entry; the argument is NVTX's export-table getter (NvtxGetExportTableFunc_t).
extern "C" __attribute__((visibility("default"))) int InitializeInjectionNvtx2(
    const void* (*get_export_table)(uint32_t)) {
  using Entry = int (*)(const void* (*)(uint32_t));
  auto entry = reinterpret_cast<Entry>(cupti_nvtx_entry("InitializeInjectionNvtx2"));
  return entry ? entry(get_export_table) : 0;  // 0: NVTX stays inactive; the program runs on
}

// NVTX extension modules (payload schemas, as NCCL registers them) initialise through this
// entry; forwarded to libcupti so that extended payloads reach CUPTI's MARKER_DATA records.
extern "C" __attribute__((visibility("default"))) int InitializeInjectionNvtxExtension(
    void* module_info) {
  using Entry = int (*)(void*);
  auto entry = reinterpret_cast<Entry>(cupti_nvtx_entry("InitializeInjectionNvtxExtension"));
  return entry ? entry(module_info) : 0;
}
