// The hardware the cost-model tests price ops on: H100 SXM datasheet-like numbers with round
// made-up efficiencies (the tests derive their expectations from these fields, not from a file).
#pragma once

#include "simulator/spec/hardware.h"

namespace mpsim::testing {

inline spec::Hardware cost_test_hardware() {
  spec::Hardware hw;
  hw.name = "h100-test";
  hw.gpu_name = "H100 SXM";
  hw.peak_bf16_flops = 989e12;
  hw.peak_fp16_flops = 989e12;
  hw.peak_fp32_flops = 67e12;
  hw.peak_fp8_flops = 1979e12;
  hw.hbm_bytes_per_s = 3.35e12;
  hw.kernel_launch_s = 4e-6;
  hw.gemm_max_efficiency = 0.8;
  hw.gemm_half_dim = 256;
  hw.attention_max_efficiency = 0.6;
  hw.flash_attention_max_efficiency = 0.5;
  hw.memory_bound_efficiency = 0.85;
  hw.gpus_per_node = 8;
  hw.nvlink_bytes_per_s = 450e9;
  hw.nvlink_latency_s = 2e-6;
  hw.network_bytes_per_s = 50e9;
  hw.network_latency_s = 8e-6;
  return hw;
}

}  // namespace mpsim::testing
