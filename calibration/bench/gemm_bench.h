// The GEMM family's shared pieces: the executor's three GEMM layouts and the measurement of a set
// of shapes over one set of buffers, used by the grid (gemm_bench.cu), the point list
// (points_bench.cu) and the interference (interference_bench.cu).
//
// Failure: CUDA and cuBLAS failures throw executor::ExecutorError.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "calibration/bench/harness.h"

namespace mpsim::calibration::bench {

enum class Layout { kFwd, kDgrad, kWgrad };
constexpr std::array<std::pair<Layout, std::string_view>, 3> kLayouts = {
    {{Layout::kFwd, "fwd"}, {Layout::kDgrad, "dgrad"}, {Layout::kWgrad, "wgrad"}}};

// One GEMM of the layout table (gemm_bench.cu); a: [M, K] or [K, M], b: [N, K] or [K, N],
// c: [M, N].
void issue_gemm(Gemm& gemm, Layout layout, int64_t m, int64_t n, int64_t k, const DeviceArray& a,
                const DeviceArray& b, const DeviceArray& c);

struct GemmShape {
  Layout layout;
  std::string_view name;
  int64_t m, n, k;
  bool fp8 = false;  // the FP8 recipe's GEMM (gemm.fp8), else bf16 (gemm.bf16)
};

// The range name of a shape: calib/gemm.bf16/... or calib/gemm.fp8/...
std::string gemm_shape_range(const GemmShape& s);

// Measures `shapes` on the context's GPU with one set of buffers for all (each shape uses a
// prefix), filled once. Shapes over kGemmMaxBytes, and shapes measured already, are skipped;
// while the buffers do not fit, the largest shape left is skipped (each printed).
void measure_gemm_shapes(std::vector<GemmShape> shapes, std::string_view what,
                         const std::string& extra_json, GemmContext& ctx, Harness& harness);

}  // namespace mpsim::calibration::bench
