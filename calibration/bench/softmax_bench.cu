// The softmax family: calib/memory.softmax/bytes=B, on GPU 0.
//
// causal_softmax_forward alone, in place on scores [bh, s, s] bf16 (as the
// attention core calls it), s = --softmax-seq, B = bh*s*s*2; reads the kept
// lower triangle (about B/2) and writes B. Repetitions run on the previous
// repetition's probabilities.
#include <algorithm>
#include <cmath>

#include "calibration/bench/harness.h"
#include "executor/cuda/kernels.h"

namespace mpsim::calibration::bench {

namespace kernels = executor::kernels;

namespace {

// causal_softmax_forward alone, in place on [bh, s, s] as the attention core calls it; bh from
// each memory size (at least 1; a size giving a B already measured is skipped).
void run_softmax(BenchContext& c) {
  const Options& o = c.options;
  const Lane lane = c.gemm.lane();
  Harness& harness = c.harness;
  const int64_t s = o.softmax_seq, head_bytes = s * s * 2;
  std::fprintf(stderr, "calibration_bench: softmax: s = %lld, up to %zu sizes, on GPU %d\n",
               static_cast<long long>(s), powers_of_four(o.memory_min, o.memory_max).size(),
               lane.device);
  const float scale = 1.0f / std::sqrt(128.0f);
  std::set<int64_t> measured;
  for (const int64_t requested : powers_of_four(o.memory_min, o.memory_max)) {
    const int64_t bh = std::max<int64_t>(1, requested / head_bytes), bytes = bh * head_bytes;
    if (!measured.insert(bytes).second) continue;
    if (!fits(lane.device, bytes, memory_range_name("softmax", bytes))) continue;
    DeviceArray scores(lane.device, bytes);
    fill_uniform<bf16>(scores, -4.0f, 4.0f, 19, lane.stream);
    harness.measure(memory_range_name("softmax", bytes), {lane}, [&] {
      CUDA_CHECK(cudaSetDevice(lane.device));
      kernels::causal_softmax_forward(scores.as<bf16>(), scores.as<bf16>(), bh, s, scale,
                                      lane.stream);
    });
  }
}

}  // namespace

const BenchFamily kSoftmaxFamily = {"softmax", run_softmax};

}  // namespace mpsim::calibration::bench
