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
  // Kernel efficiency relative to the peaks above (fractions in (0, 1]).
  double gemm_max_efficiency = 0;
  double gemm_half_dim = 0;                   // elements
  double attention_max_efficiency = 0;        // the unfused attention core
  double flash_attention_max_efficiency = 0;  // a fused flash-attention kernel
  double memory_bound_efficiency = 0;
  int64_t gpus_per_node = 0;
  double nvlink_bytes_per_s = 0;  // per GPU, one direction
  double nvlink_latency_s = 0;
  double network_bytes_per_s = 0;  // per GPU, one direction
  double network_latency_s = 0;
  // Measured tables, untouched (interpreted by the calibrated cost model, a later issue).
  std::vector<CalibratedTable> calibrated;

  // Peak FLOP/s for a compute dtype.
  double peak_flops(DType dtype) const;
};

}  // namespace mpsim::spec
