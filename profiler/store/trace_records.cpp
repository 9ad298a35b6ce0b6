// Record helpers that need no database (see trace_records.h).
#include "profiler/store/trace_records.h"

namespace mpsim::profiler {

bool is_nccl_kernel(const std::string& name) {
  return name.starts_with("ncclDevKernel_") || name.starts_with("ncclKernel_");
}

}  // namespace mpsim::profiler
