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

// NVTX's injection entry; the argument is NVTX's export-table getter (NvtxGetExportTableFunc_t).
extern "C" __attribute__((visibility("default"))) int InitializeInjectionNvtx2(
    const void* (*get_export_table)(uint32_t)) {
  using Entry = int (*)(const void* (*)(uint32_t));
  void* cupti_lib = dlopen("libcupti.so.13", RTLD_NOW | RTLD_GLOBAL);
  if (!cupti_lib) cupti_lib = dlopen("libcupti.so", RTLD_NOW | RTLD_GLOBAL);
  auto entry = cupti_lib ? reinterpret_cast<Entry>(dlsym(cupti_lib, "InitializeInjectionNvtx2"))
                         : nullptr;
  if (!entry) {
    std::cerr << "mpsim profile: dlsym(libcupti, \"InitializeInjectionNvtx2\") failed: "
              << (cupti_lib ? "symbol not found" : dlerror()) << "; NVTX ranges are not recorded\n";
    return 0;  // NVTX stays inactive; the program runs on
  }
  return entry(get_export_table);
}
