// The activations (executor/cuda/activation.h) against float64 loops on the host, on random
// inputs with fixed seeds (conventions in kernel_test_support.h). Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "executor/cuda/activation.h"
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

}  // namespace
}  // namespace mpsim::executor::kernels
