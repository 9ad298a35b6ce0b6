// The activations (executor/cuda/activation.h) and rotary embeddings (rotary.h) against float64
// loops on the host, on random
// inputs with fixed seeds (conventions in kernel_test_support.h). Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "executor/cuda/activation.h"
#include "executor/cuda/rotary.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

double gelu_ref(double x) {
  return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

TEST_F(KernelsTest, BiasGeluForwardAndBackward) {
  for (const Shape& s : kBiasShapes) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(name(s) + (with_bias ? " +bias" : ""));
      const int64_t n = s.rows * s.cols;
      const auto x = to_bf16(randn(n, 71, 2.0));
      const auto dy = to_bf16(randn(n, 72));
      const auto bias = to_bf16(randn(s.cols, 73));
      const auto dbias0 = randn(s.cols, 74);
      DeviceArray<bf16> d_x(x), d_dy(dy), d_bias(bias), d_y(n), d_dx(n);
      DeviceArray<float> d_dbias(dbias0);
      const bf16* b = with_bias ? d_bias.get() : nullptr;

      // The derivative by central differences, independent of the kernel's formula.
      std::vector<double> want_y(n), want_dx(n), want_db = to_double(dbias0), tol_db(s.cols, 1e-5);
      for (int64_t i = 0; i < n; ++i) {
        const double z = static_cast<double>(__bfloat162float(x[i])) +
                         (with_bias ? __bfloat162float(bias[i % s.cols]) : 0.0);
        const double h = 1e-5;
        want_y[i] = gelu_ref(z);
        want_dx[i] = __bfloat162float(dy[i]) * (gelu_ref(z + h) - gelu_ref(z - h)) / (2 * h);
        want_db[i % s.cols] += 2 * want_dx[i];
        tol_db[i % s.cols] += 1e-4 * std::abs(want_dx[i]);
      }
      bias_gelu_forward(d_x.get(), b, d_y.get(), s.rows, s.cols, nullptr);
      expect_close(to_double(d_y.download()), want_y, 1e-2, 1e-3, "y");

      for (int i = 0; i < 2; ++i)
        bias_gelu_backward(d_dy.get(), d_x.get(), b, d_dx.get(), d_dbias.get(), s.rows, s.cols,
                           nullptr);
      expect_close(to_double(d_dx.download()), want_dx, 1e-2, 1e-3, "dx");
      expect_close(to_double(d_dbias.download()), want_db, tol_db, "dbias");

      // Without dbias, in place on dy.
      bias_gelu_backward(d_dy.get(), d_x.get(), b, d_dy.get(), nullptr, s.rows, s.cols, nullptr);
      expect_close(to_double(d_dy.download()), want_dx, 1e-2, 1e-3, "dx in place");
    }
  }
}

// SwiGLU on fc1's interleaved (gate, up) columns, forward and backward, on the vectorised widths
// (176, 5632) and element-wise ones (5), with and without a bias; the derivatives by central
// differences.
TEST_F(KernelsTest, SwigluForwardAndBackward) {
  const std::vector<Shape> shapes = {{33, 176}, {7, 5632}, {17, 5}};
  auto silu = [](double g) { return g / (1.0 + std::exp(-g)); };
  for (const Shape& s : shapes) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(name(s) + (with_bias ? " +bias" : ""));
      const int64_t n = s.rows * s.cols;
      const auto x = to_bf16(randn(2 * n, 75, 2.0));
      const auto dy = to_bf16(randn(n, 76));
      const auto bias = to_bf16(randn(2 * s.cols, 77));
      DeviceArray<bf16> d_x(x), d_dy(dy), d_bias(bias), d_y(n), d_dx(2 * n);
      const bf16* b = with_bias ? d_bias.get() : nullptr;
      swiglu_forward(d_x.get(), b, d_y.get(), s.rows, s.cols, nullptr);
      swiglu_backward(d_dy.get(), d_x.get(), b, d_dx.get(), s.rows, s.cols, nullptr);
      std::vector<double> want_y(n), want_dx(2 * n);
      for (int64_t r = 0; r < s.rows; ++r) {
        for (int64_t j = 0; j < s.cols; ++j) {
          auto in = [&](int64_t k) {
            return static_cast<double>(__bfloat162float(x[r * 2 * s.cols + k])) +
                   (with_bias ? __bfloat162float(bias[k]) : 0.0);
          };
          const double g = in(2 * j), u = in(2 * j + 1), h = 1e-5;
          const double grad = __bfloat162float(dy[r * s.cols + j]);
          want_y[r * s.cols + j] = silu(g) * u;
          want_dx[r * 2 * s.cols + 2 * j] = grad * u * (silu(g + h) - silu(g - h)) / (2 * h);
          want_dx[r * 2 * s.cols + 2 * j + 1] = grad * silu(g);
        }
      }
      expect_close(to_double(d_y.download()), want_y, 1e-2, 1e-3, "y");
      expect_close(to_double(d_dx.download()), want_dx, 1e-2, 1e-3, "dx");
    }
  }
}

// Rotary embeddings against the rotation written out in float64: every query head and key of
// each group rotated by position x base^(-2i/d), values untouched, and the inverse restoring the
// input (to bf16 rounding); grouped-query (4 queries per key) and plain layouts, head sizes 64
// and 128, several sequences per micro-batch.
TEST_F(KernelsTest, RotaryRotatesQueriesAndKeysOnly) {
  struct Case {
    int64_t seq, micro_batch, kv_heads, group, d;
  };
  for (const Case& c : {Case{37, 2, 2, 4, 64}, Case{16, 3, 3, 1, 128}}) {
    SCOPED_TRACE("d " + std::to_string(c.d) + " group " + std::to_string(c.group));
    const int64_t rows = c.seq * c.micro_batch, width = c.kv_heads * (c.group + 2) * c.d;
    const double base = 10000;
    const auto x = to_bf16(randn(rows * width, 78));
    DeviceArray<bf16> d_x(x);
    DeviceArray<float2> angles(c.seq * c.d / 2);
    rotary_angles(angles.get(), c.seq, c.d, base, nullptr);
    rotary(d_x.get(), rows, c.micro_batch, c.kv_heads, c.group, c.d, angles.get(), false, nullptr);
    const std::vector<double> got = to_double(d_x.download());
    std::vector<double> want = to_double(x);
    const int64_t half = c.d / 2;
    for (int64_t row = 0; row < rows; ++row) {
      const double pos = static_cast<double>(row / c.micro_batch);
      for (int64_t g = 0; g < c.kv_heads; ++g) {
        for (int64_t slot = 0; slot <= c.group; ++slot) {  // the queries, then the key
          const int64_t at = row * width + g * (c.group + 2) * c.d + slot * c.d;
          for (int64_t i = 0; i < half; ++i) {
            const double angle = pos * std::pow(base, -2.0 * i / c.d);
            const double a = __bfloat162float(x[at + i]), b = __bfloat162float(x[at + i + half]);
            want[at + i] = a * std::cos(angle) - b * std::sin(angle);
            want[at + i + half] = b * std::cos(angle) + a * std::sin(angle);
          }
        }
      }
    }
    expect_close(got, want, 1e-2, 1e-2, "rotated");
    rotary(d_x.get(), rows, c.micro_batch, c.kv_heads, c.group, c.d, angles.get(), true, nullptr);
    expect_close(to_double(d_x.download()), to_double(x), 2e-2, 2e-2, "inverse");
  }
}

}  // namespace
}  // namespace mpsim::executor::kernels
