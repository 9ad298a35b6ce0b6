// The GEMM family: calib/gemm.bf16/<fwd|dgrad|wgrad>/m=M,n=N,k=K over the grid of
// --gemm-m x --gemm-n x --gemm-k, on GPU 0.
//
// M, N, K: the GEMM's own sizes, C[M, N] = op(A)[M, K] op(B)[K, N], as the simulator's graph
//   names a GEMM (simulator/graph/training_graph.cpp). With executor/cuda/gemm.h's arguments
//   (tokens T, in, out):
//     fwd    linear_forward  y[T, out] = x[T, in] W[out, in]^T     M = T,   N = out, K = in
//     dgrad  linear_dgrad    dx[T, in] = dy[T, out] W[out, in]     M = T,   N = in,  K = out
//     wgrad  linear_wgrad    dW[out, in] += dy[T, out]^T x[T, in]  M = out, N = in,  K = T
//   bf16 inputs, fp32 accumulation; bf16 output (fp32 for wgrad, accumulated as the executor's
//   main grads are). One cuBLAS call per repetition (cuBLAS may launch more than one kernel).
#include <algorithm>
#include <cstdio>

#include "calibration/bench/gemm_bench.h"

namespace mpsim::calibration::bench {

namespace {

// A GEMM shape whose three buffers exceed kGemmMaxBytes is skipped: 8 GiB holds 32768^3 with
// wgrad's fp32 output (2 + 2 + 4 GiB), the largest value `mpsim calibrate` derives per axis.
constexpr int64_t kGemmMaxBytes = 8 * kGiB;

// Bytes of A [M, K] (bf16), B [K, N] (bf16) and C [M, N] (bf16; fp32 for wgrad).
int64_t gemm_bytes(Layout layout, int64_t m, int64_t n, int64_t k) {
  return 2 * m * k + 2 * n * k + (layout == Layout::kWgrad ? 4 : 2) * m * n;
}

void run_gemms(BenchContext& c) {
  const Options& o = c.options;
  std::vector<GemmShape> shapes;
  for (const int64_t m : o.gemm_m) {
    for (const int64_t n : o.gemm_n) {
      for (const int64_t k : o.gemm_k) {
        for (const auto& [layout, name] : kLayouts) shapes.push_back({layout, name, m, n, k});
      }
    }
  }
  measure_gemm_shapes(std::move(shapes), "grid", "", c.gemm, c.harness);
}

}  // namespace

const BenchFamily kGemmFamily = {"gemm", run_gemms};

// The layouts as the executor calls them (the table at the top of this file).
void issue_gemm(Gemm& gemm, Layout layout, int64_t m, int64_t n, int64_t k, const DeviceArray& a,
                const DeviceArray& b, const DeviceArray& c) {
  switch (layout) {
    case Layout::kFwd:  // tokens = M, in = K, out = N
      gemm.linear_forward(a.as<bf16>(), b.as<bf16>(), c.as<bf16>(), m, k, n);
      break;
    case Layout::kDgrad:  // tokens = M, in = N, out = K
      gemm.linear_dgrad(a.as<bf16>(), b.as<bf16>(), c.as<bf16>(), m, n, k);
      break;
    case Layout::kWgrad:  // tokens = K, in = N, out = M
      gemm.linear_wgrad(a.as<bf16>(), b.as<bf16>(), c.as<float>(), k, n, m);
      break;
  }
}

void measure_gemm_shapes(std::vector<GemmShape> shapes, std::string_view what,
                         const std::string& extra_json, GemmContext& ctx, Harness& harness) {
  const Lane lane = ctx.lane();
  std::erase_if(shapes, [&](const GemmShape& s) {
    if (harness.measured(gemm_range_name(s.name, s.m, s.n, s.k))) return true;
    if (gemm_bytes(s.layout, s.m, s.n, s.k) <= kGemmMaxBytes) return false;
    std::fprintf(stderr, "calibration_bench: skipped %s: buffers over %lld GiB\n",
                 gemm_range_name(s.name, s.m, s.n, s.k).c_str(),
                 static_cast<long long>(kGemmMaxBytes / kGiB));
    return true;
  });
  int64_t a_bytes = 0, b_bytes = 0, c_bytes = 0;
  while (true) {
    a_bytes = b_bytes = c_bytes = 0;
    for (const GemmShape& s : shapes) {
      a_bytes = std::max(a_bytes, 2 * s.m * s.k);
      b_bytes = std::max(b_bytes, 2 * s.n * s.k);
      c_bytes = std::max(c_bytes, (s.layout == Layout::kWgrad ? 4 : 2) * s.m * s.n);
    }
    if (shapes.empty()) break;
    const auto largest =
        std::max_element(shapes.begin(), shapes.end(), [](const auto& x, const auto& y) {
          return gemm_bytes(x.layout, x.m, x.n, x.k) < gemm_bytes(y.layout, y.m, y.n, y.k);
        });
    if (fits(lane.device, a_bytes + b_bytes + c_bytes,
             gemm_range_name(largest->name, largest->m, largest->n, largest->k) +
                 " and with it the "
                 "GEMM buffers")) {
      break;
    }
    shapes.erase(largest);
  }
  std::fprintf(stderr, "calibration_bench: gemm: %zu %.*s measurements on GPU %d\n", shapes.size(),
               static_cast<int>(what.size()), what.data(), lane.device);
  if (shapes.empty()) return;
  DeviceArray a(lane.device, a_bytes), b(lane.device, b_bytes), c(lane.device, c_bytes);
  fill_uniform<bf16>(a, -1.0f, 1.0f, 1, lane.stream);
  fill_uniform<bf16>(b, -1.0f, 1.0f, 2, lane.stream);
  zero(c, lane.stream);
  for (const GemmShape& s : shapes) {
    harness.measure(
        gemm_range_name(s.name, s.m, s.n, s.k), {lane},
        [&] {
          ctx.activate();
          issue_gemm(ctx.gemm(), s.layout, s.m, s.n, s.k, a, b, c);
        },
        extra_json);
  }
}

}  // namespace mpsim::calibration::bench
