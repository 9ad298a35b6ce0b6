// Hardware::peak_flops: the dense peak a dtype's GEMMs can reach. A dtype the profile gives no
// peak for (peak_fp8 or peak_tf32 absent) reads 0; validate_parallel_config() refuses a model
// whose dtype has a zero peak, so the cost model never divides by it.
#include "simulator/spec/hardware.h"

namespace mpsim::spec {

double Hardware::peak_flops(DType dtype) const {
  switch (dtype) {
    case BF16:
      return peak_bf16_flops;
    case FP16:
      return peak_fp16_flops;
    case FP32:
      return peak_fp32_flops;  // FP32 compute without tensor cores (TF32 is a separate choice)
    case FP8:
      return peak_fp8_flops;
    default:
      return 0;  // DTYPE_UNSPECIFIED or a number the enum does not know
  }
}

}  // namespace mpsim::spec
