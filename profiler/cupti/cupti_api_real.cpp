// CuptiApi on libcupti: each method is the one CUPTI call it is named after.
#include "profiler/cupti/activity_buffer.h"

namespace mpsim::profiler::cupti {
namespace {

void CUPTIAPI ignore_callback(void*, CUpti_CallbackDomain, CUpti_CallbackId, const void*) {}

class RealCuptiApi final : public CuptiApi {
 public:
  CUptiResult subscribe() override {
    return cuptiSubscribe(&subscriber_, reinterpret_cast<CUpti_CallbackFunc>(ignore_callback),
                          nullptr);
  }
  CUptiResult unsubscribe() override { return cuptiUnsubscribe(subscriber_); }
  CUptiResult register_callbacks(CUpti_BuffersCallbackRequestFunc requested,
                                 CUpti_BuffersCallbackCompleteFunc completed) override {
    return cuptiActivityRegisterCallbacks(requested, completed);
  }
  CUptiResult enable(CUpti_ActivityKind kind) override { return cuptiActivityEnable(kind); }
  CUptiResult disable(CUpti_ActivityKind kind) override { return cuptiActivityDisable(kind); }
  CUptiResult flush_all(bool forced) override {
    return cuptiActivityFlushAll(forced ? CUPTI_ACTIVITY_FLAG_FLUSH_FORCED : 0);
  }
  CUptiResult next_record(uint8_t* buffer, size_t valid, CUpti_Activity** record) override {
    return cuptiActivityGetNextRecord(buffer, valid, record);
  }
  CUptiResult timestamp(uint64_t* ns) override { return cuptiGetTimestamp(ns); }
  CUptiResult dropped_records(CUcontext context, uint32_t stream, size_t* dropped) override {
    return cuptiActivityGetNumDroppedRecords(context, stream, dropped);
  }
  std::string result_text(CUptiResult result) override {
    const char* text = nullptr;
    if (cuptiGetErrorMessage(result, &text) == CUPTI_SUCCESS && text) return text;
    if (cuptiGetResultString(result, &text) == CUPTI_SUCCESS && text) return text;
    return "CUPTI error " + std::to_string(static_cast<int>(result));
  }
  std::string api_name(bool driver, uint32_t cbid) override {
    const char* name = nullptr;
    const auto domain = driver ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API;
    if (cuptiGetCallbackName(domain, cbid, &name) == CUPTI_SUCCESS && name) return name;
    return (driver ? "driver#" : "runtime#") + std::to_string(cbid);
  }

 private:
  CUpti_SubscriberHandle subscriber_ = nullptr;
};

}  // namespace

std::unique_ptr<CuptiApi> make_real_cupti_api() { return std::make_unique<RealCuptiApi>(); }

}  // namespace mpsim::profiler::cupti
