// Memory as the GPU sees it (simulator/memory/device_memory.h): the communicators a rank holds,
// the runtime and fragmentation added to the tensors, the usable memory and headroom, and the
// shipped profiles' overheads and usable memory as the loader reads them.
#include "simulator/memory/device_memory.h"

#include <gtest/gtest.h>

#include "simulator/spec/spec_loader.h"
#include "tests/test_models.h"

namespace mpsim::memory {
namespace {

TEST(DeviceMemory, CommunicatorsPerParallelGroupAndStage) {
  // TP 2, PP 4, DP 2: TP, DP and PP everywhere, the tied embeddings' group on stages 0 and 3.
  const spec::ParallelConfig c = testing::config(2, 4, 2, 1, 8);
  EXPECT_EQ(nccl_communicators(c, true, 0), 4);
  EXPECT_EQ(nccl_communicators(c, true, 1), 3);
  EXPECT_EQ(nccl_communicators(c, true, 3), 4);
  EXPECT_EQ(nccl_communicators(c, false, 0), 3);
  EXPECT_EQ(nccl_communicators(testing::config(1, 1, 1, 1, 1), true, 0), 0);
  EXPECT_EQ(nccl_communicators(testing::config(8, 1, 1, 1, 1), true, 0), 1);
  EXPECT_EQ(nccl_communicators(testing::config(1, 1, 8, 1, 8), true, 0), 1);
}

TEST(DeviceMemory, TensorsPlusFragmentationPlusRuntime) {
  spec::Hardware hw;
  hw.hbm_capacity_bytes = 80e9;
  hw.cuda_context_bytes = 5e8;
  hw.library_workspace_bytes = 1e8;
  hw.nccl_communicator_bytes = 2e8;
  hw.allocator_fragmentation = 0.1;
  const spec::ParallelConfig c = testing::config(2, 4, 2, 1, 8);
  const RuntimeMemory first = runtime_memory(hw, c, true, 0);
  EXPECT_DOUBLE_EQ(first.total(), 5e8 + 1e8 + 4 * 2e8);
  EXPECT_DOUBLE_EQ(runtime_memory(hw, c, true, 2).nccl, 3 * 2e8);
  EXPECT_DOUBLE_EQ(fragmentation_bytes(hw, 30e9), 3e9);
  EXPECT_DOUBLE_EQ(device_bytes(hw, c, true, 0, 30e9), 30e9 + 3e9 + 1.4e9);
  // Usable memory: the HBM where the profile leaves it unset, less the headroom.
  EXPECT_DOUBLE_EQ(usable_bytes(hw, 0), 80e9);
  hw.usable_memory_bytes = 79e9;
  EXPECT_DOUBLE_EQ(usable_bytes(hw, 0.1), 79e9 * 0.9);
}

// The shipped profiles: usable memory as measured (H100, H200) and the measured defaults of the
// overheads, which no profile overrides.
TEST(DeviceMemory, ShippedProfilesReadTheirUsableMemoryAndTheDefaults) {
  const spec::Hardware h100 = spec::load_hardware("h100-sxm");
  EXPECT_DOUBLE_EQ(h100.usable_memory_bytes, 85017493504.0);
  EXPECT_DOUBLE_EQ(h100.hbm_capacity_bytes, 80e9);
  EXPECT_DOUBLE_EQ(spec::load_hardware("h200-sxm").usable_memory_bytes, 150109880320.0);
  EXPECT_DOUBLE_EQ(h100.cuda_context_bytes, spec::kDefaultCudaContextBytes);
  EXPECT_DOUBLE_EQ(h100.library_workspace_bytes, spec::kDefaultLibraryWorkspaceBytes);
  EXPECT_DOUBLE_EQ(h100.nccl_communicator_bytes, spec::kDefaultNcclCommunicatorBytes);
  EXPECT_DOUBLE_EQ(h100.allocator_fragmentation, spec::kDefaultAllocatorFragmentation);
  // The defaults are the probe's readings (docs/executor/memory_overheads_h200.json) less
  // PyTorch's own allocations: 2 MiB after the context, 64 MiB of GEMM operands, 20 MiB beside
  // the NCCL communicator.
  EXPECT_DOUBLE_EQ(spec::kDefaultCudaContextBytes, 650969088.0 - 2 * 1048576.0);
  EXPECT_DOUBLE_EQ(spec::kDefaultLibraryWorkspaceBytes, 820838400.0 - 650969088.0 - 64 * 1048576.0);
  EXPECT_DOUBLE_EQ(spec::kDefaultNcclCommunicatorBytes,
                   1426915328.0 - 820838400.0 - 20 * 1048576.0);
}

}  // namespace
}  // namespace mpsim::memory
