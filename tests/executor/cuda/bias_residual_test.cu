// The bias and residual kernels (executor/cuda/bias_residual.h) against float64 loops on the host,
// on random inputs with fixed seeds (conventions in kernel_test_support.h). Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "executor/cuda/bias_residual.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

TEST_F(KernelsTest, BiasAddAndBiasGradAccumulate) {
  for (const Shape& s : kBiasShapes) {
    SCOPED_TRACE(name(s));
    const int64_t n = s.rows * s.cols;
    const auto x = to_bf16(randn(n, 51));
    const auto bias = to_bf16(randn(s.cols, 52));
    const auto dbias0 = randn(s.cols, 53);
    DeviceArray<bf16> d_x(x), d_bias(bias);
    DeviceArray<float> d_dbias(dbias0);
    bias_add(d_x.get(), d_bias.get(), s.rows, s.cols, nullptr);
    std::vector<double> want(n);
    for (int64_t i = 0; i < n; ++i)
      want[i] = static_cast<double>(__bfloat162float(x[i])) + __bfloat162float(bias[i % s.cols]);
    expect_close(to_double(d_x.download()), want, 1e-2, 1e-3, "bias_add");

    d_x.upload(x);
    for (int i = 0; i < 2; ++i) bias_grad(d_x.get(), d_dbias.get(), s.rows, s.cols, nullptr);
    std::vector<double> want_db = to_double(dbias0), tol(s.cols, 1e-5);
    for (int64_t i = 0; i < n; ++i) {
      want_db[i % s.cols] += 2.0 * __bfloat162float(x[i]);
      tol[i % s.cols] += 1e-5 * std::abs(__bfloat162float(x[i]));
    }
    expect_close(to_double(d_dbias.download()), want_db, tol, "dbias");
  }
}

TEST_F(KernelsTest, BiasResidualForward) {
  for (const Shape& s : kBiasShapes) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(name(s) + (with_bias ? " +bias" : ""));
      const int64_t n = s.rows * s.cols;
      const auto x = to_bf16(randn(n, 61)), residual = to_bf16(randn(n, 62));
      const auto bias = to_bf16(randn(s.cols, 63));
      std::vector<double> want(n);
      for (int64_t i = 0; i < n; ++i)
        want[i] = static_cast<double>(__bfloat162float(x[i])) + __bfloat162float(residual[i]) +
                  (with_bias ? __bfloat162float(bias[i % s.cols]) : 0.0);
      DeviceArray<bf16> d_x(x), d_res(residual), d_bias(bias), d_out(n);
      const bf16* b = with_bias ? d_bias.get() : nullptr;
      bias_residual_forward(d_x.get(), b, d_res.get(), d_out.get(), s.rows, s.cols, nullptr);
      expect_close(to_double(d_out.download()), want, 1e-2, 1e-2, "out");
      bias_residual_forward(d_x.get(), b, d_res.get(), d_res.get(), s.rows, s.cols, nullptr);
      expect_close(to_double(d_res.download()), want, 1e-2, 1e-2, "out aliasing residual");
    }
  }
}

}  // namespace
}  // namespace mpsim::executor::kernels
