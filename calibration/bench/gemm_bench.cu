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
//
// calib/gemm.fp8/<layout>/... (same keys, the same grid): the FP8 recipe's GEMMs through
// executor::Fp8Gemm in its one form C[M, N] = A[M, K] B[N, K]^T, as Transformer Engine runs them
// on Hopper: fwd A = x (E4M3), B = W (E4M3), fast accumulation, bf16 out; dgrad A = dy (E5M2),
// B = W^T (E4M3), bf16 out; wgrad A = dy^T (E5M2), B = x^T (E4M3), fp32 accumulated into C. The
// operands hold values of [-1, 1] quantised to E4M3 (bytes that are finite in either format),
// dequantisation scales 1. Shapes with a size not a multiple of 16 are skipped (cuBLASLt's FP8
// GEMMs need 16-element leading dimensions).
#include <algorithm>
#include <cstdio>
#include <optional>

#include "calibration/bench/gemm_bench.h"
#include "executor/cuda/fp8.h"
#include "executor/cuda/fp8_gemm.h"

namespace mpsim::calibration::bench {
namespace kernels = executor::kernels;

namespace {

// A GEMM shape whose three buffers exceed kGemmMaxBytes is skipped: 8 GiB holds 32768^3 with
// wgrad's fp32 output (2 + 2 + 4 GiB), the largest value `mpsim calibrate` derives per axis.
constexpr int64_t kGemmMaxBytes = 8 * kGiB;

// Bytes of A [M, K], B [K, N] (bf16, or FP8: one byte) and C [M, N] (bf16; fp32 for wgrad).
int64_t a_bytes_of(const GemmShape& s) { return (s.fp8 ? 1 : 2) * s.m * s.k; }
int64_t b_bytes_of(const GemmShape& s) { return (s.fp8 ? 1 : 2) * s.n * s.k; }
int64_t c_bytes_of(const GemmShape& s) { return (s.layout == Layout::kWgrad ? 4 : 2) * s.m * s.n; }
int64_t gemm_bytes(const GemmShape& s) { return a_bytes_of(s) + b_bytes_of(s) + c_bytes_of(s); }

void issue_fp8_gemm(executor::Fp8Gemm& gemm, const GemmShape& s, const DeviceArray& a,
                    const DeviceArray& b, const DeviceArray& c, const float* one) {
  using kernels::Fp8Format;
  const bool wgrad = s.layout == Layout::kWgrad, fwd = s.layout == Layout::kFwd;
  gemm.gemm_tn(s.m, s.n, s.k, {a.as<void>(), s.k, fwd ? Fp8Format::kE4M3 : Fp8Format::kE5M2, one},
               {b.as<void>(), s.k, Fp8Format::kE4M3, one}, c.as<void>(), s.n, wgrad,
               wgrad ? 1.0f : 0.0f, fwd);
}

void run_gemms(BenchContext& c) {
  const Options& o = c.options;
  std::vector<GemmShape> shapes;
  for (const bool fp8 : {false, true}) {
    for (const int64_t m : o.gemm_m) {
      for (const int64_t n : o.gemm_n) {
        for (const int64_t k : o.gemm_k) {
          for (const auto& [layout, name] : kLayouts)
            shapes.push_back({layout, name, m, n, k, fp8});
        }
      }
    }
  }
  measure_gemm_shapes(std::move(shapes), "grid", "", c.gemm, c.harness);
}

}  // namespace

const BenchFamily kGemmFamily = {"gemm", run_gemms};

std::string gemm_shape_range(const GemmShape& s) {
  return s.fp8 ? fp8_gemm_range_name(s.name, s.m, s.n, s.k)
               : gemm_range_name(s.name, s.m, s.n, s.k);
}

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
    if (harness.measured(gemm_shape_range(s))) return true;
    if (s.fp8 && (s.m % 16 != 0 || s.n % 16 != 0 || s.k % 16 != 0)) {
      std::fprintf(stderr, "calibration_bench: skipped %s: FP8 needs sizes by 16\n",
                   gemm_shape_range(s).c_str());
      return true;
    }
    if (gemm_bytes(s) <= kGemmMaxBytes) return false;
    std::fprintf(stderr, "calibration_bench: skipped %s: buffers over %lld GiB\n",
                 gemm_shape_range(s).c_str(), static_cast<long long>(kGemmMaxBytes / kGiB));
    return true;
  });
  int64_t a_bytes = 0, b_bytes = 0, c_bytes = 0;
  while (true) {
    a_bytes = b_bytes = c_bytes = 0;
    for (const GemmShape& s : shapes) {
      a_bytes = std::max(a_bytes, a_bytes_of(s));
      b_bytes = std::max(b_bytes, b_bytes_of(s));
      c_bytes = std::max(c_bytes, c_bytes_of(s));
    }
    if (shapes.empty()) break;
    const auto largest = std::max_element(
        shapes.begin(), shapes.end(),
        [](const auto& x, const auto& y) { return gemm_bytes(x) < gemm_bytes(y); });
    if (fits(lane.device, a_bytes + b_bytes + c_bytes,
             gemm_shape_range(*largest) + " and with it the GEMM buffers")) {
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
  // FP8 operands: the bf16 values quantised (E4M3, scale 1) into both halves of a byte buffer as
  // large as the bf16 one (so as large as any FP8 operand).
  const bool any_fp8 =
      std::any_of(shapes.begin(), shapes.end(), [](const auto& s) { return s.fp8; });
  std::optional<DeviceArray> a8, b8, one;
  if (any_fp8) {
    a8.emplace(lane.device, a_bytes);
    b8.emplace(lane.device, b_bytes);
    one.emplace(lane.device, 8);
    ctx.activate();
    const float host_one[2] = {1.0f, 0.0f};
    CUDA_CHECK(cudaMemcpyAsync(one->as<void>(), host_one, sizeof host_one, cudaMemcpyHostToDevice,
                               lane.stream));
    float* amax = one->as<float>() + 1;
    for (auto [bf, fp8] : {std::pair{&a, &*a8}, std::pair{&b, &*b8}}) {
      const int64_t n = bf->bytes() / 2;  // bf16 elements, half the FP8 bytes
      const int64_t cols = n % 256 == 0 ? 256 : 1;
      for (int half = 0; half < 2; ++half) {
        kernels::quantize_fp8(bf->as<bf16>(), n / cols, cols, kernels::Fp8Format::kE4M3,
                              one->as<float>(), fp8->as<uint8_t>() + half * n, nullptr, amax,
                              lane.stream);
      }
    }
    CUDA_CHECK(cudaStreamSynchronize(lane.stream));  // host_one is about to go
  }
  for (const GemmShape& s : shapes) {
    harness.measure(
        gemm_shape_range(s), {lane},
        [&] {
          ctx.activate();
          if (s.fp8) {
            issue_fp8_gemm(ctx.fp8_gemm(), s, *a8, *b8, c, one->as<float>());
          } else {
            issue_gemm(ctx.gemm(), s.layout, s.m, s.n, s.k, a, b, c);
          }
        },
        extra_json);
  }
}

}  // namespace mpsim::calibration::bench
