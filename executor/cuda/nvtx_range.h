// An NVTX range for the lifetime of a scope (push on construction, pop on destruction), on the
// calling thread. Ranges cost a few hundred nanoseconds when no tool listens; the trainer can
// switch them off.
#pragma once

#include <nvtx3/nvToolsExt.h>

#include <string>

namespace mpsim::executor {

class NvtxRange {
 public:
  NvtxRange(bool enabled, const std::string& name) : enabled_(enabled) {
    if (enabled_) nvtxRangePushA(name.c_str());
  }
  ~NvtxRange() {
    if (enabled_) nvtxRangePop();
  }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;

 private:
  bool enabled_;
};

}  // namespace mpsim::executor
