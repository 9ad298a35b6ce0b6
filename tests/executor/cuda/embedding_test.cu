// The embedding kernels (executor/cuda/embedding.h) against float64 loops on the host, on random
// inputs with fixed seeds (conventions in kernel_test_support.h). Skips without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "executor/cuda/embedding.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

TEST_F(KernelsTest, EmbeddingForwardAndBackwardOnAVocabularySlice) {
  const int64_t seq = 7, micro_batch = 3, rows = seq * micro_batch;
  const int64_t vocab = 50, vocab_start = 20, vocab_local = 16;
  std::mt19937 gen(11);
  std::vector<int32_t> tokens(rows);
  for (auto& t : tokens) t = static_cast<int32_t>(gen() % vocab);
  DeviceArray<int32_t> d_tokens(tokens);
  for (int64_t hidden : {24, 13}) {
    for (bool with_position : {true, false}) {
      SCOPED_TRACE("hidden " + std::to_string(hidden) + (with_position ? " +position" : ""));
      const std::vector<bf16> word = to_bf16(randn(vocab_local * hidden, 12));
      const std::vector<bf16> position = to_bf16(randn(seq * hidden, 13));
      DeviceArray<bf16> d_word(word), d_position(position), d_out(rows * hidden);
      embedding_forward(d_tokens.get(), d_word.get(), with_position ? d_position.get() : nullptr,
                        d_out.get(), rows, hidden, micro_batch, vocab_start, vocab_local, nullptr);
      std::vector<double> want(rows * hidden, 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t local = tokens[r] - vocab_start;
        for (int64_t c = 0; c < hidden; ++c) {
          double v = 0.0;
          if (local >= 0 && local < vocab_local) v += __bfloat162float(word[local * hidden + c]);
          if (with_position) v += __bfloat162float(position[(r / micro_batch) * hidden + c]);
          want[r * hidden + c] = v;
        }
      }
      expect_close(to_double(d_out.download()), want, 1e-2, 1e-3, "out");

      // Backward twice: main grads accumulate.
      const std::vector<bf16> dout = to_bf16(randn(rows * hidden, 14));
      const std::vector<float> dword0 = randn(vocab_local * hidden, 15);
      const std::vector<float> dposition0 = randn(seq * hidden, 16);
      DeviceArray<bf16> d_dout(dout);
      DeviceArray<float> d_dword(dword0), d_dposition(dposition0);
      for (int i = 0; i < 2; ++i)
        embedding_backward(d_tokens.get(), d_dout.get(), d_dword.get(),
                           with_position ? d_dposition.get() : nullptr, rows, hidden, micro_batch,
                           vocab_start, vocab_local, nullptr);
      std::vector<double> want_dword = to_double(dword0), want_dposition = to_double(dposition0);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t local = tokens[r] - vocab_start;
        for (int64_t c = 0; c < hidden; ++c) {
          const double g = __bfloat162float(dout[r * hidden + c]);
          if (local >= 0 && local < vocab_local) want_dword[local * hidden + c] += 2 * g;
          if (with_position) want_dposition[(r / micro_batch) * hidden + c] += 2 * g;
        }
      }
      expect_close(to_double(d_dword.download()), want_dword, 1e-5, 1e-5, "dword");
      expect_close(to_double(d_dposition.download()), want_dposition, 1e-5, 1e-5, "dposition");
    }
  }
}

}  // namespace
}  // namespace mpsim::executor::kernels
