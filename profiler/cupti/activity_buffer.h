// The CUPTI calls the profiler makes, behind one small interface (as Kineto does), and the walk
// over one completed activity buffer.
//
// CuptiApi has one real implementation, make_real_cupti_api() (cupti_api_real.cpp, linked only
// into the injection library), calling libcupti, and fakes in the tests that hand out synthetic
// records. Every method returns CUPTI's result code; callers check it (capture.cpp's
// MPSIM_CUPTI_CHECK) and never let a failure escape into the observed program.
//
// walk_buffer() calls next_record() until CUPTI_ERROR_MAX_LIMIT_REACHED (the normal end of a
// buffer) and hands each record to the converter; any other code ends the walk and is returned.
#pragma once

#include <cupti.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "profiler/cupti/activity_convert.h"

namespace mpsim::profiler::cupti {

class CuptiApi {
 public:
  virtual ~CuptiApi() = default;
  // cuptiSubscribe with a callback that does nothing: fails with
  // CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED when another tool (nsys, Kineto) holds CUPTI.
  virtual CUptiResult subscribe() = 0;
  virtual CUptiResult unsubscribe() = 0;
  virtual CUptiResult register_callbacks(CUpti_BuffersCallbackRequestFunc requested,
                                         CUpti_BuffersCallbackCompleteFunc completed) = 0;
  virtual CUptiResult enable(CUpti_ActivityKind kind) = 0;
  virtual CUptiResult disable(CUpti_ActivityKind kind) = 0;
  virtual CUptiResult flush_all(bool forced) = 0;
  virtual CUptiResult next_record(uint8_t* buffer, size_t valid, CUpti_Activity** record) = 0;
  virtual CUptiResult timestamp(uint64_t* ns) = 0;
  virtual CUptiResult dropped_records(CUcontext context, uint32_t stream, size_t* dropped) = 0;
  virtual std::string result_text(CUptiResult result) = 0;
  // The API function's name for a runtime (driver = false) or driver API callback id.
  virtual std::string api_name(bool driver, uint32_t cbid) = 0;
  // See PayloadDecoder (activity_convert.h); frees CUPTI's copy of the payload.
  virtual std::optional<int64_t> take_nvtx_message_bytes(uint32_t cupti_domain_id,
                                                         uint64_t payload_address) {
    return std::nullopt;
  }
};

// Calls libcupti. Defined in cupti_api_real.cpp.
std::unique_ptr<CuptiApi> make_real_cupti_api();

struct WalkResult {
  CUptiResult status = CUPTI_SUCCESS;  // CUPTI_SUCCESS when the buffer was read to its end
  int64_t records = 0;
};

WalkResult walk_buffer(CuptiApi& api, uint8_t* buffer, size_t valid, ActivityConverter& converter,
                       RecordBatch& batch);

}  // namespace mpsim::profiler::cupti
