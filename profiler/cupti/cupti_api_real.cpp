// CuptiApi on libcupti: each method is the one CUPTI call it is named after.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <utility>

// Types only: the NVTX payload extension's implementation lives in the programs that use it.
#define NVTX_NO_IMPL
#include <nvtx3/nvToolsExtPayload.h>

#include "profiler/cupti/activity_buffer.h"

// Exported by libcupti since CUDA 13.0 but not declared in its headers: the attributes (schema or
// enum) a program registered for NVTX extended payloads in one domain. CUPTI allocates
// `attributes` and the schema's entries with malloc; the caller frees both.
extern "C" CUptiResult CUPTIAPI cuptiActivityGetNvtxExtPayloadAttr(
    uint32_t cupti_domain_id, uint64_t schema_id, CUpti_NvtxExtPayloadAttr* attributes);

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
  // NCCL describes each collective with an NVTX extended payload whose schema has a
  // "Message size [bytes]" entry; the first integer entry whose name mentions a size or bytes is
  // read. CUPTI's copy of the payload (nvtxPayloadData_t and its blob) is freed here.
  std::optional<int64_t> take_nvtx_message_bytes(uint32_t cupti_domain_id,
                                                 uint64_t payload_address) override {
    auto* data = reinterpret_cast<nvtxPayloadData_t*>(payload_address);
    if (data == nullptr) return std::nullopt;
    std::optional<int64_t> bytes;
    const SizeField field = size_field(cupti_domain_id, data->schemaId);
    if (debug_) {
      std::fprintf(stderr,
                   "mpsim profile: payload domain %u schema %llu size %zu -> field %llu/%u\n",
                   cupti_domain_id, static_cast<unsigned long long>(data->schemaId), data->size,
                   static_cast<unsigned long long>(field.offset), field.width);
    }
    if (field.width != 0 && data->payload != nullptr && field.offset + field.width <= data->size) {
      uint64_t value = 0;  // little-endian hosts: the low bytes hold narrower integers
      std::memcpy(&value, static_cast<const char*>(data->payload) + field.offset, field.width);
      bytes = static_cast<int64_t>(value);
    }
    std::free(const_cast<void*>(data->payload));
    std::free(data);
    return bytes;
  }

  std::string api_name(bool driver, uint32_t cbid) override {
    const char* name = nullptr;
    const auto domain = driver ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API;
    if (cuptiGetCallbackName(domain, cbid, &name) == CUPTI_SUCCESS && name) return name;
    return (driver ? "driver#" : "runtime#") + std::to_string(cbid);
  }

 private:
  struct SizeField {
    uint64_t offset = 0;
    uint32_t width = 0;  // 0: the schema has no message size
  };

  static uint32_t integer_width(uint64_t type) {
    switch (type) {
      case NVTX_PAYLOAD_ENTRY_TYPE_INT32:
      case NVTX_PAYLOAD_ENTRY_TYPE_UINT32:
        return 4;
      case NVTX_PAYLOAD_ENTRY_TYPE_INT64:
      case NVTX_PAYLOAD_ENTRY_TYPE_UINT64:
      case NVTX_PAYLOAD_ENTRY_TYPE_SIZE:
        return 8;
      default:
        return 0;
    }
  }

  static bool names_a_size(const char* name) {
    if (name == nullptr) return false;
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower.find("size") != std::string::npos || lower.find("bytes") != std::string::npos;
  }

  // Where a schema keeps its message size; looked up once per (domain, schema).
  SizeField size_field(uint32_t domain, uint64_t schema) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto key = std::make_pair(domain, schema);
    if (auto it = fields_.find(key); it != fields_.end()) return it->second;
    SizeField field;
    CUpti_NvtxExtPayloadAttr attr{};
    attr.structSize = sizeof(attr);
    const CUptiResult status = cuptiActivityGetNvtxExtPayloadAttr(domain, schema, &attr);
    if (debug_) {
      std::fprintf(stderr,
                   "mpsim profile: schema lookup %u/%llu: status %d type %u attributes %p\n",
                   domain, static_cast<unsigned long long>(schema), static_cast<int>(status),
                   attr.type, attr.attributes);
    }
    if (status == CUPTI_SUCCESS && attr.attributes != nullptr) {
      if (attr.type == CUPTI_NVTX_EXT_PAYLOAD_TYPE_SCHEMA) {
        auto* schema_attr = static_cast<nvtxPayloadSchemaAttr_t*>(attr.attributes);
        field = find_size(*schema_attr);
        std::free(const_cast<nvtxPayloadSchemaEntry_t*>(schema_attr->entries));
      } else if (attr.type == CUPTI_NVTX_EXT_PAYLOAD_TYPE_ENUM) {
        auto* enum_attr = static_cast<nvtxPayloadEnumAttr_t*>(attr.attributes);
        std::free(const_cast<nvtxPayloadEnum_t*>(enum_attr->entries));
      }
      std::free(attr.attributes);
    }
    fields_[key] = field;
    return field;
  }

  // Entries carry explicit offsets (NCCL's use offsetof); an entry after the first with offset 0
  // is placed at the next offset aligned to its size, as a C struct would be.
  static SizeField find_size(const nvtxPayloadSchemaAttr_t& schema) {
    uint64_t next = 0;
    for (size_t i = 0; i < schema.numEntries && schema.entries != nullptr; ++i) {
      const nvtxPayloadSchemaEntry_t& entry = schema.entries[i];
      const uint32_t width = integer_width(entry.type);
      const uint64_t align = width != 0 ? width : 8;
      uint64_t offset = entry.offset;
      if (offset == 0 && i > 0) offset = (next + align - 1) / align * align;
      if (std::getenv("MPSIM_PROFILE_DEBUG")) {
        std::fprintf(stderr, "mpsim profile:   entry %zu '%s' type %llu offset %llu\n", i,
                     entry.name ? entry.name : "", static_cast<unsigned long long>(entry.type),
                     static_cast<unsigned long long>(entry.offset));
      }
      if (width != 0 && names_a_size(entry.name)) return {offset, width};
      next = offset + align;
    }
    return {};
  }

  CUpti_SubscriberHandle subscriber_ = nullptr;
  const bool debug_ = std::getenv("MPSIM_PROFILE_DEBUG") != nullptr;  // decoding diagnostics
  std::mutex mutex_;
  std::map<std::pair<uint32_t, uint64_t>, SizeField> fields_;
};

}  // namespace

std::unique_ptr<CuptiApi> make_real_cupti_api() { return std::make_unique<RealCuptiApi>(); }

}  // namespace mpsim::profiler::cupti
