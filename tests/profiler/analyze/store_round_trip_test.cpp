// The analysis on records that went through the store: TraceWriter -> TraceReader ->
// compute_stats() and export_chrome_trace() give what they give on the records themselves.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "profiler/analyze/kineto_export.h"
#include "profiler/analyze/trace_stats.h"
#include "tests/profiler/analyze/synthetic_trace.h"

namespace mpsim::profiler {
namespace {

namespace fs = std::filesystem;

class StoreRoundTripTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mpsim_analyze_round_trip_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `trace` as one database and reads it back.
  RankTrace round_trip(const RankTrace& trace) {
    const std::string path = (dir_ / "run.sqlite").string();
    {
      TraceWriter writer(path, trace.process);
      writer.write(trace.records);
      writer.finish(trace.process.end_ns);
    }
    const TraceReader reader(path);
    return reader.read_rank(trace.process.rank);
  }

  fs::path dir_;
};

TEST_F(StoreRoundTripTest, StatsMatchTheRecords) {
  const TraceStats direct = compute_stats({testing::rank0()});
  const TraceStats stored = compute_stats({round_trip(testing::rank0())});
  ASSERT_EQ(stored.kernels.size(), direct.kernels.size());
  for (size_t i = 0; i < direct.kernels.size(); ++i) {
    EXPECT_EQ(stored.kernels[i].name, direct.kernels[i].name);
    EXPECT_EQ(stored.kernels[i].total_ns, direct.kernels[i].total_ns);
    EXPECT_EQ(stored.kernels[i].instances, direct.kernels[i].instances);
    EXPECT_DOUBLE_EQ(stored.kernels[i].median_ns, direct.kernels[i].median_ns);
  }
  ASSERT_EQ(stored.nvtx.size(), 4u);
  for (size_t i = 0; i < direct.nvtx.size(); ++i) {
    EXPECT_EQ(stored.nvtx[i].text, direct.nvtx[i].text);
    EXPECT_EQ(stored.nvtx[i].domain, direct.nvtx[i].domain);
    EXPECT_EQ(stored.nvtx[i].gpu_time_ns, direct.nvtx[i].gpu_time_ns);
    EXPECT_EQ(stored.nvtx[i].kernels, direct.nvtx[i].kernels);
  }
  ASSERT_EQ(stored.devices.size(), 1u);
  EXPECT_EQ(stored.devices[0].overlap_ns, 1000);  // hand-derived in trace_stats_test.cpp
  EXPECT_EQ(stored.devices[0].idle_ns, 2500);
  EXPECT_EQ(format_stats(stored), format_stats(direct));
}

TEST_F(StoreRoundTripTest, ExportParses) {
  const fs::path out = dir_ / "run.json";
  export_chrome_trace({round_trip(testing::rank0())}, out.string());
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json trace = nlohmann::json::parse(text.str());
  int kernels = 0;
  for (const auto& e : trace["traceEvents"]) kernels += e.value("cat", "") == "kernel";
  EXPECT_EQ(kernels, 6);
  EXPECT_EQ(trace["distributedInfo"]["world_size"], 2);
}

}  // namespace
}  // namespace mpsim::profiler
