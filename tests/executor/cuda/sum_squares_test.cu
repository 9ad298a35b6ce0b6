// The sum of squares (executor/cuda/sum_squares.h) against float64 loops on the host, on random
// inputs with fixed seeds (conventions in kernel_test_support.h). Skips without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "executor/cuda/sum_squares.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

TEST_F(KernelsTest, SumSquaresAccumulates) {
  const int64_t n = 1000003;
  const std::vector<float> x = randn(n + 1, 111);
  DeviceArray<float> d_x(x);
  for (int offset : {0, 1}) {
    SCOPED_TRACE("offset " + std::to_string(offset));
    double want = 0.0;
    for (int64_t i = 0; i < n; ++i) want += double{x[offset + i]} * x[offset + i];
    DeviceArray<float> d_out(std::vector<float>{3.0f});
    for (int i = 0; i < 2; ++i) sum_squares(d_x.get() + offset, n, d_out.get(), nullptr);
    EXPECT_NEAR(d_out.download()[0], 3.0 + 2 * want, 1e-5 * (3.0 + 2 * want));
  }
}

}  // namespace
}  // namespace mpsim::executor::kernels
