// The memory-bound family: calib/memory.<norm|elementwise|optimizer>/bytes=B for B from
// --memory-min to --memory-max (powers of 4), on GPU 0.
//
// B = bytes of the op's principal tensor, not the traffic:
//     norm         LayerNorm norm_forward + norm_backward on x[rows, 4096] bf16, B = rows*4096*2;
//                  the forward moves 2B, the backward 3B (the graph's norm_bytes).
//     elementwise  bias_gelu_forward on x[rows, 4096] bf16, B = rows*4096*2; moves 2B.
//     optimizer    adamw_step over n = B/4 parameters (B = bytes of the fp32 master weights),
//                  with the bf16 model copy; moves 7.5B (30 bytes a parameter, the graph's count).
//     fp8_cast     quantize_fp8 (E4M3, amax recorded) of x[rows, 4096] bf16 into its FP8 copy and
//                  its transpose, B = rows*4096*2; moves 2B (the FP8 recipe's cast + transpose).
#include <algorithm>

#include "calibration/bench/harness.h"
#include "executor/cuda/fp8.h"
#include "executor/cuda/kernels.h"

namespace mpsim::calibration::bench {

namespace kernels = executor::kernels;

namespace {

constexpr int64_t kMemoryCols = 4096;  // columns of the norm and element-wise tensors

void run_memory(BenchContext& c) {
  const Options& o = c.options;
  const Lane lane = c.gemm.lane();
  Harness& harness = c.harness;
  const std::vector<int64_t> sizes = powers_of_four(o.memory_min, o.memory_max);
  std::fprintf(stderr, "calibration_bench: memory: %zu sizes x 4 ops on GPU %d\n", sizes.size(),
               lane.device);
  const int64_t cols = kMemoryCols;
  auto activate = [&] { CUDA_CHECK(cudaSetDevice(lane.device)); };
  for (const int64_t requested : sizes) {
    const int64_t rows = std::max<int64_t>(1, requested / (2 * cols));
    const int64_t bytes = rows * cols * 2;
    if (fits(lane.device, 4 * bytes, memory_range_name("norm", bytes))) {
      DeviceArray x(lane.device, bytes), y(lane.device, bytes), dy(lane.device, bytes),
          dx(lane.device, bytes);
      DeviceArray gamma(lane.device, cols * 2), beta(lane.device, cols * 2);
      DeviceArray mean(lane.device, rows * 4), rstd(lane.device, rows * 4);
      DeviceArray dgamma(lane.device, cols * 4), dbeta(lane.device, cols * 4);
      fill_uniform<bf16>(x, -1.0f, 1.0f, 5, lane.stream);
      fill_uniform<bf16>(dy, -1.0f, 1.0f, 6, lane.stream);
      fill_uniform<bf16>(gamma, 0.5f, 1.5f, 7, lane.stream);
      fill_uniform<bf16>(beta, -0.5f, 0.5f, 8, lane.stream);
      zero(dgamma, lane.stream);
      zero(dbeta, lane.stream);
      harness.measure(memory_range_name("norm", bytes), {lane}, [&] {
        activate();
        kernels::norm_forward(x.as<bf16>(), gamma.as<bf16>(), beta.as<bf16>(), y.as<bf16>(),
                              mean.as<float>(), rstd.as<float>(), rows, cols, 1e-5f, false,
                              lane.stream);
        kernels::norm_backward(dy.as<bf16>(), x.as<bf16>(), gamma.as<bf16>(), mean.as<float>(),
                               rstd.as<float>(), nullptr, dx.as<bf16>(), dgamma.as<float>(),
                               dbeta.as<float>(), rows, cols, false, lane.stream);
      });
    }
    if (fits(lane.device, 2 * bytes, memory_range_name("elementwise", bytes))) {
      DeviceArray x(lane.device, bytes), y(lane.device, bytes), bias(lane.device, cols * 2);
      fill_uniform<bf16>(x, -2.0f, 2.0f, 9, lane.stream);
      fill_uniform<bf16>(bias, -0.5f, 0.5f, 10, lane.stream);
      harness.measure(memory_range_name("elementwise", bytes), {lane}, [&] {
        activate();
        kernels::bias_gelu_forward(x.as<bf16>(), bias.as<bf16>(), y.as<bf16>(), rows, cols,
                                   lane.stream);
      });
    }
    if (fits(lane.device, 2 * bytes, memory_range_name("fp8_cast", bytes))) {
      DeviceArray x(lane.device, bytes), q(lane.device, bytes / 2), qt(lane.device, bytes / 2);
      DeviceArray scale(lane.device, 8);
      fill_uniform<bf16>(x, -2.0f, 2.0f, 15, lane.stream);
      fill_uniform<float>(scale, 1.0f, 1.0f, 16, lane.stream);  // scale 1; amax beside it
      harness.measure(memory_range_name("fp8_cast", bytes), {lane}, [&] {
        activate();
        kernels::quantize_fp8(x.as<bf16>(), rows, cols, kernels::Fp8Format::kE4M3,
                              scale.as<float>(), q.as<void>(), qt.as<void>(), scale.as<float>() + 1,
                              lane.stream);
      });
    }
    const int64_t params = requested / 4, master_bytes = params * 4;
    if (fits(lane.device, 4 * master_bytes + 2 * params,
             memory_range_name("optimizer", master_bytes))) {
      DeviceArray master(lane.device, master_bytes), grad(lane.device, master_bytes);
      DeviceArray m(lane.device, master_bytes), v(lane.device, master_bytes),
          model(lane.device, params * 2);
      fill_uniform<float>(master, -0.1f, 0.1f, 11, lane.stream);
      fill_uniform<float>(grad, -1e-2f, 1e-2f, 12, lane.stream);
      fill_uniform<float>(m, -1e-3f, 1e-3f, 13, lane.stream);
      fill_uniform<float>(v, 0.0f, 1e-4f, 14, lane.stream);
      int64_t step = 0;
      harness.measure(memory_range_name("optimizer", master_bytes), {lane}, [&] {
        activate();
        kernels::adamw_step(master.as<float>(), grad.as<float>(), m.as<float>(), v.as<float>(),
                            model.as<bf16>(), nullptr, 0, params, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f,
                            ++step, 1.0f, lane.stream);
      });
    }
  }
}

}  // namespace

const BenchFamily kMemoryFamily = {"memory", run_memory};

}  // namespace mpsim::calibration::bench
