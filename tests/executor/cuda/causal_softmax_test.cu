// The causal softmax (executor/cuda/causal_softmax.h) against float64 loops on the host, on random
// inputs with fixed seeds (conventions in kernel_test_support.h). Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "executor/cuda/causal_softmax.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

struct SoftmaxShape {
  int64_t batch, seq;
};
// A long row (2048, and 4096, the longest the trainer uses), one warp per row (64), element-wise
// (100).
const std::vector<SoftmaxShape> kSoftmaxShapes = {{3, 2048}, {1, 4096}, {4, 64}, {5, 100}};

TEST_F(KernelsTest, CausalSoftmaxForwardMasksAndNormalises) {
  const float scale = 0.125f;
  for (const SoftmaxShape& s : kSoftmaxShapes) {
    SCOPED_TRACE(std::to_string(s.batch) + "x" + std::to_string(s.seq));
    const int64_t n = s.batch * s.seq * s.seq;
    const auto scores = to_bf16(randn(n, 81, 16.0));
    DeviceArray<bf16> d_scores(scores), d_probs(n);
    causal_softmax_forward(d_scores.get(), d_probs.get(), s.batch, s.seq, scale, nullptr);
    const std::vector<bf16> probs = d_probs.download();

    std::vector<double> got = to_double(probs), want(n, 0.0);
    int64_t unmasked = 0, bad_sums = 0;
    for (int64_t row = 0; row < s.batch * s.seq; ++row) {
      const int64_t i = row % s.seq;
      const bf16* in = &scores[row * s.seq];
      double m = -INFINITY, sum = 0.0, got_sum = 0.0;
      for (int64_t j = 0; j <= i; ++j) m = std::max(m, scale * double{__bfloat162float(in[j])});
      for (int64_t j = 0; j <= i; ++j) sum += std::exp(scale * double{__bfloat162float(in[j])} - m);
      for (int64_t j = 0; j <= i; ++j)
        want[row * s.seq + j] = std::exp(scale * double{__bfloat162float(in[j])} - m) / sum;
      for (int64_t j = 0; j < s.seq; ++j) got_sum += got[row * s.seq + j];
      for (int64_t j = i + 1; j < s.seq; ++j) unmasked += got[row * s.seq + j] != 0.0;
      bad_sums += std::abs(got_sum - 1.0) > 1e-2;
    }
    EXPECT_EQ(unmasked, 0) << "masked entries must be exactly 0";
    EXPECT_EQ(bad_sums, 0) << "rows must sum to 1";
    expect_close(got, want, 1e-2, 1e-6, "probs");

    // In place gives the same bits.
    causal_softmax_forward(d_scores.get(), d_scores.get(), s.batch, s.seq, scale, nullptr);
    const std::vector<bf16> in_place = d_scores.download();
    int64_t differ = 0;
    for (int64_t k = 0; k < n; ++k)
      differ += __bfloat162float(in_place[k]) != __bfloat162float(probs[k]);
    EXPECT_EQ(differ, 0);
  }
}

TEST_F(KernelsTest, CausalSoftmaxBackward) {
  const float scale = 0.125f;
  for (const SoftmaxShape& s : kSoftmaxShapes) {
    SCOPED_TRACE(std::to_string(s.batch) + "x" + std::to_string(s.seq));
    const int64_t n = s.batch * s.seq * s.seq;
    // Probabilities of a causal softmax (rounded to bf16) and random upstream gradients, also
    // above the diagonal: the kernel must ignore them there.
    std::vector<float> p(n, 0.f);
    const std::vector<float> logits = randn(n, 91, 2.0);
    for (int64_t row = 0; row < s.batch * s.seq; ++row) {
      const int64_t i = row % s.seq;
      double sum = 0.0;
      for (int64_t j = 0; j <= i; ++j) sum += std::exp(double{logits[row * s.seq + j]});
      for (int64_t j = 0; j <= i; ++j)
        p[row * s.seq + j] = static_cast<float>(std::exp(double{logits[row * s.seq + j]}) / sum);
    }
    const auto probs = to_bf16(p);
    const auto dprobs = to_bf16(randn(n, 92));
    std::vector<double> want(n, 0.0);
    for (int64_t row = 0; row < s.batch * s.seq; ++row) {
      const int64_t i = row % s.seq;
      double dot = 0.0;
      for (int64_t j = 0; j <= i; ++j)
        dot += double{__bfloat162float(dprobs[row * s.seq + j])} *
               __bfloat162float(probs[row * s.seq + j]);
      for (int64_t j = 0; j <= i; ++j)
        want[row * s.seq + j] = scale * __bfloat162float(probs[row * s.seq + j]) *
                                (__bfloat162float(dprobs[row * s.seq + j]) - dot);
    }
    DeviceArray<bf16> d_probs(probs), d_dprobs(dprobs), d_dscores(n);
    causal_softmax_backward(d_dprobs.get(), d_probs.get(), d_dscores.get(), s.batch, s.seq, scale,
                            nullptr);
    const std::vector<double> got = to_double(d_dscores.download());
    int64_t unmasked = 0;
    for (int64_t row = 0; row < s.batch * s.seq; ++row)
      for (int64_t j = row % s.seq + 1; j < s.seq; ++j) unmasked += got[row * s.seq + j] != 0.0;
    EXPECT_EQ(unmasked, 0);
    expect_close(got, want, 1e-2, 1e-5, "dscores");

    causal_softmax_backward(d_dprobs.get(), d_probs.get(), d_dprobs.get(), s.batch, s.seq, scale,
                            nullptr);
    expect_close(to_double(d_dprobs.download()), want, 1e-2, 1e-5, "dscores in place");
  }
}

}  // namespace
}  // namespace mpsim::executor::kernels
