// Reading calibration measurements from hand-built databases (written with the store's
// TraceWriter): the bench's meta range, or a mark of that name, gives the database's software
// versions; a database without one (the committed traces/calibration ones) has unknown versions;
// the meta range is no measurement. Times are derived by hand from the records below.
#include "calibration/fit/calibration_measurements.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "profiler/store/trace_store.h"

namespace mpsim::calibration {
namespace {

namespace fs = std::filesystem;
using profiler::ApiRecord;
using profiler::GpuInfo;
using profiler::KernelRecord;
using profiler::NvtxRecord;
using profiler::ProcessInfo;
using profiler::RecordBatch;
using profiler::TraceWriter;

const std::string kMeta = "calib/meta/driver=13000,runtime=13000,cublas=130100,nccl=22803";
const SoftwareVersions kVersions{13000, 13000, 130100, 22803};

NvtxRecord nvtx(const std::string& text, int64_t start, int64_t end, int64_t reps = 0) {
  NvtxRecord r;
  r.start = start;
  r.end = end;
  r.event_type = end < 0 ? 34 : 59;  // mark, push/pop range
  r.thread_id = 7;
  r.text = text;
  r.has_int_payload = reps > 0;
  r.int_payload = reps;
  return r;
}

// One kernel [start, end) on GPU 0, launched at `launch` on thread 7.
void add_kernel(RecordBatch& b, const std::string& name, uint32_t correlation, int64_t launch,
                int64_t start, int64_t end) {
  KernelRecord k;
  k.start = start;
  k.end = end;
  k.correlation_id = correlation;
  k.mangled_name = k.demangled_name = name;
  b.kernels.push_back(k);
  ApiRecord a;
  a.start = launch;
  a.end = launch + 10;
  a.thread_id = 7;
  a.correlation_id = correlation;
  a.name = "cudaLaunchKernel";
  b.api_calls.push_back(a);
}

class CalibrationMeasurementsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mpsim-calibration-measurements-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A database of the bench's run: the `meta` record (none if empty), then a forward loss range
  // [2000, 3000) of 5 repetitions holding two kernels of 400 and 100 ns.
  std::string database(const std::vector<NvtxRecord>& meta) {
    const std::string path = (dir_ / ("db" + std::to_string(++count_) + ".sqlite")).string();
    ProcessInfo process;
    process.hostname = "testhost";
    process.command = "calibration_bench";
    process.start_ns = 1000;
    process.end_ns = 10000;
    RecordBatch b;
    b.nvtx = meta;
    b.nvtx.push_back(nvtx("calib/memory.loss.fwd/bytes=411041792", 2000, 3000, 5));
    add_kernel(b, "cross_entropy_partial_kernel", 1, 2100, 4000, 4400);
    add_kernel(b, "cross_entropy_combine_kernel", 2, 2200, 4400, 4500);
    GpuInfo gpu;
    gpu.name = "NVIDIA H100 80GB HBM3";
    b.gpus = {gpu};
    TraceWriter writer(path, process);
    writer.write(b);
    writer.finish(process.end_ns);
    return path;
  }

  fs::path dir_;
  int count_ = 0;
};

TEST_F(CalibrationMeasurementsTest, TheMetaRangeGivesTheVersionsAndIsNoMeasurement) {
  const CalibrationData data = read_calibration_data({database({nvtx(kMeta, 1500, 1500)})});
  ASSERT_EQ(data.sources.size(), 1u);
  ASSERT_TRUE(data.sources[0].versions.has_value());
  EXPECT_EQ(*data.sources[0].versions, kVersions);
  EXPECT_EQ(versions_text(data.sources[0].versions),
            "CUDA driver 13.0, CUDA runtime 13.0, cuBLAS 13.1.0, NCCL 2.28.3");
  ASSERT_EQ(data.measurements.size(), 1u);
  const CalibrationMeasurement& m = data.measurements[0];
  EXPECT_EQ(m.range.table, "memory.loss");
  EXPECT_EQ(m.range.measurement, "memory.loss.fwd");
  EXPECT_DOUBLE_EQ(m.seconds.all, 500e-9 / 5);
  EXPECT_TRUE(data.notes.empty());
}

TEST_F(CalibrationMeasurementsTest, AMarkServesAsWell) {
  const CalibrationData data = read_calibration_data({database({nvtx(kMeta, 1500, -1)})});
  EXPECT_EQ(data.sources[0].versions, kVersions);
}

TEST_F(CalibrationMeasurementsTest, WithoutMetaTheVersionsAreUnknown) {
  const CalibrationData data =
      read_calibration_data({database({}), "traces/calibration/h100.rank0.sqlite"});
  ASSERT_EQ(data.sources.size(), 2u);
  for (const CalibrationSource& s : data.sources) {
    EXPECT_FALSE(s.versions.has_value()) << s.path;
    EXPECT_EQ(versions_text(s.versions), "software versions unknown (not recorded)");
  }
}

TEST_F(CalibrationMeasurementsTest, ABrokenMetaRangeIsRefusedNamingTheDatabase) {
  const std::string path = database({nvtx("calib/meta/driver=13000", 1500, 1500)});
  try {
    read_calibration_data({path});
    FAIL() << "no error";
  } catch (const CalibrationError& e) {
    EXPECT_EQ(
        std::string(e.what()).rfind(path + ": calibration range 'calib/meta/driver=13000'", 0), 0u)
        << e.what();
  }
}

// Issue slots: each kernel is charged the idle time since the previous kernel of its stream
// (capped at 10 us), the first kernel the mean of the others'. Kernels [4000,4400), [4500,4600),
// [4900,5000), [25000,25100) on one stream: durations 700 ns, gaps 100, 300 and 20000 -> 10000
// (capped): 10400 ns, the first kernel's 10400 / 3 = 3466 ns (integer ns): 14566 ns over 5
// repetitions. A kernel on another stream starts its own count: [4000, 4200) alone adds 200 ns.
TEST_F(CalibrationMeasurementsTest, TimesAreIssueSlotsWithCappedLaunchGaps) {
  const std::string path = (dir_ / "slots.sqlite").string();
  ProcessInfo process;
  process.start_ns = 1000;
  process.end_ns = 30000;
  RecordBatch b;
  b.nvtx.push_back(nvtx("calib/memory.elementwise/bytes=1048576", 2000, 3000, 5));
  add_kernel(b, "bias_gelu_forward", 1, 2100, 4000, 4400);
  add_kernel(b, "bias_gelu_forward", 2, 2200, 4500, 4600);
  add_kernel(b, "bias_gelu_forward", 3, 2300, 4900, 5000);
  add_kernel(b, "bias_gelu_forward", 4, 2400, 25000, 25100);
  add_kernel(b, "bias_gelu_forward", 5, 2500, 4000, 4200);
  b.kernels.back().stream_id = 9;
  TraceWriter writer(path, process);
  writer.write(b);
  writer.finish(process.end_ns);
  const CalibrationData data = read_calibration_data({path});
  ASSERT_EQ(data.measurements.size(), 1u);
  EXPECT_DOUBLE_EQ(data.measurements[0].seconds.all, (14566 + 200) * 1e-9 / 5);
}

TEST(SoftwareVersionsTest, NcclBefore29CountsThousands) {
  EXPECT_EQ((SoftwareVersions{12040, 12020, 120301, 2803}).text(),
            "CUDA driver 12.4, CUDA runtime 12.2, cuBLAS 12.3.1, NCCL 2.8.3");
}

}  // namespace
}  // namespace mpsim::calibration
