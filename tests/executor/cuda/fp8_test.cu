// FP8 quantisation, transposes, delayed scaling (executor/cuda/fp8.h) and FP8 GEMMs
// (executor/cuda/fp8_gemm.h) against the host: casts bit for bit against the CUDA headers' own
// host conversion (cuda_fp8.h, saturating), amax exactly, scales by the recipe's formula, GEMMs
// against float64 sums over the dequantised operands. Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "executor/cuda/device_memory.h"
#include "executor/cuda/fp8.h"
#include "executor/cuda/fp8_gemm.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

uint8_t host_fp8(float v, Fp8Format f) {
  return f == Fp8Format::kE4M3 ? __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3)
                               : __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E5M2);
}

double host_value(uint8_t byte, Fp8Format f) {
  if (f == Fp8Format::kE4M3) {
    __nv_fp8_e4m3 v;
    v.__x = byte;
    return static_cast<float>(v);
  }
  __nv_fp8_e5m2 v;
  v.__x = byte;
  return static_cast<float>(v);
}

TEST_F(KernelsTest, QuantizeFp8MatchesTheHostConversionAndRecordsAmax) {
  for (const Shape& s : std::vector<Shape>{{33, 70}, {128, 256}, {1, 5}}) {
    for (const Fp8Format f : {Fp8Format::kE4M3, Fp8Format::kE5M2}) {
      SCOPED_TRACE(name(s) + (f == Fp8Format::kE4M3 ? " e4m3" : " e5m2"));
      const int64_t n = s.rows * s.cols;
      std::vector<float> values = randn(n, 131, 3.0);
      values[n / 2] = 1e6f;  // saturates at the format's largest value
      const auto x = to_bf16(values);
      const float scale = 2.5f;
      DeviceArray<bf16> d_x(x);
      DeviceArray<float> d_scale(std::vector<float>{scale}), d_amax(std::vector<float>{0.5f});
      DeviceArray<uint8_t> out(n), out_t(n);
      quantize_fp8(d_x.get(), s.rows, s.cols, f, d_scale.get(), out.get(), out_t.get(),
                   d_amax.get(), nullptr);
      const std::vector<uint8_t> q = out.download(), qt = out_t.download();
      int64_t wrong = 0, wrong_t = 0;
      float amax = 0.5f;
      for (int64_t r = 0; r < s.rows; ++r) {
        for (int64_t c = 0; c < s.cols; ++c) {
          const float v = __bfloat162float(x[r * s.cols + c]);
          amax = std::max(amax, std::abs(v));
          const uint8_t want = host_fp8(v * scale, f);
          wrong += q[r * s.cols + c] != want;
          wrong_t += qt[c * s.rows + r] != want;
        }
      }
      EXPECT_EQ(wrong, 0);
      EXPECT_EQ(wrong_t, 0);
      EXPECT_EQ(d_amax.download()[0], amax);
      EXPECT_EQ(host_value(q[n / 2], f), fp8_max(f));
      // A transpose of the FP8 tensor gives the fused kernel's transposed copy.
      DeviceArray<uint8_t> again(n);
      transpose_fp8(out.get(), s.rows, s.cols, again.get(), nullptr);
      EXPECT_EQ(again.download(), qt);
    }
  }
}

TEST_F(KernelsTest, DelayedScalingFollowsTheAmaxHistory) {
  const int64_t n = 3, history_len = 2;
  const std::vector<float> max_value = {448.0f, 57344.0f, 448.0f};
  DeviceArray<float> amax(n), history(n * history_len), scale(std::vector<float>(n, 1.0f)),
      scale_inv(std::vector<float>(n, 1.0f)), d_max(max_value);
  // Step amaxes per tensor; tensor 2 sees only zeros and keeps its scale.
  const std::vector<std::vector<float>> steps = {
      {2.0f, 8.0f, 0.0f}, {1.0f, 16.0f, 0.0f}, {0.5f, 4.0f, 0.0f}};
  std::vector<std::vector<float>> seen(n);
  for (size_t t = 0; t < steps.size(); ++t) {
    amax.upload(steps[t]);
    update_fp8_scales(amax.get(), history.get(), scale.get(), scale_inv.get(), d_max.get(), n,
                      history_len, static_cast<int64_t>(t), 1.0f, nullptr);
    const std::vector<float> got = scale.download(), got_inv = scale_inv.download();
    for (int64_t i = 0; i < n; ++i) {
      seen[i].push_back(steps[t][i]);
      const size_t first = seen[i].size() > 2 ? seen[i].size() - 2 : 0;
      const float m = *std::max_element(seen[i].begin() + first, seen[i].end());
      const float want = m > 0 ? max_value[i] / m / 2.0f : 1.0f;  // margin 1: a factor 2
      EXPECT_FLOAT_EQ(got[i], want) << "step " << t << " tensor " << i;
      EXPECT_FLOAT_EQ(got_inv[i], 1.0f / want) << "step " << t << " tensor " << i;
    }
    for (float a : amax.download()) EXPECT_EQ(a, 0.0f);
  }
}

