#include "profiler/cupti/capture.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <stdexcept>

#include "fake_cupti_api.h"

namespace mpsim::profiler::cupti {
namespace {

using testing::FakeCuptiApi;

struct SinkLog {
  std::vector<RecordBatch> batches;
  int64_t finished_at = -1;
  ProcessInfo process;
  bool throw_on_write = false;
};

class VectorSink final : public BatchSink {
 public:
  explicit VectorSink(SinkLog& log) : log_(log) {}
  void write(const RecordBatch& batch) override {
    if (log_.throw_on_write) throw std::runtime_error("disk full");
    log_.batches.push_back(batch);
  }
  void finish(int64_t end_ns) override { log_.finished_at = end_ns; }

 private:
  SinkLog& log_;
};

struct Fixture {
  SinkLog log;
  std::ostringstream warnings;
  FakeCuptiApi* api = nullptr;
  std::unique_ptr<Capture> capture;

  Fixture(std::map<std::string, std::string> env = {{"RANK", "3"}, {"WORLD_SIZE", "8"}}) {
    auto fake = std::make_unique<FakeCuptiApi>();
    api = fake.get();
    CaptureOptions options;
    options.flush_period = std::chrono::hours(1);  // the test drives the writes
    options.buffer_bytes = 1024;
    options.warnings = &warnings;
    env_ = std::move(env);
    options.env = [this](const char* name) {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
    capture = std::make_unique<Capture>(
        std::move(fake),
        [this](const ProcessInfo& p) {
          log.process = p;
          return std::make_unique<VectorSink>(log);
        },
        options);
  }
  // Hands the capture one completed buffer holding what api->add() queued.
  void complete_buffer() {
    uint8_t* buffer = nullptr;
    size_t size = 0, max_records = 0;
    capture->buffer_requested(&buffer, &size, &max_records);
    ASSERT_NE(buffer, nullptr);
    capture->buffer_completed(nullptr, 0, buffer, size);
  }

 private:
  std::map<std::string, std::string> env_;
};

KernelActivity kernel(const char* name) {
  KernelActivity k{};
  k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  k.name = name;
  k.start = 10, k.end = 20;
  return k;
}

TEST(RankFromEnv, TakesTheFirstRankVariableElseThePid) {
  std::map<std::string, std::string> env{{"SLURM_PROCID", "5"},
                                         {"OMPI_COMM_WORLD_RANK", "6"},
                                         {"SLURM_NTASKS", "16"},
                                         {"SLURM_LOCALID", "1"}};
  auto lookup = [&env](const char* name) {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  RankIdentity who = rank_from_env(lookup, 4242);
  EXPECT_EQ(who.rank, 5);
  EXPECT_EQ(who.source, "SLURM_PROCID");
  EXPECT_EQ(who.world_size, 16);
  EXPECT_EQ(who.local_rank, 1);
  env = {{"RANK", "not a number"}};
  who = rank_from_env(lookup, 4242);
  EXPECT_EQ(who.rank, 4242);
  EXPECT_EQ(who.source, "pid");
  EXPECT_EQ(who.world_size, 1);
}

TEST(Capture, EnablesConcurrentKernelsNeverTheSerializingKind) {
  Fixture f;
  ASSERT_TRUE(f.capture->start());
  const auto& on = f.api->enabled;
  EXPECT_NE(std::find(on.begin(), on.end(), CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), on.end());
  EXPECT_EQ(std::find(on.begin(), on.end(), CUPTI_ACTIVITY_KIND_KERNEL), on.end());
  EXPECT_NE(std::find(on.begin(), on.end(), CUPTI_ACTIVITY_KIND_MARKER), on.end());
  EXPECT_NE(std::find(on.begin(), on.end(), CUPTI_ACTIVITY_KIND_MARKER_DATA), on.end());
  f.capture->stop();
}

TEST(Capture, WritesCompletedBuffersAndFinishesAtStop) {
  Fixture f;
  f.api->dropped_per_buffer = 2;
  ASSERT_TRUE(f.capture->start());
  EXPECT_EQ(f.log.process.rank, 3);
  EXPECT_EQ(f.log.process.world_size, 8);
  EXPECT_EQ(f.log.process.rank_source, "RANK");
  EXPECT_EQ(f.log.process.start_ns, 1'000'000);
  EXPECT_FALSE(f.log.process.hostname.empty());
  f.api->add(kernel("_Z1kv"));
  f.complete_buffer();
  f.capture->write_pending();
  ASSERT_EQ(f.log.batches.size(), 1u);
  ASSERT_EQ(f.log.batches[0].kernels.size(), 1u);
  EXPECT_EQ(f.log.batches[0].kernels[0].demangled_name, "k()");
  EXPECT_EQ(f.log.batches[0].dropped_records, 2);
  f.capture->stop();
  EXPECT_EQ(f.log.finished_at, 1'000'000);
  EXPECT_GE(f.api->flushes, 1);  // the forced flush at stop
  EXPECT_TRUE(f.warnings.str().empty()) << f.warnings.str();
}

TEST(Capture, AFailingCallStopsProfilingWithOneWarning) {
  Fixture f;
  f.api->fail_enable_of = CUPTI_ACTIVITY_KIND_MEMSET;
  EXPECT_NO_THROW(EXPECT_FALSE(f.capture->start()));
  EXPECT_FALSE(f.capture->active());
  const std::string text = f.warnings.str();
  EXPECT_EQ(text.rfind("mpsim profile: api_->enable(kind) failed at ", 0), 0u) << text;
  EXPECT_NE(text.find("capture.cpp:"), std::string::npos) << text;
  EXPECT_NE(text.find(": fake error"), std::string::npos) << text;
  EXPECT_NE(text.find("; profiling stopped\n"), std::string::npos) << text;
  EXPECT_NO_THROW(f.capture->stop());
  EXPECT_EQ(f.log.finished_at, -1);
}

TEST(Capture, ABadBufferStopsProfilingWithoutThrowing) {
  Fixture f;
  ASSERT_TRUE(f.capture->start());
  f.api->add(kernel("k"));
  f.api->fail_next_record = true;
  EXPECT_NO_THROW(f.complete_buffer());
  EXPECT_FALSE(f.capture->active());
  EXPECT_NE(f.warnings.str().find("cuptiActivityGetNextRecord"), std::string::npos);
  EXPECT_NO_THROW(f.capture->stop());
}

TEST(Capture, ASinkThatThrowsStopsProfilingOnce) {
  Fixture f;
  ASSERT_TRUE(f.capture->start());
  f.log.throw_on_write = true;
  f.api->add(kernel("k"));
  f.complete_buffer();
  EXPECT_NO_THROW(f.capture->write_pending());
  EXPECT_FALSE(f.capture->active());
  uint8_t* buffer = nullptr;  // after the failure CUPTI gets no buffers: records are dropped
  size_t size = 1, max_records = 1;
  f.capture->buffer_requested(&buffer, &size, &max_records);
  EXPECT_EQ(buffer, nullptr);
  EXPECT_EQ(size, 0u);
  EXPECT_NO_THROW(f.capture->stop());
  const std::string text = f.warnings.str();
  EXPECT_NE(text.find("TraceWriter::write failed at "), std::string::npos) << text;
  EXPECT_NE(text.find("disk full; profiling stopped"), std::string::npos) << text;
  EXPECT_EQ(text.find("profiling stopped"), text.rfind("profiling stopped"));  // once
}

TEST(Capture, AnotherCuptiUserLeavesTheProgramUnprofiled) {
  Fixture f;
  f.api->subscribe_result = CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  EXPECT_FALSE(f.capture->start());
  EXPECT_NE(f.warnings.str().find("CUPTI is already in use"), std::string::npos);
  EXPECT_TRUE(f.api->enabled.empty());
  EXPECT_NO_THROW(f.capture->stop());
}

}  // namespace
}  // namespace mpsim::profiler::cupti
