// Hardware: a HardwareProfile converted to SI units (seconds, bytes, FLOP/s, bytes/s), the form
// the cost model reads. Built by load_hardware() in spec_loader.h, which refuses missing or
// non-positive numbers and unknown units.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "simulator/spec/hardware_profile.pb.h"
#include "simulator/spec/model_spec.pb.h"

namespace mpsim::spec {

// Defaults of the MemoryOverheads a profile leaves out, measured with tools/gpu_memory_probe.py
// on 1 x NVIDIA H200, driver 580.159.04, CUDA 13.0, PyTorch 2.11, NCCL 2.28.9, 2026-12-03
// (docs/executor/memory_overheads_h200.json), as drops of the driver's free memory: the context
// after the first kernel (650969088 B less PyTorch's first 2 MiB block); what the first bf16
// GEMM added beyond its three tensors (cuBLAS modules and workspace, 169869312 B less 64 MiB);
// what one NCCL communicator added beyond PyTorch's own allocations (606076928 B less 20 MiB; one
// rank, so no peer buffers). The allocator's fragmentation is assumed: PyTorch's caching
// allocator commonly reserves 5-10 % above live tensors in steady training (the reference
// executor's own pool: 0.4 %, docs/executor/one_gpu_checks.log).
inline constexpr double kDefaultCudaContextBytes = 648871936;
inline constexpr double kDefaultLibraryWorkspaceBytes = 102760448;
inline constexpr double kDefaultNcclCommunicatorBytes = 585105408;
inline constexpr double kDefaultAllocatorFragmentation = 0.05;

struct Hardware {
  std::string name;
  std::string gpu_name;
  // Dense peak FLOP/s per dtype (tensor cores where they apply).
  double peak_bf16_flops = 0;
  double peak_fp16_flops = 0;
  double peak_fp32_flops = 0;
  double peak_tf32_flops = 0;
  double peak_fp8_flops = 0;
  double hbm_bytes_per_s = 0;
  double hbm_capacity_bytes = 0;
  double kernel_launch_s = 0;
  double usable_memory_bytes = 0;  // what the driver lets a program allocate (<= HBM capacity)
  // What a process holds besides its tensors (MemoryOverheads; defaults above).
  double cuda_context_bytes = kDefaultCudaContextBytes;
  double library_workspace_bytes = kDefaultLibraryWorkspaceBytes;
  double nccl_communicator_bytes = kDefaultNcclCommunicatorBytes;
  double allocator_fragmentation = kDefaultAllocatorFragmentation;  // of the tensors' bytes
  // Kernel efficiency relative to the peaks above (fractions in (0, 1]).
  double gemm_max_efficiency = 0;
  double gemm_half_dim = 0;                   // elements
  double attention_max_efficiency = 0;        // the unfused attention core
  double flash_attention_max_efficiency = 0;  // a fused flash-attention kernel
  double memory_bound_efficiency = 0;
  // The fraction a GEMM or attention kernel slows down by while communication runs beside it.
  double comm_interference = 0;
  double gemm_max_fp8_efficiency = 0;  // of the FP8 peak; 0 = gemm_max_efficiency
  int64_t gpus_per_node = 0;
  double nvlink_bytes_per_s = 0;  // per GPU, one direction
  double nvlink_latency_s = 0;
  double host_link_bytes_per_s = 0;    // per GPU, one direction; 0 = unknown
  double host_memory_bytes_per_s = 0;  // one GPU's share of the host's; 0 = unknown
  double network_bytes_per_s = 0;      // per GPU, one direction
  double network_latency_s = 0;
  // Measured tables, untouched (interpreted by the calibrated cost model, a later issue).
  std::vector<CalibratedTable> calibrated;

  // Peak FLOP/s for a compute dtype.
  double peak_flops(DType dtype) const;
};

}  // namespace mpsim::spec
