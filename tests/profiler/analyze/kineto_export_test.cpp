// export_chrome_trace(): the file parses as JSON and has Kineto's layout (see kineto_export.h),
// checked event by event against the hand-built run of synthetic_trace.h.
#include "profiler/analyze/kineto_export.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/profiler/analyze/synthetic_trace.h"

namespace mpsim::profiler {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::kNccl;
using testing::rank0;
using testing::rank1;

class KinetoExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mpsim_kineto_export_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  json export_and_parse(const std::vector<RankTrace>& ranks) {
    const fs::path path = dir_ / "trace.json";
    export_chrome_trace(ranks, path.string());
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return json::parse(text.str());
  }

  // Events with phase `ph` and, when given, category `cat`.
  static std::vector<json> events(const json& trace, const std::string& ph,
                                  const std::string& cat = "") {
    std::vector<json> out;
    for (const json& e : trace["traceEvents"]) {
      if (e["ph"] == ph && (cat.empty() || e.value("cat", "") == cat)) out.push_back(e);
    }
    return out;
  }

  fs::path dir_;
};

// The earliest record is the "step" range at 900 ns: the time base.
TEST_F(KinetoExportTest, KernelsOnDeviceAndStream) {
  const json trace = export_and_parse({rank0()});
  EXPECT_EQ(trace["base_time_ns"], 900);
  const std::vector<json> kernels = events(trace, "X", "kernel");
  ASSERT_EQ(kernels.size(), 6u);
  std::map<int64_t, json> by_correlation;
  for (const json& k : kernels) {
    EXPECT_EQ(k["pid"], 0);  // one rank: pid = device id
    by_correlation[k["args"]["correlation"].get<int64_t>()] = k;
  }
  const json& first = by_correlation.at(1);
  EXPECT_EQ(first["name"], "gemm");
  EXPECT_EQ(first["tid"], 7);
  EXPECT_DOUBLE_EQ(first["ts"].get<double>(), 1.1);  // (2000 - 900) ns
  EXPECT_DOUBLE_EQ(first["dur"].get<double>(), 1.0);
  EXPECT_EQ(first["args"]["device"], 0);
  EXPECT_EQ(first["args"]["stream"], 7);
  EXPECT_EQ(first["args"]["grid"], json({128, 2, 1}));
  EXPECT_EQ(first["args"]["block"], json({256, 1, 1}));
  EXPECT_EQ(first["args"]["registers per thread"], 64);
  EXPECT_EQ(first["args"]["shared memory"], 4096);
  EXPECT_FALSE(first["args"].contains("is_nccl"));

  const json& nccl = by_correlation.at(3);
  EXPECT_EQ(nccl["name"], kNccl);
  EXPECT_EQ(nccl["tid"], 13);
  EXPECT_EQ(nccl["args"]["is_nccl"], true);
}

TEST_F(KinetoExportTest, CopiesAndApiCalls) {
  const json trace = export_and_parse({rank0()});
  const std::vector<json> copies = events(trace, "X", "gpu_memcpy");
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0]["name"], "Memcpy HtoD (Pageable -> Device)");
  EXPECT_EQ(copies[0]["args"]["bytes"], 1024);
  const std::vector<json> sets = events(trace, "X", "gpu_memset");
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0]["tid"], 13);
  EXPECT_EQ(sets[0]["args"]["bytes"], 64);

  const std::vector<json> api = events(trace, "X", "cuda_runtime");
  ASSERT_EQ(api.size(), 8u);
  for (const json& a : api) {
    EXPECT_EQ(a["pid"], 100);
    EXPECT_EQ(a["tid"], 7);
  }
}