// C[m, n] (+)= A[m, k] B[n, k]^T on FP8 operands with their dequantisation scales.
TEST_F(KernelsTest, Fp8GemmMatchesFloat64OnTheDequantisedOperands) {
  struct Case {
    int64_t m, n, k;
    Fp8Format fa, fb;
    bool c_fp32;
    float beta;
  };
  DeviceMemory memory;
  Fp8Gemm gemm(memory, nullptr);
  for (const Case& c : {Case{64, 96, 128, Fp8Format::kE4M3, Fp8Format::kE4M3, false, 0.0f},
                        Case{128, 64, 256, Fp8Format::kE5M2, Fp8Format::kE4M3, false, 0.0f},
                        Case{96, 48, 512, Fp8Format::kE5M2, Fp8Format::kE4M3, true, 1.0f}}) {
    SCOPED_TRACE(std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k));
    const std::vector<float> av = randn(c.m * c.k, 141), bv = randn(c.n * c.k, 142);
    std::vector<uint8_t> a(av.size()), b(bv.size());
    for (size_t i = 0; i < a.size(); ++i) a[i] = host_fp8(av[i] * 16.0f, c.fa);
    for (size_t i = 0; i < b.size(); ++i) b[i] = host_fp8(bv[i] * 32.0f, c.fb);
    const float a_inv = 1.0f / 16.0f, b_inv = 1.0f / 32.0f;
    DeviceArray<uint8_t> d_a(a), d_b(b);
    DeviceArray<float> d_ainv(std::vector<float>{a_inv}), d_binv(std::vector<float>{b_inv});
    const std::vector<float> c0 = randn(c.m * c.n, 143);
    DeviceArray<float> c32(c0);
    DeviceArray<bf16> c16(c.m * c.n);
    gemm.gemm_tn(c.m, c.n, c.k, {d_a.get(), c.k, c.fa, d_ainv.get()},
                 {d_b.get(), c.k, c.fb, d_binv.get()},
                 c.c_fp32 ? static_cast<void*>(c32.get()) : static_cast<void*>(c16.get()), c.n,
                 c.c_fp32, c.beta, false);
    std::vector<double> want(c.m * c.n), scale(c.m * c.n);
    for (int64_t i = 0; i < c.m; ++i) {
      for (int64_t j = 0; j < c.n; ++j) {
        double sum = 0, abs_sum = 0;
        for (int64_t p = 0; p < c.k; ++p) {
          const double term =
              host_value(a[i * c.k + p], c.fa) * a_inv * host_value(b[j * c.k + p], c.fb) * b_inv;
          sum += term;
          abs_sum += std::abs(term);
        }
        want[i * c.n + j] = sum + c.beta * c0[i * c.n + j];
        scale[i * c.n + j] = abs_sum;
      }
    }
    const std::vector<double> got =
        c.c_fp32 ? to_double(c32.download()) : to_double(c16.download());
    std::vector<double> tol(want.size());
    for (size_t i = 0; i < tol.size(); ++i)
      // bf16 rounding of the output; the tensor cores' accumulation (Hopper's FP8 MMA keeps
      // fewer bits than fp32 between promotions): 1e-3 of the sum of |terms|, still a hundredth
      // of a typical entry at these k (an operand misread moves entries by their own size).
      tol[i] = (c.c_fp32 ? 0.0 : 8e-3 * std::abs(want[i])) + 1e-3 * scale[i] + 1e-6;
    expect_close(got, want, tol, "C");
  }
}

}  // namespace
}  // namespace mpsim::executor::kernels
