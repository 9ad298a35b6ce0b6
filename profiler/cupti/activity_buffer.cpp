#include "profiler/cupti/activity_buffer.h"

namespace mpsim::profiler::cupti {

WalkResult walk_buffer(CuptiApi& api, uint8_t* buffer, size_t valid, ActivityConverter& converter,
                       RecordBatch& batch) {
  WalkResult result;
  if (!buffer || valid == 0) return result;
  CUpti_Activity* record = nullptr;
  for (;;) {
    const CUptiResult status = api.next_record(buffer, valid, &record);
    if (status == CUPTI_ERROR_MAX_LIMIT_REACHED) return result;  // the buffer's end
    if (status != CUPTI_SUCCESS) {
      result.status = status;
      return result;
    }
    converter.add(*record, batch);
    ++result.records;
  }
}

}  // namespace mpsim::profiler::cupti
