// End to end on 2 GPUs: `mpsim profile` runs nccl_gemm_sample and each rank's database holds
// every GEMM and NCCL kernel, NCCL kernels classified, and NVTX "gemm" ranges containing their
// kernels (launch API call inside the range, on the range's thread). Skips without 2 GPUs.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "profiler/store/trace_store.h"

namespace mpsim::profiler {
namespace {

constexpr int kIterations = 5;
constexpr int kGemmsPerIteration = 4;

// GPUs the driver sees, through libcuda loaded at run time (0 when there is no driver).
int visible_gpus() {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW);
  if (!cuda) return 0;
  using Init = int (*)(unsigned);
  using Count = int (*)(int*);
  auto init = reinterpret_cast<Init>(dlsym(cuda, "cuInit"));
  auto count = reinterpret_cast<Count>(dlsym(cuda, "cuDeviceGetCount"));
  int n = 0;
  if (!init || !count || init(0) != 0 || count(&n) != 0) return 0;
  return n;
}

TEST(ProfileGpu, TwoRankSampleIsCapturedCompletely) {
  if (visible_gpus() < 2) GTEST_SKIP() << "needs 2 GPUs";
  const auto dir =
      std::filesystem::temp_directory_path() / ("mpsim_profile_gpu_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string pattern = (dir / "run.sqlite").string();
  const std::string command = std::string(MPSIM_BINARY) + " profile -o " + pattern + " -- " +
                              SAMPLE_BINARY + " --world 2 --iterations " +
                              std::to_string(kIterations) + " --gemms " +
                              std::to_string(kGemmsPerIteration);
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  for (int rank = 0; rank < 2; ++rank) {
    const std::string path = rank_path(pattern, rank, 0);
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    const RankTrace trace = TraceReader(path).read_rank(rank);
    const RecordBatch& r = trace.records;
    EXPECT_EQ(trace.process.rank, rank);

    int allreduce_kernels = 0;
    for (const KernelRecord& k : r.kernels) {
      if (is_nccl_kernel(k.demangled_name) &&
          k.demangled_name.find("AllReduce") != std::string::npos) {
        ++allreduce_kernels;
      }
    }
    EXPECT_EQ(allreduce_kernels, kIterations) << path;

    // Launches (API calls by correlation id) inside each "gemm" range on the same thread.
    std::map<uint32_t, const ApiRecord*> launch_of;
    for (const ApiRecord& a : r.api_calls) launch_of[a.correlation_id] = &a;
    int gemm_ranges = 0, gemm_kernels = 0;
    for (const NvtxRecord& range : r.nvtx) {
      if (range.text != "gemm") continue;
      ++gemm_ranges;
      int inside = 0;
      for (const KernelRecord& k : r.kernels) {
        auto launch = launch_of.find(k.correlation_id);
        if (launch == launch_of.end()) continue;
        const ApiRecord& a = *launch->second;
        if (a.thread_id == range.thread_id && a.start >= range.start && a.end <= range.end) {
          EXPECT_FALSE(is_nccl_kernel(k.demangled_name)) << k.demangled_name;
          ++inside;
        }
      }
      EXPECT_GE(inside, kGemmsPerIteration) << "a gemm range without its kernels in " << path;
      gemm_kernels += inside;
    }
    EXPECT_EQ(gemm_ranges, kIterations) << path;
    EXPECT_GE(gemm_kernels, kIterations * kGemmsPerIteration) << path;
    EXPECT_FALSE(r.gpus.empty()) << path;

    // NCCL's own ranges carry the message size (its NVTX extended payload): 64 MiB of fp32.
    int nccl_ranges = 0;
    for (const NvtxRecord& range : r.nvtx) {
      if (range.domain != "NCCL" || range.text != "ncclAllReduce") continue;
      ++nccl_ranges;
      EXPECT_TRUE(range.has_int_payload) << path;
      EXPECT_EQ(range.int_payload, int64_t{64} << 20) << path;
    }
    EXPECT_EQ(nccl_ranges, kIterations) << path;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mpsim::profiler
