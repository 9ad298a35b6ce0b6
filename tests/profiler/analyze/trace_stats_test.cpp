// compute_stats() and format_stats() on the hand-built run of synthetic_trace.h; every expected
// number is worked out by hand in the comments from that timeline.
#include "profiler/analyze/trace_stats.h"

#include <gtest/gtest.h>

#include "tests/profiler/analyze/synthetic_trace.h"

namespace mpsim::profiler {
namespace {

using testing::kNccl;
using testing::rank0;
using testing::rank1;

const KernelSummaryRow& kernel_row(const TraceStats& stats, const std::string& name) {
  for (const auto& row : stats.kernels) {
    if (row.name == name) return row;
  }
  throw std::runtime_error("no kernel row " + name);
}

const NvtxSummaryRow& nvtx_row(const TraceStats& stats, const std::string& text) {
  for (const auto& row : stats.nvtx) {
    if (row.text == text) return row;
  }
  throw std::runtime_error("no NVTX row " + text);
}

// Kernel time on rank 0: gemm 1000 + 2000 + 300 = 3300, NCCL 3000, softmax 500 + 100 = 600;
// all kernels 6900.
TEST(TraceStatsTest, KernelSummaryByTotalTime) {
  const TraceStats stats = compute_stats({rank0()});
  ASSERT_EQ(stats.kernels.size(), 3u);
  EXPECT_EQ(stats.kernels[0].name, "gemm");
  EXPECT_EQ(stats.kernels[1].name, kNccl);
  EXPECT_EQ(stats.kernels[2].name, "softmax");

  const KernelSummaryRow& gemm = kernel_row(stats, "gemm");
  EXPECT_EQ(gemm.instances, 3);
  EXPECT_EQ(gemm.total_ns, 3300);
  EXPECT_DOUBLE_EQ(gemm.mean_ns, 1100.0);
  EXPECT_DOUBLE_EQ(gemm.median_ns, 1000.0);  // of 300, 1000, 2000
  EXPECT_EQ(gemm.min_ns, 300);
  EXPECT_EQ(gemm.max_ns, 2000);
  EXPECT_NEAR(gemm.time_percent, 100.0 * 3300 / 6900, 1e-9);

  const KernelSummaryRow& softmax = kernel_row(stats, "softmax");
  EXPECT_EQ(softmax.instances, 2);
  EXPECT_DOUBLE_EQ(softmax.median_ns, 300.0);  // even count: (100 + 500) / 2
  EXPECT_EQ(softmax.min_ns, 100);
  EXPECT_EQ(softmax.max_ns, 500);
  EXPECT_NEAR(softmax.time_percent, 100.0 * 600 / 6900, 1e-9);
  EXPECT_NEAR(kernel_row(stats, kNccl).time_percent, 100.0 * 3000 / 6900, 1e-9);
}

// Compute union [2000,5000) + [8000,8500) + [10000,10300) + [11000,11100) = 3900; NCCL
// [4000,7000) = 3000; both [4000,5000) = 1000. Span [2000,11100) = 9100; covered by kernels,
// memset [7000,7200) or memcpy [9000,9500): 5900 + 200 + 500 = 6600, so idle 2500
// (7200-8000, 8500-9000, 9500-10000, 10300-11000).
TEST(TraceStatsTest, CommunicationComputationOverlapAndIdle) {
  const TraceStats stats = compute_stats({rank0()});
  ASSERT_EQ(stats.devices.size(), 1u);
  const DeviceActivity& d = stats.devices[0];
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.device_id, 0u);
  EXPECT_EQ(d.span_ns, 9100);
  EXPECT_EQ(d.compute_ns, 3900);
  EXPECT_EQ(d.communication_ns, 3000);
  EXPECT_EQ(d.overlap_ns, 1000);
  EXPECT_EQ(d.idle_ns, 2500);
}

// "step" [900,1650) holds the launches at 1000, 1100, 1200, 1300, 1500 (kernels; 1400 and 1600
// are a memcpy and a memset, 1700 is outside): 1000 + 2000 + 3000 + 500 + 300 = 6800 over 5.
// "forward" [950,1250): 1000, 1100, 1200 -> 6000 over 3. "attn" [1050,1150) -> 2000 and
// [1450,1550) -> 300: 2 instances, wall 200, 2300 over 2 kernels. "other" on thread 9 overlaps
// the launches in time but on another thread: none.
TEST(TraceStatsTest, NvtxProjectionGivesNestedRangesTheirKernels) {
  const TraceStats stats = compute_stats({rank0()});
  ASSERT_EQ(stats.nvtx.size(), 4u);        // the mark is not a range
  EXPECT_EQ(stats.nvtx[0].text, "other");  // by wall time: 1000, 750, 300, 200
  EXPECT_EQ(stats.nvtx[1].text, "step");
  EXPECT_EQ(stats.nvtx[2].text, "forward");
  EXPECT_EQ(stats.nvtx[3].text, "attn");

  const NvtxSummaryRow& step = nvtx_row(stats, "step");
  EXPECT_EQ(step.instances, 1);
  EXPECT_EQ(step.total_ns, 750);
  EXPECT_EQ(step.gpu_time_ns, 6800);
  EXPECT_EQ(step.kernels, 5);
  const NvtxSummaryRow& forward = nvtx_row(stats, "forward");
  EXPECT_EQ(forward.gpu_time_ns, 6000);
  EXPECT_EQ(forward.kernels, 3);
  const NvtxSummaryRow& attn = nvtx_row(stats, "attn");
  EXPECT_EQ(attn.instances, 2);
  EXPECT_EQ(attn.total_ns, 200);
  EXPECT_DOUBLE_EQ(attn.mean_ns, 100.0);
  EXPECT_EQ(attn.gpu_time_ns, 2300);
  EXPECT_EQ(attn.kernels, 2);
  const NvtxSummaryRow& other = nvtx_row(stats, "other");
  EXPECT_EQ(other.domain, "app");
  EXPECT_EQ(other.gpu_time_ns, 0);
  EXPECT_EQ(other.kernels, 0);
}

// Two ranks: one row per (rank, device); kernel rows sum both ranks (gemm 3300 + 1000).
TEST(TraceStatsTest, SeveralRanks) {
  const TraceStats stats = compute_stats({rank0(), rank1()});
  ASSERT_EQ(stats.devices.size(), 2u);
  EXPECT_EQ(stats.devices[1].rank, 1);
  EXPECT_EQ(stats.devices[1].device_id, 1u);
  EXPECT_EQ(stats.devices[1].span_ns, 1000);
  EXPECT_EQ(stats.devices[1].compute_ns, 1000);
  EXPECT_EQ(stats.devices[1].idle_ns, 0);
  EXPECT_EQ(kernel_row(stats, "gemm").total_ns, 4300);
  EXPECT_EQ(kernel_row(stats, "gemm").instances, 4);
}

// NCCL's ranges carry their message size as an integer payload; the summary adds them up, and a
// range without a payload adds nothing.
TEST(TraceStatsTest, PayloadsOfRangesAreSummed) {
  RankTrace trace;
  for (int i = 0; i < 3; ++i) {
    NvtxRecord r = testing::range("ncclAllReduce", 100 * i, 100 * i + 50, 7, "NCCL");
    r.has_int_payload = i < 2;
    r.int_payload = i < 2 ? (int64_t{64} << 20) : 999;
    trace.records.nvtx.push_back(r);
  }
  const TraceStats stats = compute_stats({trace});
  ASSERT_EQ(stats.nvtx.size(), 1u);
  EXPECT_EQ(stats.nvtx[0].instances, 3);
  EXPECT_EQ(stats.nvtx[0].payload_sum, int64_t{128} << 20);
  EXPECT_NE(format_stats(stats).find("134217728"), std::string::npos);
}

TEST(TraceStatsTest, EmptyTrace) {
  const TraceStats stats = compute_stats({});
  EXPECT_TRUE(stats.kernels.empty());
  EXPECT_TRUE(stats.nvtx.empty());
  EXPECT_TRUE(stats.devices.empty());
  EXPECT_NE(format_stats(stats).find("(no kernels)"), std::string::npos);
}

TEST(TraceStatsTest, FormatShowsEveryTable) {
  const std::string text = format_stats(compute_stats({rank0()}));
  EXPECT_NE(text.find("CUDA kernels"), std::string::npos);
  EXPECT_NE(text.find("NVTX ranges"), std::string::npos);
  EXPECT_NE(text.find("GPU activity"), std::string::npos);
  EXPECT_NE(text.find("app:other"), std::string::npos);
  EXPECT_NE(text.find(kNccl), std::string::npos);
  EXPECT_NE(text.find("rank 0 GPU 0"), std::string::npos);
  EXPECT_NE(text.find("47.8"), std::string::npos);  // gemm: 3300 / 6900 = 47.83 %
}

}  // namespace
}  // namespace mpsim::profiler
