#include "profiler/cupti/activity_convert.h"

#include <gtest/gtest.h>

#include <optional>
#include <utility>
#include <vector>

#include "fake_cupti_api.h"

namespace mpsim::profiler::cupti {
namespace {

KernelActivity kernel(const char* name, uint64_t start, uint64_t end, uint32_t correlation) {
  KernelActivity k{};
  k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  k.name = name;
  k.start = start, k.end = end;
  k.deviceId = 1, k.contextId = 2, k.streamId = 7, k.correlationId = correlation;
  k.gridX = 132, k.gridY = 2, k.gridZ = 1, k.blockX = 384, k.blockY = 1, k.blockZ = 1;
  k.registersPerThread = 168;
  k.staticSharedMemory = 1024, k.dynamicSharedMemory = 200704;
  return k;
}

MarkerActivity marker(uint32_t id, CUpti_ActivityFlag flag, uint64_t ts, uint32_t thread,
                      const char* name = nullptr, const char* domain = nullptr) {
  MarkerActivity m{};
  m.kind = CUPTI_ACTIVITY_KIND_MARKER;
  m.flags = flag;
  m.timestamp = ts;
  m.id = id;
  m.objectKind = CUPTI_ACTIVITY_OBJECT_THREAD;
  m.objectId.pt.threadId = thread;
  m.name = name;
  m.domain = domain;
  return m;
}

// CUPTI's records all start with the kind; the converter reads them through CUpti_Activity.
template <typename Activity>
const CUpti_Activity& as_activity(const Activity& a) {
  return *reinterpret_cast<const CUpti_Activity*>(static_cast<const void*>(&a));
}

ActivityConverter converter() {
  return ActivityConverter([](bool driver, uint32_t cbid) {
    return std::string(driver ? "cu" : "cuda") + std::to_string(cbid);
  });
}

TEST(Demangle, DemanglesCxxNamesAndKeepsCNames) {
  EXPECT_EQ(demangle("_Z3fooi"), "foo(int)");
  EXPECT_EQ(demangle("ncclDevKernel_AllReduce_Sum_f32_RING_LL"),
            "ncclDevKernel_AllReduce_Sum_f32_RING_LL");
  EXPECT_EQ(demangle("_Znot a name"), "_Znot a name");
  EXPECT_EQ(demangle(nullptr), "");
}

TEST(ConvertKernel, CopiesEveryField) {
  const KernelRecord r = convert_kernel(kernel("_Z6gemm_kILi128EEvPf", 100, 250, 42));
  EXPECT_EQ(r.start, 100);
  EXPECT_EQ(r.end, 250);
  EXPECT_EQ(r.device_id, 1u);
  EXPECT_EQ(r.context_id, 2u);
  EXPECT_EQ(r.stream_id, 7u);
  EXPECT_EQ(r.correlation_id, 42u);
  EXPECT_EQ(r.mangled_name, "_Z6gemm_kILi128EEvPf");
  EXPECT_EQ(r.demangled_name, "void gemm_k<128>(float*)");
  EXPECT_EQ(r.grid_x, 132);
  EXPECT_EQ(r.grid_y, 2);
  EXPECT_EQ(r.block_x, 384);
  EXPECT_EQ(r.registers_per_thread, 168);
  EXPECT_EQ(r.static_shared_bytes, 1024);
  EXPECT_EQ(r.dynamic_shared_bytes, 200704);
}

TEST(ConvertMemcpy, CopiesBytesAndKinds) {
  MemcpyActivity m{};
  m.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  m.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_HTOD;
  m.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_PINNED;
  m.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  m.bytes = 1 << 20, m.start = 5, m.end = 9, m.streamId = 3, m.correlationId = 11;
  const MemcpyRecord r = convert_memcpy(m);
  EXPECT_EQ(r.bytes, 1 << 20);
  EXPECT_EQ(r.copy_kind, 1);
  EXPECT_EQ(r.src_kind, CUPTI_ACTIVITY_MEMORY_KIND_PINNED);
  EXPECT_EQ(r.dst_kind, CUPTI_ACTIVITY_MEMORY_KIND_DEVICE);
  EXPECT_EQ(r.stream_id, 3u);
  EXPECT_EQ(r.correlation_id, 11u);
}

TEST(ActivityConverter, DispatchesByKindAndNamesApiCalls) {
  ActivityConverter c = converter();
  RecordBatch batch;
  const KernelActivity k = kernel("ncclDevKernel_AllReduce_Sum_f32_RING_LL", 1, 2, 3);
  CUpti_ActivityAPI api{};
  api.kind = CUPTI_ACTIVITY_KIND_RUNTIME;
  api.cbid = 211, api.start = 1, api.end = 2, api.threadId = 77, api.correlationId = 3;
  CUpti_ActivityAPI driver = api;
  driver.kind = CUPTI_ACTIVITY_KIND_DRIVER;
  MemsetActivity ms{};
  ms.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  ms.bytes = 64, ms.value = 7;
  SyncActivity sync{};
  sync.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
  sync.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE;
  OverheadActivity overhead{};
  overhead.kind = CUPTI_ACTIVITY_KIND_OVERHEAD;
  overhead.start = 10, overhead.end = 20;
  CUpti_Activity unknown{};
  unknown.kind = CUPTI_ACTIVITY_KIND_PC_SAMPLING;

  EXPECT_TRUE(c.add(as_activity(k), batch));
  EXPECT_TRUE(c.add(as_activity(api), batch));
  EXPECT_TRUE(c.add(as_activity(driver), batch));
  EXPECT_TRUE(c.add(as_activity(ms), batch));
  EXPECT_TRUE(c.add(as_activity(sync), batch));
  EXPECT_TRUE(c.add(as_activity(overhead), batch));
  EXPECT_FALSE(c.add(unknown, batch));

  ASSERT_EQ(batch.kernels.size(), 1u);
  ASSERT_EQ(batch.api_calls.size(), 2u);
  EXPECT_EQ(batch.api_calls[0].name, "cuda211");
  EXPECT_FALSE(batch.api_calls[0].driver);
  EXPECT_EQ(batch.api_calls[0].thread_id, 77u);
  EXPECT_EQ(batch.api_calls[0].correlation_id, batch.kernels[0].correlation_id);
  EXPECT_EQ(batch.api_calls[1].name, "cu211");
  EXPECT_TRUE(batch.api_calls[1].driver);
  ASSERT_EQ(batch.memsets.size(), 1u);
  EXPECT_EQ(batch.memsets[0].value, 7);
  ASSERT_EQ(batch.syncs.size(), 1u);
  EXPECT_EQ(batch.syncs[0].sync_type, 3);
  ASSERT_EQ(batch.overhead.size(), 1u);
  EXPECT_EQ(batch.overhead[0].end - batch.overhead[0].start, 10);
  EXPECT_EQ(c.skipped_records(), 1);
}

TEST(ActivityConverter, PairsMarkerStartAndEndAcrossBatches) {
  ActivityConverter c = converter();
  RecordBatch first, second;
  const auto start = marker(5, CUPTI_ACTIVITY_FLAG_MARKER_START, 100, 9, "gemm", "mpsim");
  MarkerDataActivity data{};
  data.kind = CUPTI_ACTIVITY_KIND_MARKER_DATA;
  data.id = 5;
  data.flags = CUPTI_ACTIVITY_FLAG_MARKER_COLOR_ARGB;
  data.color = 0xff00ff00;
  data.category = 4;
  data.payloadKind = CUPTI_METRIC_VALUE_KIND_UINT64;
  data.payload.metricValueUint64 = 67108864;
  const auto end = marker(5, CUPTI_ACTIVITY_FLAG_MARKER_END, 400, 9);
  c.add(as_activity(start), first);
  c.add(as_activity(data), first);
  EXPECT_TRUE(first.nvtx.empty());
  EXPECT_EQ(c.open_ranges(), 1u);
  c.add(as_activity(end), second);

  ASSERT_EQ(second.nvtx.size(), 1u);
  const NvtxRecord& r = second.nvtx[0];
  EXPECT_EQ(r.text, "gemm");
  EXPECT_EQ(r.domain, "mpsim");
  EXPECT_EQ(r.start, 100);
  EXPECT_EQ(r.end, 400);
  EXPECT_EQ(r.thread_id, 9u);
  EXPECT_EQ(r.event_type, kNvtxPushPopRange);
  EXPECT_EQ(r.color, 0xff00ff00u);
  EXPECT_EQ(r.category, 4);
  EXPECT_TRUE(r.has_int_payload);
  EXPECT_EQ(r.int_payload, 67108864);
  EXPECT_EQ(c.open_ranges(), 0u);
}

// NCCL's ranges carry NVTX extended payloads; the decoder (libcupti in the injection library)
// turns the CUPTI domain id and payload address into the message size.
TEST(ActivityConverter, ExtendedPayloadBecomesTheMessageSize) {
  std::vector<std::pair<uint32_t, uint64_t>> asked;
  ActivityConverter c([](bool, uint32_t) { return std::string(); },
                      [&asked](uint32_t domain, uint64_t address) -> std::optional<int64_t> {
                        asked.push_back({domain, address});
                        if (address == 0xbeef) return int64_t{67108864};
                        return std::nullopt;  // a schema without a size
                      });
  RecordBatch batch;
  for (uint32_t id : {7u, 8u}) {
    c.add(as_activity(
              marker(id, CUPTI_ACTIVITY_FLAG_MARKER_START, 10 * id, 1, "ncclAllReduce", "NCCL")),
          batch);
    MarkerDataActivity data{};
    data.kind = CUPTI_ACTIVITY_KIND_MARKER_DATA;
    data.id = id;
    data.payloadKind = CUPTI_METRIC_VALUE_KIND_NVTX_EXTENDED_PAYLOAD;
    data.payload.metricValueNvtxExtendedPayload = id == 7 ? 0xbeef : 0xf00d;
    data.cuptiDomainId = 3;
    c.add(as_activity(data), batch);
    c.add(as_activity(marker(id, CUPTI_ACTIVITY_FLAG_MARKER_END, 10 * id + 5, 1)), batch);
  }
  ASSERT_EQ(batch.nvtx.size(), 2u);
  EXPECT_TRUE(batch.nvtx[0].has_int_payload);
  EXPECT_EQ(batch.nvtx[0].int_payload, 67108864);
  EXPECT_FALSE(batch.nvtx[1].has_int_payload);
  EXPECT_EQ(asked, (std::vector<std::pair<uint32_t, uint64_t>>{{3, 0xbeef}, {3, 0xf00d}}));
}

TEST(ActivityConverter, RangeEndingOnAnotherThreadIsStartEnd) {
  ActivityConverter c = converter();
  RecordBatch batch;
  const auto start = marker(1, CUPTI_ACTIVITY_FLAG_MARKER_START, 10, 1, "load");
  const auto end = marker(1, CUPTI_ACTIVITY_FLAG_MARKER_END, 20, 2);
  c.add(as_activity(start), batch);
  c.add(as_activity(end), batch);
  ASSERT_EQ(batch.nvtx.size(), 1u);
  EXPECT_EQ(batch.nvtx[0].event_type, kNvtxStartEndRange);
  EXPECT_EQ(batch.nvtx[0].domain, "");
}

TEST(ActivityConverter, MarksAreEmittedAtOnceAndOrphanEndsSkipped) {
  ActivityConverter c = converter();
  RecordBatch batch;
  const auto mark = marker(3, CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS, 50, 1, "checkpoint");
  const auto orphan = marker(99, CUPTI_ACTIVITY_FLAG_MARKER_END, 60, 1);
  c.add(as_activity(mark), batch);
  c.add(as_activity(orphan), batch);
  ASSERT_EQ(batch.nvtx.size(), 1u);
  EXPECT_EQ(batch.nvtx[0].event_type, kNvtxMark);
  EXPECT_EQ(batch.nvtx[0].end, -1);
  EXPECT_EQ(batch.nvtx[0].text, "checkpoint");
  EXPECT_EQ(c.skipped_records(), 1);
}

TEST(WalkBuffer, ReadsEveryRecordUntilTheEnd) {
  testing::FakeCuptiApi api;
  api.add(kernel("a", 1, 2, 1));
  api.add(kernel("b", 3, 4, 2));
  ActivityConverter c = converter();
  RecordBatch batch;
  uint8_t buffer[8] = {};
  const WalkResult walk = walk_buffer(api, buffer, sizeof buffer, c, batch);
  EXPECT_EQ(walk.status, CUPTI_SUCCESS);
  EXPECT_EQ(walk.records, 2);
  ASSERT_EQ(batch.kernels.size(), 2u);
  EXPECT_EQ(batch.kernels[1].mangled_name, "b");
}

TEST(WalkBuffer, ReturnsAnErrorOtherThanTheEnd) {
  testing::FakeCuptiApi api;
  api.add(kernel("a", 1, 2, 1));
  api.fail_next_record = true;
  ActivityConverter c = converter();
  RecordBatch batch;
  uint8_t buffer[8] = {};
  EXPECT_EQ(walk_buffer(api, buffer, sizeof buffer, c, batch).status, CUPTI_ERROR_INVALID_KIND);
  EXPECT_TRUE(batch.kernels.empty());
}

}  // namespace
}  // namespace mpsim::profiler::cupti
