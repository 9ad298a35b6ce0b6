// The NVTX -> kernel projection on the hand-built run of synthetic_trace.h, whose kernel indices
// are, in order: gemm (launch @1000), gemm (@1100), nccl (@1200), softmax (@1300), gemm (@1500),
// softmax (@1700).
#include "profiler/analyze/nvtx_projection.h"

#include <gtest/gtest.h>

#include "tests/profiler/analyze/synthetic_trace.h"

namespace mpsim::profiler {
namespace {

using Indices = std::vector<std::size_t>;

TEST(NvtxProjectionTest, KernelsGoToEveryRangeOpenAtTheirLaunchOnTheSameThread) {
  const RankTrace trace = testing::rank0();
  const std::vector<Indices> kernels = project_kernels_to_ranges(trace.records);
  ASSERT_EQ(kernels.size(), trace.records.nvtx.size());
  EXPECT_EQ(kernels[0], (Indices{0, 1, 2, 3, 4}));  // step [900, 1650): launches 1000..1500
  EXPECT_EQ(kernels[1], (Indices{0, 1, 2}));        // forward [950, 1250)
  EXPECT_EQ(kernels[2], (Indices{1}));              // attn [1050, 1150)
  EXPECT_EQ(kernels[3], (Indices{4}));              // attn [1450, 1550)
  EXPECT_EQ(kernels[4], (Indices{}));               // a mark
  EXPECT_EQ(kernels[5], (Indices{}));               // thread 9 launched nothing
}

TEST(NvtxProjectionTest, RangeEndIsExclusiveAndMissingLaunchesBelongNowhere) {
  RankTrace trace = testing::rank0();
  trace.records.nvtx = {testing::range("until 1100", 1000, 1100)};
  EXPECT_EQ(project_kernels_to_ranges(trace.records)[0], (Indices{0}));
  trace.records.api_calls.erase(trace.records.api_calls.begin());  // the launch of kernel 0
  EXPECT_EQ(project_kernels_to_ranges(trace.records)[0], (Indices{}));
  EXPECT_TRUE(is_nvtx_range(trace.records.nvtx[0]));
}

}  // namespace
}  // namespace mpsim::profiler
