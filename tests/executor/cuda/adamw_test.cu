// The AdamW step (executor/cuda/adamw.h) against float64 loops on the host, on random
// inputs with fixed seeds (conventions in kernel_test_support.h). Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "executor/cuda/adamw.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

TEST_F(KernelsTest, AdamWMatchesTorchFormula) {
  const int64_t n = 1001;  // a vectorised body and a tail
  const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, wd = 0.1f, grad_scale = 0.5f;
  const int64_t step = 3;
  const std::vector<float> w0 = randn(n + 1, 121), g = randn(n + 1, 122, 1e-2);
  const std::vector<float> m0 = randn(n + 1, 123, 1e-3);
  std::vector<float> v0 = randn(n + 1, 124, 1e-4);
  for (auto& v : v0) v = std::abs(v);
  std::vector<uint8_t> mask(n + 1);
  std::vector<uint32_t> bits((n + 32) / 32, 0);
  for (int64_t i = 0; i <= n; ++i) {
    mask[i] = i % 3 != 0;
    if (mask[i] != 0) bits[i / 32] |= 1u << (i % 32);
  }
  for (int offset : {0, 1}) {
    for (bool with_mask_and_model : {true, false}) {
      SCOPED_TRACE("offset " + std::to_string(offset) + (with_mask_and_model ? " +mask" : ""));
      DeviceArray<float> d_w(w0), d_g(g), d_m(m0), d_v(v0);
      DeviceArray<bf16> d_model(n + 1);
      DeviceArray<uint32_t> d_bits(bits);
      adamw_step(d_w.get() + offset, d_g.get() + offset, d_m.get() + offset, d_v.get() + offset,
                 with_mask_and_model ? d_model.get() + offset : nullptr,
                 with_mask_and_model ? d_bits.get() : nullptr, offset, n, lr, beta1, beta2, eps, wd,
                 step, grad_scale, nullptr);
      std::vector<double> want_w(n), want_m(n), want_v(n);
      const double bc1 = 1 - std::pow(double{beta1}, step), bc2 = 1 - std::pow(double{beta2}, step);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = offset + i;
        const double gg = double{g[k]} * grad_scale;
        const double m = beta1 * double{m0[k]} + (1 - double{beta1}) * gg;
        const double v = beta2 * double{v0[k]} + (1 - double{beta2}) * gg * gg;
        const bool decay = !with_mask_and_model || mask[k] != 0;
        want_w[i] =
            w0[k] - lr * ((m / bc1) / (std::sqrt(v / bc2) + eps) + (decay ? wd * w0[k] : 0));
        want_m[i] = m;
        want_v[i] = v;
      }
      const std::vector<float> w = d_w.download(), m = d_m.download(), v = d_v.download();
      expect_close(to_double(std::vector<float>(w.begin() + offset, w.begin() + offset + n)),
                   want_w, 1e-6, 1e-6, "master");
      expect_close(to_double(std::vector<float>(m.begin() + offset, m.begin() + offset + n)),
                   want_m, 1e-5, 1e-10, "m");  // b1 m + (1 - b1) g may cancel: fp32 terms
                                               // of ~1e-3 leave ~1e-10 absolute
      expect_close(to_double(std::vector<float>(v.begin() + offset, v.begin() + offset + n)),
                   want_v, 1e-5, 1e-14, "v");
      if (with_mask_and_model) {
        const std::vector<bf16> model = d_model.download();
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i)
          bad += __bfloat162float(model[offset + i]) !=
                 __bfloat162float(__float2bfloat16(w[offset + i]));
        EXPECT_EQ(bad, 0) << "model must be bf16(master)";
      }
    }
  }
}

}  // namespace
}  // namespace mpsim::executor::kernels
