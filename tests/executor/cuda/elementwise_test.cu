// The element-wise kernels (executor/cuda/elementwise.h) against float64 loops on the host, on
// random inputs with fixed seeds (conventions in kernel_test_support.h). Skips without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "executor/core/param_init.h"
#include "executor/cuda/elementwise.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

TEST_F(KernelsTest, CastFillAndAddMatchElementWiseRounding) {
  const int64_t n = 100003;
  const std::vector<float> f = randn(n + 1, 1);
  const std::vector<bf16> a = to_bf16(randn(n + 1, 2)), b = to_bf16(randn(n + 1, 3));
  DeviceArray<float> d_f(f), d_fill(n + 1);
  DeviceArray<bf16> d_cast(n + 1), d_a(a), d_b(b), d_sum(n + 1);
  for (int offset : {0, 1}) {  // offset 1: not 16-byte aligned, the element-wise path
    SCOPED_TRACE("offset " + std::to_string(offset));
    cast_fp32_to_bf16(d_f.get() + offset, d_cast.get() + offset, n, nullptr);
    fill_fp32(d_fill.get() + offset, 2.5f, n, nullptr);
    add_bf16(d_a.get() + offset, d_b.get() + offset, d_sum.get() + offset, n, nullptr);
    const std::vector<bf16> cast = d_cast.download(), sum = d_sum.download();
    const std::vector<float> fill = d_fill.download();
    int64_t bad_cast = 0, bad_fill = 0, bad_sum = 0;
    for (int64_t i = offset; i < offset + n; ++i) {
      bad_cast += __bfloat162float(cast[i]) != __bfloat162float(__float2bfloat16(f[i]));
      bad_fill += fill[i] != 2.5f;
      const float want =
          __bfloat162float(__float2bfloat16(__bfloat162float(a[i]) + __bfloat162float(b[i])));
      bad_sum += __bfloat162float(sum[i]) != want;
    }
    EXPECT_EQ(bad_cast, 0);
    EXPECT_EQ(bad_fill, 0);
    EXPECT_EQ(bad_sum, 0);
    if (offset == 1) EXPECT_EQ(fill[0], 2.5f);  // left from the aligned run, not overwritten
  }
  // In place: a += b.
  add_bf16(d_a.get(), d_b.get(), d_a.get(), n, nullptr);
  const std::vector<bf16> in_place = d_a.download();
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i)
    bad += __bfloat162float(in_place[i]) !=
           __bfloat162float(__float2bfloat16(__bfloat162float(a[i]) + __bfloat162float(b[i])));
  EXPECT_EQ(bad, 0);
}

TEST_F(KernelsTest, InitParameterIsTheGlobalTensorsBlock) {
  // Block rows [3, 8) x cols [4, 10) of a [10, 12] tensor.
  const int64_t rows = 5, cols = 6, row_offset = 3, col_offset = 4, global_cols = 12;
  const uint64_t seed = 7, id = parameter_id("layers.0.attention.qkv.weight");
  DeviceArray<float> d(rows * cols);
  init_parameter(d.get(), rows, cols, row_offset, col_offset, global_cols, seed, id, 0.5f, 0.02f,
                 nullptr);
  const std::vector<float> got = d.download();
  std::vector<double> want(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      want[r * cols + c] =
          0.5f + 0.02f * init_normal(seed, id, (row_offset + r) * global_cols + col_offset + c);
  expect_close(to_double(got), want, 0.0, 1e-6, "init");

  init_parameter(d.get(), rows, cols, 0, 0, cols, seed, id, 1.0f, 0.0f, nullptr);
  for (float x : d.download()) EXPECT_EQ(x, 1.0f);
}

}  // namespace
}  // namespace mpsim::executor::kernels
