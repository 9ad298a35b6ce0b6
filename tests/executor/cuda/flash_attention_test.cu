// Flash attention through cuDNN (executor/cuda/flash_attention.h) against float64 loops on the
// host: the output, the log-sum-exp and the three input gradients of causal attention, with and
// without grouped-query attention, on the trainer's interleaved QKV rows (read in place through
// strides) and on packed tensors, sequence lengths that are and are not multiples of the kernels'
// tiles. Inputs are bf16, so the reference sees the GPU's values; the tolerances cover the kernels'
// bf16 probabilities and score gradients (2^-8 relative) against a float64 reference. Skips
// without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "executor/cuda/device_memory.h"
#include "executor/cuda/flash_attention.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

struct Case {
  int64_t batch, heads, kv_heads, seq, head_dim;
  bool interleaved;  // the trainer's QKV rows (sequence-major tokens, [kv group][r q, k, v])
};

std::string name(const Case& c) {
  return "b" + std::to_string(c.batch) + " h" + std::to_string(c.heads) + "/" +
         std::to_string(c.kv_heads) + " s" + std::to_string(c.seq) + " d" +
         std::to_string(c.head_dim) + (c.interleaved ? " interleaved" : " packed");
}

int64_t offset(const HeadStrides& st, int64_t b, int64_t h, int64_t t, int64_t e) {
  return b * st.batch + h * st.head + t * st.seq + e;
}

// Layouts: interleaved = one buffer of rows t * batch + b, each [kv][(r + 2) d] (MHA only: the
// query heads are then evenly strided); packed = Q, K, V, O each [b][h][s][d].
struct Layout {
  AttentionShape shape;
  int64_t q_size, kv_size, o_size;  // elements of the buffers q, k/v and o point into
  int64_t k_offset, v_offset;       // of K and V within their buffer
};

Layout layout(const Case& c) {
  Layout l;
  AttentionShape& s = l.shape;
  s.batch = c.batch, s.heads = c.heads, s.kv_heads = c.kv_heads, s.seq = c.seq;
  s.head_dim = c.head_dim;
  const int64_t d = c.head_dim, r = c.heads / c.kv_heads;
  if (c.interleaved) {
    const int64_t row = c.kv_heads * (r + 2) * d;
    s.q = s.k = s.v = {row, (r + 2) * d, c.batch * row};
    l.q_size = l.kv_size = c.seq * c.batch * row;
    l.k_offset = r * d;
    l.v_offset = (r + 1) * d;
    s.o = {c.heads * d, d, c.batch * c.heads * d};
  } else {
    s.q = s.o = {c.heads * c.seq * d, c.seq * d, d};
    s.k = s.v = {c.kv_heads * c.seq * d, c.seq * d, d};
    l.q_size = c.batch * c.heads * c.seq * d;
    l.kv_size = 2 * c.batch * c.kv_heads * c.seq * d;
    l.k_offset = 0;
    l.v_offset = c.batch * c.kv_heads * c.seq * d;
  }
  l.o_size = c.batch * c.heads * c.seq * d;
  return l;
}

class FlashAttentionTest : public KernelsTest {};

