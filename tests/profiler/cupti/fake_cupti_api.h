// A CuptiApi for tests: hands out synthetic activity records, records what was enabled, and fails
// the calls a test asks it to fail.
#pragma once

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "profiler/cupti/activity_buffer.h"

namespace mpsim::profiler::cupti::testing {

class FakeCuptiApi final : public CuptiApi {
 public:
  // Appends a copy of `activity` to the records the next buffer walk returns.
  template <typename Activity>
  void add(const Activity& activity) {
    auto* copy = static_cast<Activity*>(std::malloc(sizeof(Activity)));
    std::memcpy(copy, &activity, sizeof(Activity));
    storage_.emplace_back(copy, std::free);
    records_.push_back(reinterpret_cast<CUpti_Activity*>(copy));
  }

  CUptiResult subscribe() override { return subscribe_result; }
  CUptiResult unsubscribe() override { return CUPTI_SUCCESS; }
  CUptiResult register_callbacks(CUpti_BuffersCallbackRequestFunc,
                                 CUpti_BuffersCallbackCompleteFunc) override {
    return CUPTI_SUCCESS;
  }
  CUptiResult enable(CUpti_ActivityKind kind) override {
    if (kind == fail_enable_of) return CUPTI_ERROR_NOT_COMPATIBLE;
    enabled.push_back(kind);
    return CUPTI_SUCCESS;
  }
  CUptiResult disable(CUpti_ActivityKind kind) override { return CUPTI_SUCCESS; }
  CUptiResult flush_all(bool forced) override {
    ++flushes;
    return CUPTI_SUCCESS;
  }
  // Walks records_ the way CUPTI does: *record is the cursor, nullptr before the first.
  CUptiResult next_record(uint8_t*, size_t, CUpti_Activity** record) override {
    if (fail_next_record) return CUPTI_ERROR_INVALID_KIND;
    size_t next = 0;
    if (*record) {
      while (next < records_.size() && records_[next] != *record) ++next;
      ++next;
    }
    if (next >= records_.size()) return CUPTI_ERROR_MAX_LIMIT_REACHED;
    *record = records_[next];
    return CUPTI_SUCCESS;
  }
  CUptiResult timestamp(uint64_t* ns) override {
    *ns = 1'000'000;
    return CUPTI_SUCCESS;
  }
  CUptiResult dropped_records(CUcontext, uint32_t, size_t* dropped) override {
    *dropped = dropped_per_buffer;
    return CUPTI_SUCCESS;
  }
  std::string result_text(CUptiResult result) override {
    return "fake error " + std::to_string(static_cast<int>(result));
  }
  std::string api_name(bool driver, uint32_t cbid) override {
    return (driver ? "cuFake" : "cudaFake") + std::to_string(cbid);
  }

  CUptiResult subscribe_result = CUPTI_SUCCESS;
  CUpti_ActivityKind fail_enable_of = CUPTI_ACTIVITY_KIND_INVALID;
  bool fail_next_record = false;
  size_t dropped_per_buffer = 0;
  int flushes = 0;
  std::vector<CUpti_ActivityKind> enabled;

 private:
  std::vector<std::unique_ptr<void, void (*)(void*)>> storage_;
  std::vector<CUpti_Activity*> records_;
};

}  // namespace mpsim::profiler::cupti::testing