// One arrow per correlated launch (6 kernels, 1 memcpy, 1 memset): "s" on the launch call's
// thread at its start, "f" on the activity's stream at its start, the same id.
TEST_F(KinetoExportTest, FlowsLinkLaunchesToKernels) {
  const json trace = export_and_parse({rank0()});
  const std::vector<json> starts = events(trace, "s");
  const std::vector<json> finishes = events(trace, "f");
  ASSERT_EQ(starts.size(), 8u);
  ASSERT_EQ(finishes.size(), 8u);
  std::map<int64_t, json> finish_by_id;
  for (const json& f : finishes) finish_by_id[f["id"].get<int64_t>()] = f;
  for (const json& s : starts) {
    EXPECT_EQ(s["name"], "ac2g");
    EXPECT_EQ(s["cat"], "ac2g");
    EXPECT_EQ(s["pid"], 100);
    EXPECT_EQ(s["tid"], 7);
    ASSERT_TRUE(finish_by_id.count(s["id"].get<int64_t>()));
  }
  // correlation 3: cudaLaunchKernel at 1200 -> NCCL kernel at 4000 on stream 13
  const json& nccl_start =
      *std::find_if(starts.begin(), starts.end(), [](const json& s) { return s["id"] == 3; });
  EXPECT_DOUBLE_EQ(nccl_start["ts"].get<double>(), 0.3);
  const json& nccl_finish = finish_by_id.at(3);
  EXPECT_EQ(nccl_finish["pid"], 0);
  EXPECT_EQ(nccl_finish["tid"], 13);
  EXPECT_DOUBLE_EQ(nccl_finish["ts"].get<double>(), 3.1);
  EXPECT_EQ(nccl_finish["bp"], "e");
}

TEST_F(KinetoExportTest, NvtxRangesAndMarks) {
  const json trace = export_and_parse({rank0()});
  const std::vector<json> ranges = events(trace, "X", "user_annotation");
  ASSERT_EQ(ranges.size(), 5u);
  std::multiset<std::string> names;
  for (const json& r : ranges) names.insert(r["name"].get<std::string>());
  EXPECT_EQ(names, (std::multiset<std::string>{"step", "forward", "attn", "attn", "other"}));
  for (const json& r : ranges) {
    EXPECT_EQ(r["pid"], 100);
    if (r["name"] == "other") {
      EXPECT_EQ(r["tid"], 9);
      EXPECT_EQ(r["args"]["domain"], "app");
    }
    if (r["name"] == "step") {
      EXPECT_DOUBLE_EQ(r["ts"].get<double>(), 0.0);
      EXPECT_DOUBLE_EQ(r["dur"].get<double>(), 0.75);
    }
  }
  const std::vector<json> marks = events(trace, "i");
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0]["name"], "checkpoint");
  EXPECT_EQ(marks[0]["tid"], 7);
  EXPECT_DOUBLE_EQ(marks[0]["ts"].get<double>(), 0.42);
}

TEST_F(KinetoExportTest, TopLevelMetadata) {
  const json trace = export_and_parse({rank0()});
  EXPECT_EQ(trace["distributedInfo"], json({{"backend", "nccl"}, {"rank", 0}, {"world_size", 2}}));
  ASSERT_EQ(trace["deviceProperties"].size(), 1u);
  const json& gpu = trace["deviceProperties"][0];
  EXPECT_EQ(gpu["id"], 0);
  EXPECT_EQ(gpu["name"], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(gpu["totalGlobalMem"], 85'000'000'000);
  EXPECT_EQ(gpu["computeMajor"], 9);
  EXPECT_EQ(gpu["computeMinor"], 0);
  EXPECT_EQ(gpu["numSms"], 132);
  std::set<std::string> process_names;
  for (const json& m : events(trace, "M")) {
    if (m["name"] == "process_name") process_names.insert(m["args"]["name"].get<std::string>());
  }
  EXPECT_TRUE(process_names.count("rank 0 GPU 0"));
  EXPECT_TRUE(process_names.count("rank 0 CPU (pid 100)"));
}

// Merged ranks: GPU pid = rank * 1000 + device; flow ids stay unique although both ranks use
// correlation id 1.
TEST_F(KinetoExportTest, MergedRanks) {
  const json trace = export_and_parse({rank0(), rank1()});
  std::set<int64_t> kernel_pids;
  for (const json& k : events(trace, "X", "kernel")) kernel_pids.insert(k["pid"].get<int64_t>());
  EXPECT_EQ(kernel_pids, (std::set<int64_t>{0, 1001}));
  std::set<int64_t> ids;
  for (const json& s : events(trace, "s")) ids.insert(s["id"].get<int64_t>());
  EXPECT_EQ(ids.size(), 9u);
  EXPECT_TRUE(ids.count((int64_t{1} << 32) | 1));
  EXPECT_EQ(trace["distributedInfo"]["rank"], 0);
  EXPECT_EQ(trace["deviceProperties"].size(), 2u);
}

TEST_F(KinetoExportTest, EmptyRunWritesValidJson) {
  const json trace = export_and_parse({});
  EXPECT_TRUE(trace["traceEvents"].empty());
}

}  // namespace
}  // namespace mpsim::profiler