TEST_F(FlashAttentionTest, MatchesFloat64ForwardAndBackward) {
  const std::vector<Case> cases = {
      {2, 4, 4, 128, 64, true},   // MHA on the trainer's QKV rows
      {2, 8, 2, 256, 64, false},  // grouped-query attention, 4 queries per key/value head
      {1, 2, 1, 96, 128, false},  // a sequence that is not a multiple of 64, head size 128
      {3, 2, 2, 200, 64, true},   // an odd batch and a partial tile on the trainer's rows
  };
  DeviceMemory memory;
  FlashAttention attention(memory, nullptr);
  for (const Case& c : cases) {
    SCOPED_TRACE(name(c));
    const Layout l = layout(c);
    const AttentionShape& s = l.shape;
    const int64_t d = c.head_dim, r = c.heads / c.kv_heads, n = c.seq;
    const auto q_host = to_bf16(randn(l.q_size, 11));
    const auto kv_host = c.interleaved ? q_host : to_bf16(randn(l.kv_size, 12));
    const auto dout_host = to_bf16(randn(l.o_size, 13));
    DeviceArray<bf16> q(q_host), kv(kv_host), o(l.o_size), dout(dout_host);
    DeviceArray<float> lse(c.batch * c.heads * n);
    DeviceArray<bf16> dq(l.q_size), dkv(l.kv_size);
    const bf16* k = (c.interleaved ? q.get() : kv.get()) + l.k_offset;
    const bf16* v = (c.interleaved ? q.get() : kv.get()) + l.v_offset;
    bf16* dq_ptr = dq.get();
    bf16* dk = (c.interleaved ? dq.get() : dkv.get()) + l.k_offset;
    bf16* dv = (c.interleaved ? dq.get() : dkv.get()) + l.v_offset;
    attention.forward(s, q.get(), k, v, o.get(), lse.get());
    attention.backward(s, q.get(), k, v, o.get(), dout.get(), lse.get(), dq_ptr, dk, dv);
    const std::vector<double> got_o = to_double(o.download()), got_lse = to_double(lse.download());
    const std::vector<double> got_dq = to_double(dq.download());
    const std::vector<double> got_dkv = c.interleaved ? got_dq : to_double(dkv.download());

    const std::vector<double>& kvd = c.interleaved ? to_double(q_host) : to_double(kv_host);
    const std::vector<double> qd = to_double(q_host), dod = to_double(dout_host);
    auto Q = [&](int64_t b, int64_t h, int64_t t, int64_t e) {
      return qd[offset(s.q, b, h, t, e)];
    };
    auto K = [&](int64_t b, int64_t g, int64_t t, int64_t e) {
      return kvd[l.k_offset + offset(s.k, b, g, t, e)];
    };
    auto V = [&](int64_t b, int64_t g, int64_t t, int64_t e) {
      return kvd[l.v_offset + offset(s.v, b, g, t, e)];
    };
    auto dO = [&](int64_t b, int64_t h, int64_t t, int64_t e) {
      return dod[offset(s.o, b, h, t, e)];
    };

    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    std::vector<double> want_o, got_o_seen, want_lse, got_lse_seen;
    std::vector<double> want_dq, got_dq_seen, want_dk, got_dk_seen, want_dv, got_dv_seen;
    for (int64_t b = 0; b < c.batch; ++b) {
      std::vector<double> dk_acc(c.kv_heads * n * d, 0.0), dv_acc(c.kv_heads * n * d, 0.0);
      for (int64_t h = 0; h < c.heads; ++h) {
        const int64_t g = h / r;
        // P (n x n, causal), O, and the gradients of this head.
        std::vector<double> p(n * n, 0.0), dp(n * n, 0.0);
        for (int64_t i = 0; i < n; ++i) {
          double m = -INFINITY;
          for (int64_t j = 0; j <= i; ++j) {
            double dot = 0;
            for (int64_t e = 0; e < d; ++e) dot += Q(b, h, i, e) * K(b, g, j, e);
            p[i * n + j] = dot * scale;
            m = std::max(m, p[i * n + j]);
          }
          double sum = 0;
          for (int64_t j = 0; j <= i; ++j) sum += std::exp(p[i * n + j] - m);
          for (int64_t j = 0; j <= i; ++j) p[i * n + j] = std::exp(p[i * n + j] - m) / sum;
          want_lse.push_back(m + std::log(sum));
          got_lse_seen.push_back(got_lse[(b * c.heads + h) * n + i]);
          double row_dot = 0;  // rowsum(dO * O)
          for (int64_t e = 0; e < d; ++e) {
            double out = 0;
            for (int64_t j = 0; j <= i; ++j) out += p[i * n + j] * V(b, g, j, e);
            want_o.push_back(out);
            got_o_seen.push_back(got_o[offset(s.o, b, h, i, e)]);
            row_dot += dO(b, h, i, e) * out;
          }
          for (int64_t j = 0; j <= i; ++j) {
            double dpij = 0;
            for (int64_t e = 0; e < d; ++e) dpij += dO(b, h, i, e) * V(b, g, j, e);
            dp[i * n + j] = p[i * n + j] * (dpij - row_dot) * scale;  // dS
          }
        }
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t e = 0; e < d; ++e) {
            double acc = 0;
            for (int64_t j = 0; j <= i; ++j) acc += dp[i * n + j] * K(b, g, j, e);
            want_dq.push_back(acc);
            got_dq_seen.push_back(got_dq[offset(s.q, b, h, i, e)]);
          }
        }
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t e = 0; e < d; ++e) {
            double dk_je = 0, dv_je = 0;
            for (int64_t i = j; i < n; ++i) {
              dk_je += dp[i * n + j] * Q(b, h, i, e);
              dv_je += p[i * n + j] * dO(b, h, i, e);
            }
            dk_acc[(g * n + j) * d + e] += dk_je;
            dv_acc[(g * n + j) * d + e] += dv_je;
          }
        }
      }
      for (int64_t g = 0; g < c.kv_heads; ++g) {
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t e = 0; e < d; ++e) {
            want_dk.push_back(dk_acc[(g * n + j) * d + e]);
            got_dk_seen.push_back(got_dkv[l.k_offset + offset(s.k, b, g, j, e)]);
            want_dv.push_back(dv_acc[(g * n + j) * d + e]);
            got_dv_seen.push_back(got_dkv[l.v_offset + offset(s.v, b, g, j, e)]);
          }
        }
      }
    }
    // bf16 outputs of fp32 accumulations over bf16 probabilities: 2^-8 relative, plus a floor of
    // 1 % of the tensor's largest entry for cancellations in long sums.
    expect_close(got_o_seen, want_o, 1e-2, 1e-2 * max_abs(want_o), "O");
    expect_close(got_lse_seen, want_lse, 1e-4, 1e-3, "log-sum-exp");
    expect_close(got_dq_seen, want_dq, 2e-2, 2e-2 * max_abs(want_dq), "dQ");
    expect_close(got_dk_seen, want_dk, 2e-2, 2e-2 * max_abs(want_dk), "dK");
    expect_close(got_dv_seen, want_dv, 2e-2, 2e-2 * max_abs(want_dv), "dV");
  }
}

TEST_F(FlashAttentionTest, RefusesHeadSizesTheKernelsCannotRun) {
  DeviceMemory memory;
  FlashAttention attention(memory, nullptr);
  Layout l = layout({1, 2, 2, 64, 64, false});
  l.shape.head_dim = 60;
  DeviceArray<bf16> x(4 * 64 * 64);
  DeviceArray<float> lse(2 * 64);
  try {
    attention.forward(l.shape, x.get(), x.get(), x.get(), x.get(), lse.get());
    FAIL() << "a head size of 60 must be refused";
  } catch (const ExecutorError& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mpsim::executor::kernels
