// The executor's kernels (executor/cuda/kernels.h) against straightforward float64 loops on the
// host, on random inputs with fixed seeds. Inputs are rounded to bf16 first, so the reference sees
// exactly the values the GPU sees; tolerances then cover only fp32 arithmetic and the final bf16
// rounding of outputs (2^-8 relative). Sizes include odd widths (element-wise paths), row counts
// that leave partial blocks, and the widths the vectorised paths switch on. Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "executor/core/param_init.h"
#include "executor/cuda/cuda_check.h"
#include "executor/cuda/kernels.h"

namespace mpsim::executor::kernels {
namespace {

// ---- helpers ------------------------------------------------------------------------------------

template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    CUDA_CHECK(cudaMalloc(&ptr_, std::max<size_t>(n, 1) * sizeof(T)));
    CUDA_CHECK(cudaMemset(ptr_, 0, std::max<size_t>(n, 1) * sizeof(T)));
  }
  explicit DeviceArray(const std::vector<T>& v) : DeviceArray(v.size()) { upload(v); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(ptr_); }

  T* get() const { return ptr_; }
  void upload(const std::vector<T>& v) {
    CUDA_CHECK(cudaMemcpy(ptr_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> v(n_);
    CUDA_CHECK(cudaMemcpy(v.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

std::vector<float> randn(size_t n, uint32_t seed, double std = 1.0, double mean = 0.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(mean, std);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(dist(gen));
  return v;
}

std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16(v[i]);
  return out;
}
std::vector<double> to_double(const std::vector<bf16>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __bfloat162float(v[i]);
  return out;
}
std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Every element within rtol * |want| + atol; reports the first few that are not.
void expect_close(const std::vector<double>& got, const std::vector<double>& want, double rtol,
                  double atol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) <= rtol * std::abs(want[i]) + atol) continue;
    if (bad < 5) ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
    ++bad;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " out of tolerance";
}
// Per-element tolerance (e.g. for sums, relative to the sum of absolute terms).
void expect_close(const std::vector<double>& got, const std::vector<double>& want,
                  const std::vector<double>& tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) <= tol[i]) continue;
    if (bad < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i]
                    << " (tolerance " << tol[i] << ")";
    ++bad;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " out of tolerance";
}

class KernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) GTEST_SKIP() << "no GPU";
  }
};

struct Shape {
  int64_t rows, cols;
};
std::string name(const Shape& s) { return std::to_string(s.rows) + "x" + std::to_string(s.cols); }

// ---- element-wise -------------------------------------------------------------------------------

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

// ---- embedding ----------------------------------------------------------------------------------

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

// ---- normalisation ------------------------------------------------------------------------------

// Vectorised warp-per-row (1024, 64), block-per-row with several rows per block and a partial last
// group (2048, 4096), wide rows (8192, 12288), element-wise (100) and too wide for registers
// (40000).
const std::vector<Shape> kNormShapes = {{37, 1024}, {5, 8192},  {19, 100}, {3, 40000},
                                        {9, 2048},  {13, 4096}, {6, 64},   {3, 12288}};

struct NormReference {
  std::vector<double> y, mean, rstd;
};

NormReference norm_reference(const std::vector<double>& x, const std::vector<double>& gamma,
                             const std::vector<double>& beta, int64_t rows, int64_t cols,
                             double eps, bool rms) {
  NormReference ref{std::vector<double>(rows * cols), std::vector<double>(rows),
                    std::vector<double>(rows)};
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = &x[r * cols];
    double mu = 0.0;
    if (!rms) {
      for (int64_t c = 0; c < cols; ++c) mu += xr[c];
      mu /= cols;
    }
    double var = 0.0;
    for (int64_t c = 0; c < cols; ++c) var += (xr[c] - mu) * (xr[c] - mu);
    const double rs = 1.0 / std::sqrt(var / cols + eps);
    ref.mean[r] = mu;
    ref.rstd[r] = rs;
    for (int64_t c = 0; c < cols; ++c)
      ref.y[r * cols + c] = (xr[c] - mu) * rs * gamma[c] + (rms ? 0.0 : beta[c]);
  }
  return ref;
}

TEST_F(KernelsTest, NormForwardMatchesReference) {
  for (const Shape& s : kNormShapes) {
    for (bool rms : {false, true}) {
      SCOPED_TRACE(name(s) + (rms ? " rms" : " layernorm"));
      const auto x = to_bf16(randn(s.rows * s.cols, 21, 2.0, 0.5));
      const auto gamma = to_bf16(randn(s.cols, 22, 0.1, 1.0));
      const auto beta = to_bf16(randn(s.cols, 23, 0.1));
      DeviceArray<bf16> d_x(x), d_gamma(gamma), d_beta(beta), d_y(s.rows * s.cols);
      DeviceArray<float> d_mean(s.rows), d_rstd(s.rows);
      norm_forward(d_x.get(), d_gamma.get(), rms ? nullptr : d_beta.get(), d_y.get(), d_mean.get(),
                   d_rstd.get(), s.rows, s.cols, 1e-5f, rms, nullptr);
      const NormReference ref = norm_reference(to_double(x), to_double(gamma), to_double(beta),
                                               s.rows, s.cols, 1e-5, rms);
      expect_close(to_double(d_y.download()), ref.y, 1e-2, 1e-2, "y");
      expect_close(to_double(d_rstd.download()), ref.rstd, 1e-4, 0.0, "rstd");
      if (!rms) expect_close(to_double(d_mean.download()), ref.mean, 1e-4, 1e-5, "mean");
    }
  }
}

struct NormGradients {
  std::vector<double> dx, dgamma, dbeta, dgamma_abs, dbeta_abs;
};

// The textbook gradients given the saved statistics: with xhat = (x - mean) * rstd and
// g = dy * gamma, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (no mean(g) for RMSNorm).
// NormBackwardIsTheGradient checks this formula itself by finite differences.
NormGradients norm_gradients(const std::vector<double>& dy, const std::vector<double>& x,
                             const std::vector<double>& gamma, const std::vector<double>& mean,
                             const std::vector<double>& rstd, int64_t rows, int64_t cols,
                             bool rms) {
  NormGradients g{std::vector<double>(rows * cols), std::vector<double>(cols, 0.0),
                  std::vector<double>(cols, 0.0), std::vector<double>(cols, 0.0),
                  std::vector<double>(cols, 0.0)};
  for (int64_t r = 0; r < rows; ++r) {
    const double mu = rms ? 0.0 : mean[r], rs = rstd[r];
    double mg = 0.0, mgx = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      const double xh = (x[r * cols + c] - mu) * rs, gg = dy[r * cols + c] * gamma[c];
      mg += gg;
      mgx += gg * xh;
      g.dgamma[c] += dy[r * cols + c] * xh;
      g.dbeta[c] += dy[r * cols + c];
      g.dgamma_abs[c] += std::abs(dy[r * cols + c] * xh);
      g.dbeta_abs[c] += std::abs(dy[r * cols + c]);
    }
    mg = rms ? 0.0 : mg / cols;
    mgx /= cols;
    for (int64_t c = 0; c < cols; ++c) {
      const double xh = (x[r * cols + c] - mu) * rs;
      g.dx[r * cols + c] = rs * (dy[r * cols + c] * gamma[c] - mg - xh * mgx);
    }
  }
  return g;
}

TEST_F(KernelsTest, NormBackwardMatchesReferenceAndAccumulates) {
  for (const Shape& s : kNormShapes) {
    for (bool rms : {false, true}) {
      SCOPED_TRACE(name(s) + (rms ? " rms" : " layernorm"));
      const int64_t n = s.rows * s.cols;
      const auto x = to_bf16(randn(n, 31, 2.0, 0.5));
      const auto dy = to_bf16(randn(n, 32));
      const auto dres = to_bf16(randn(n, 33));
      const auto gamma = to_bf16(randn(s.cols, 34, 0.1, 1.0));
      const auto dgamma0 = randn(s.cols, 35), dbeta0 = randn(s.cols, 36);
      const NormReference stats = norm_reference(to_double(x), to_double(gamma), to_double(gamma),
                                                 s.rows, s.cols, 1e-5, rms);
      std::vector<float> mean(s.rows), rstd(s.rows);
      for (int64_t r = 0; r < s.rows; ++r) {
        mean[r] = static_cast<float>(stats.mean[r]);
        rstd[r] = static_cast<float>(stats.rstd[r]);
      }
      DeviceArray<bf16> d_x(x), d_dy(dy), d_dres(dres), d_gamma(gamma), d_dx(n);
      DeviceArray<float> d_mean(mean), d_rstd(rstd), d_dgamma(dgamma0), d_dbeta(dbeta0);
      float* dbeta = rms ? nullptr : d_dbeta.get();
      for (int i = 0; i < 2; ++i)
        norm_backward(d_dy.get(), d_x.get(), d_gamma.get(), d_mean.get(), d_rstd.get(),
                      d_dres.get(), d_dx.get(), d_dgamma.get(), dbeta, s.rows, s.cols, rms,
                      nullptr);
      const NormGradients g = norm_gradients(to_double(dy), to_double(x), to_double(gamma),
                                             to_double(mean), to_double(rstd), s.rows, s.cols, rms);
      std::vector<double> want_dx = g.dx;
      for (int64_t i = 0; i < n; ++i) want_dx[i] += __bfloat162float(dres[i]);
      expect_close(to_double(d_dx.download()), want_dx, 1e-2, 2e-3 * max_abs(want_dx), "dx");

      // Twice accumulated into the initial values.
      std::vector<double> want_dgamma(s.cols), want_dbeta(s.cols), tol_g(s.cols), tol_b(s.cols);
      for (int64_t c = 0; c < s.cols; ++c) {
        want_dgamma[c] = dgamma0[c] + 2 * g.dgamma[c];
        want_dbeta[c] = dbeta0[c] + 2 * g.dbeta[c];
        tol_g[c] = 1e-4 * g.dgamma_abs[c] + 1e-5;
        tol_b[c] = 1e-4 * g.dbeta_abs[c] + 1e-5;
      }
      expect_close(to_double(d_dgamma.download()), want_dgamma, tol_g, "dgamma");
      if (!rms) {
        expect_close(to_double(d_dbeta.download()), want_dbeta, tol_b, "dbeta");
      } else {
        EXPECT_EQ(d_dbeta.download(), dbeta0);  // untouched
      }

      // dx may alias dresidual.
      norm_backward(d_dy.get(), d_x.get(), d_gamma.get(), d_mean.get(), d_rstd.get(), d_dres.get(),
                    d_dres.get(), d_dgamma.get(), dbeta, s.rows, s.cols, rms, nullptr);
      expect_close(to_double(d_dres.download()), want_dx, 1e-2, 2e-3 * max_abs(want_dx),
                   "dx aliasing dresidual");
    }
  }
}

// The backward kernel against central finite differences of a float64 forward pass, for the loss
// L = sum dy * norm(x): checks that the formula is the exact gradient.
TEST_F(KernelsTest, NormBackwardIsTheGradient) {
  for (const Shape& s : std::vector<Shape>{{3, 24}, {2, 20}}) {
    for (bool rms : {false, true}) {
      SCOPED_TRACE(name(s) + (rms ? " rms" : " layernorm"));
      const int64_t n = s.rows * s.cols;
      const auto x = to_bf16(randn(n, 41, 1.5, 0.3));
      const auto dy = to_bf16(randn(n, 42));
      const auto gamma = to_bf16(randn(s.cols, 43, 0.3, 1.0));
      const auto beta = to_bf16(randn(s.cols, 44, 0.3));
      const double eps = 1e-5;
      std::vector<double> xd = to_double(x), gd = to_double(gamma);
      const std::vector<double> dyd = to_double(dy), bd = to_double(beta);
      auto loss = [&](const std::vector<double>& xv, const std::vector<double>& gv) {
        const NormReference ref = norm_reference(xv, gv, bd, s.rows, s.cols, eps, rms);
        double l = 0.0;
        for (int64_t i = 0; i < n; ++i) l += dyd[i] * ref.y[i];
        return l;
      };
      const double h = 1e-5;
      std::vector<double> want_dx(n), want_dgamma(s.cols);
      for (int64_t i = 0; i < n; ++i) {
        const double keep = xd[i];
        xd[i] = keep + h;
        const double up = loss(xd, gd);
        xd[i] = keep - h;
        const double down = loss(xd, gd);
        xd[i] = keep;
        want_dx[i] = (up - down) / (2 * h);
      }
      for (int64_t c = 0; c < s.cols; ++c) {
        const double keep = gd[c];
        gd[c] = keep + h;
        const double up = loss(xd, gd);
        gd[c] = keep - h;
        const double down = loss(xd, gd);
        gd[c] = keep;
        want_dgamma[c] = (up - down) / (2 * h);
      }
      const NormReference stats = norm_reference(xd, gd, bd, s.rows, s.cols, eps, rms);
      std::vector<float> mean(stats.mean.begin(), stats.mean.end());
      std::vector<float> rstd(stats.rstd.begin(), stats.rstd.end());
      DeviceArray<bf16> d_x(x), d_dy(dy), d_gamma(gamma), d_dx(n);
      DeviceArray<float> d_mean(mean), d_rstd(rstd), d_dgamma(s.cols), d_dbeta(s.cols);
      norm_backward(d_dy.get(), d_x.get(), d_gamma.get(), d_mean.get(), d_rstd.get(), nullptr,
                    d_dx.get(), d_dgamma.get(), rms ? nullptr : d_dbeta.get(), s.rows, s.cols, rms,
                    nullptr);
      expect_close(to_double(d_dx.download()), want_dx, 1e-2, 2e-3 * max_abs(want_dx), "dx");
      expect_close(to_double(d_dgamma.download()), want_dgamma, 1e-4, 1e-4, "dgamma");
    }
  }
}

// ---- biases, GeLU, residual ---------------------------------------------------------------------

const std::vector<Shape> kBiasShapes = {{33, 1024}, {17, 100}, {515, 3072}, {4, 8}, {3, 5}};

double gelu_ref(double x) {
  return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

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

// ---- causal softmax -----------------------------------------------------------------------------

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

// ---- cross-entropy ------------------------------------------------------------------------------

struct CrossEntropyCase {
  int64_t rows, vocab, padded;  // padded vocabulary, split in two halves for TP 2
};
std::string name(const CrossEntropyCase& c) {
  return std::to_string(c.rows) + " rows, vocab " + std::to_string(c.vocab) + " padded to " +
         std::to_string(c.padded);
}

// Odd and even shard widths (the element-wise and vectorised paths), padding inside the last
// shard, GPT-2's vocabulary, and a last shard made only of padding (64 + 64 columns, vocab 60).
const std::vector<CrossEntropyCase> kCrossEntropyCases = {
    {37, 1000, 1008}, {16, 997, 1000}, {8, 50257, 50304}, {5, 60, 128}};

// Random logits [rows, padded], rounded to bf16; padding columns are 100, so any that leaked into
// the max or the sums would dominate them. Targets cover ids 0 and vocab - 1.
struct CrossEntropyInput {
  std::vector<bf16> logits;
  std::vector<int32_t> targets;
};
CrossEntropyInput cross_entropy_input(const CrossEntropyCase& cs) {
  std::vector<float> raw = randn(cs.rows * cs.padded, 101, 3.0);
  for (int64_t r = 0; r < cs.rows; ++r)
    for (int64_t j = cs.vocab; j < cs.padded; ++j) raw[r * cs.padded + j] = 100.f;
  std::mt19937 gen(102);
  std::vector<int32_t> targets(cs.rows);
  for (auto& t : targets) t = static_cast<int32_t>(gen() % cs.vocab);
  targets[0] = 0;
  targets[cs.rows - 1] = static_cast<int32_t>(cs.vocab - 1);
  return {to_bf16(raw), targets};
}

// Float64 reference of one shard's partial: over real columns [start, min(start + local, vocab)),
// the row max (-inf when there is none), the sum of exp(logit - max) and the target's logit if
// the shard owns it, else 0.
struct CrossEntropyPartialReference {
  std::vector<double> row_max, sums, target;  // [rows] each
};
CrossEntropyPartialReference cross_entropy_partial_reference(const CrossEntropyCase& cs,
                                                             const CrossEntropyInput& in,
                                                             int64_t start, int64_t local) {
  const int64_t end = std::min(start + local, cs.vocab);
  CrossEntropyPartialReference ref{std::vector<double>(cs.rows, -INFINITY),
                                   std::vector<double>(cs.rows, 0.0),
                                   std::vector<double>(cs.rows, 0.0)};
  for (int64_t r = 0; r < cs.rows; ++r) {
    const bf16* l = &in.logits[r * cs.padded];
    for (int64_t j = start; j < end; ++j)
      ref.row_max[r] = std::max(ref.row_max[r], double{__bfloat162float(l[j])});
    for (int64_t j = start; j < end; ++j)
      ref.sums[r] += std::exp(__bfloat162float(l[j]) - ref.row_max[r]);
    if (in.targets[r] >= start && in.targets[r] < end)
      ref.target[r] = __bfloat162float(l[in.targets[r]]);
  }
  return ref;
}

// Float64 loss summed over rows and gradient [rows, padded] of the whole vocabulary.
struct CrossEntropyReference {
  CrossEntropyPartialReference global;
  double loss = 0.0;
  std::vector<double> grad;
};
CrossEntropyReference cross_entropy_reference(const CrossEntropyCase& cs,
                                              const CrossEntropyInput& in, double grad_scale) {
  CrossEntropyReference ref{cross_entropy_partial_reference(cs, in, 0, cs.padded), 0.0,
                            std::vector<double>(cs.rows * cs.padded, 0.0)};
  const CrossEntropyPartialReference& g = ref.global;
  for (int64_t r = 0; r < cs.rows; ++r) {
    ref.loss += std::log(g.sums[r]) + g.row_max[r] - g.target[r];
    for (int64_t j = 0; j < cs.vocab; ++j)
      ref.grad[r * cs.padded + j] =
          grad_scale *
          (std::exp(__bfloat162float(in.logits[r * cs.padded + j]) - g.row_max[r]) / g.sums[r] -
           (j == in.targets[r]));
  }
  return ref;
}

// What the executor does on `tp` ranks, with the all-gather done on the host: every shard writes
// its partial block, the blocks are concatenated in rank order, combined on the GPU, and every
// shard's gradient follows from the combined max and sums. The last shard's logits start one
// element past a 16-byte boundary when `unaligned_last` (the element-wise path).
struct CrossEntropyRun {
  std::vector<std::vector<float>> partials;  // per shard: [3 * rows]
  std::vector<float> row_max, sums;          // combined: [rows], [2 * rows]
  double loss = 0.0;
  std::vector<double> grad;  // [rows, padded]
};
CrossEntropyRun run_cross_entropy(const CrossEntropyCase& cs, const CrossEntropyInput& in, int tp,
                                  float grad_scale, bool unaligned_last) {
  const int64_t rows = cs.rows, local = cs.padded / tp;
  DeviceArray<int32_t> d_targets(in.targets);
  std::vector<std::unique_ptr<DeviceArray<bf16>>> d_logits;
  std::vector<int64_t> offsets;
  CrossEntropyRun out;
  std::vector<float> gathered;
  for (int k = 0; k < tp; ++k) {
    const int64_t start = k * local, offset = unaligned_last && k == tp - 1 ? 1 : 0;
    std::vector<bf16> slice(offset + rows * local);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < local; ++j)
        slice[offset + r * local + j] = in.logits[r * cs.padded + start + j];
    d_logits.push_back(std::make_unique<DeviceArray<bf16>>(slice));
    offsets.push_back(offset);
    DeviceArray<float> d_partial(3 * rows);
    cross_entropy_partial(d_logits[k]->get() + offset, d_targets.get(), d_partial.get(), rows,
                          local, start, cs.vocab, nullptr);
    out.partials.push_back(d_partial.download());
    gathered.insert(gathered.end(), out.partials[k].begin(), out.partials[k].end());
  }
  // Combining twice onto 1.5 checks that the loss accumulates.
  DeviceArray<float> d_gathered(gathered), d_row_max(rows), d_sums(2 * rows);
  DeviceArray<float> d_loss(std::vector<float>{1.5f});
  for (int i = 0; i < 2; ++i)
    cross_entropy_combine(d_gathered.get(), tp, d_row_max.get(), d_sums.get(), d_loss.get(), rows,
                          nullptr);
  out.row_max = d_row_max.download();
  out.sums = d_sums.download();
  out.loss = (double{d_loss.download()[0]} - 1.5) / 2;
  out.grad.assign(rows * cs.padded, 0.0);
  for (int k = 0; k < tp; ++k) {
    const int64_t start = k * local;
    cross_entropy_backward(d_logits[k]->get() + offsets[k], d_targets.get(), d_row_max.get(),
                           d_sums.get(), rows, local, start, cs.vocab, grad_scale, nullptr);
    const std::vector<double> g = to_double(d_logits[k]->download());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < local; ++j)
        out.grad[r * cs.padded + start + j] = g[offsets[k] + r * local + j];
  }
  return out;
}

// Sums of exp are within 2e-5 (fp32 accumulation of up to 50k terms, in a different order).
constexpr double kSumRtol = 2e-5;

void expect_loss_near(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, 1e-5 * std::abs(want) + 1e-4) << what;
}

// The combined statistics and loss against float64; the target logit and the row max are exact.
void expect_combined_matches(const CrossEntropyRun& run, const CrossEntropyReference& ref,
                             int64_t rows, const std::string& what) {
  const std::vector<double> sums = to_double(run.sums);
  expect_close(to_double(run.row_max), ref.global.row_max, 0.0, 0.0, what + " row max");
  expect_close(std::vector<double>(sums.begin(), sums.begin() + rows), ref.global.sums, kSumRtol,
               0.0, what + " sums");
  expect_close(std::vector<double>(sums.begin() + rows, sums.end()), ref.global.target, 0.0, 0.0,
               what + " target logits");
  expect_loss_near(run.loss, ref.loss, what + " loss");
}

int64_t nonzero_padding_grads(const CrossEntropyRun& run, const CrossEntropyCase& cs) {
  int64_t n = 0;
  for (int64_t r = 0; r < cs.rows; ++r)
    for (int64_t j = cs.vocab; j < cs.padded; ++j) n += run.grad[r * cs.padded + j] != 0.0;
  return n;
}

TEST_F(KernelsTest, CrossEntropyOnOneShardMatchesFloat64) {
  for (const CrossEntropyCase& cs : kCrossEntropyCases) {
    SCOPED_TRACE(name(cs));
    const CrossEntropyInput in = cross_entropy_input(cs);
    const float grad_scale = 1.0f / static_cast<float>(cs.rows);
    const CrossEntropyReference ref = cross_entropy_reference(cs, in, grad_scale);
    for (bool unaligned : {false, true}) {
      SCOPED_TRACE(unaligned ? "unaligned logits" : "aligned logits");
      const CrossEntropyRun one = run_cross_entropy(cs, in, 1, grad_scale, unaligned);
      // With one rank the partial already is the global statistics; combining keeps them.
      const std::vector<float>& p = one.partials[0];
      EXPECT_EQ(std::vector<float>(p.begin(), p.begin() + cs.rows), one.row_max);
      EXPECT_EQ(std::vector<float>(p.begin() + cs.rows, p.end()), one.sums);
      expect_combined_matches(one, ref, cs.rows, "one shard");
      expect_close(one.grad, ref.grad, 1e-2, 1e-7, "grad, one shard");
      EXPECT_EQ(nonzero_padding_grads(one, cs), 0);
    }
  }
}

TEST_F(KernelsTest, CrossEntropyOverTwoVocabularyShardsEqualsOneShard) {
  for (const CrossEntropyCase& cs : kCrossEntropyCases) {
    SCOPED_TRACE(name(cs));
    const CrossEntropyInput in = cross_entropy_input(cs);
    const float grad_scale = 1.0f / static_cast<float>(cs.rows);
    const CrossEntropyReference ref = cross_entropy_reference(cs, in, grad_scale);
    const CrossEntropyRun one = run_cross_entropy(cs, in, 1, grad_scale, false);
    // Shard 0 aligned, shard 1 not: both paths feed one combination.
    const CrossEntropyRun two = run_cross_entropy(cs, in, 2, grad_scale, true);

    const int64_t local = cs.padded / 2;
    for (int k = 0; k < 2; ++k) {
      SCOPED_TRACE("shard " + std::to_string(k));
      const CrossEntropyPartialReference want =
          cross_entropy_partial_reference(cs, in, k * local, local);
      const std::vector<double> got = to_double(two.partials[k]);
      const auto block = [&](int i) {
        return std::vector<double>(got.begin() + i * cs.rows, got.begin() + (i + 1) * cs.rows);
      };
      if (k * local < cs.vocab) {  // an empty shard's max is checked below
        expect_close(block(0), want.row_max, 0.0, 0.0, "partial row max");
      }
      expect_close(block(1), want.sums, kSumRtol, 0.0, "partial sums");
      expect_close(block(2), want.target, 0.0, 0.0, "partial target logits");
    }

    EXPECT_EQ(two.row_max, one.row_max);
    expect_close(to_double(two.sums), to_double(one.sums), kSumRtol, 0.0, "sums, two vs one");
    expect_loss_near(two.loss, one.loss, "loss, two vs one");
    expect_combined_matches(two, ref, cs.rows, "two shards");
    expect_close(two.grad, ref.grad, 1e-2, 1e-7, "grad, two shards");
    expect_close(two.grad, one.grad, 1e-2, 1e-7, "grad, two shards vs one");
    EXPECT_EQ(nonzero_padding_grads(two, cs), 0);
  }
}

TEST_F(KernelsTest, CrossEntropyShardWithoutRealColumnsContributesNothing) {
  const CrossEntropyCase cs{5, 60, 128};  // shard 1 holds columns [64, 128): padding only
  const CrossEntropyInput in = cross_entropy_input(cs);
  const float grad_scale = 0.25f;
  const CrossEntropyReference ref = cross_entropy_reference(cs, in, grad_scale);
  for (bool unaligned : {false, true}) {
    SCOPED_TRACE(unaligned ? "unaligned padding shard" : "aligned padding shard");
    const CrossEntropyRun two = run_cross_entropy(cs, in, 2, grad_scale, unaligned);
    const std::vector<float>& p = two.partials[1];
    for (int64_t r = 0; r < cs.rows; ++r) {
      EXPECT_LE(p[r], std::numeric_limits<float>::lowest()) << "row " << r << " max";
      EXPECT_EQ(p[cs.rows + r], 0.f) << "row " << r << " sum";
      EXPECT_EQ(p[2 * cs.rows + r], 0.f) << "row " << r << " target logit";
    }
    expect_combined_matches(two, ref, cs.rows, "with a padding shard");
    expect_close(two.grad, ref.grad, 1e-2, 1e-7, "grad");
    EXPECT_EQ(nonzero_padding_grads(two, cs), 0);
  }
}

// ---- optimizer ----------------------------------------------------------------------------------

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

TEST_F(KernelsTest, AdamWMatchesTorchFormula) {
  const int64_t n = 1001;  // a vectorised body and a tail
  const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, wd = 0.1f, grad_scale = 0.5f;
  const int64_t step = 3;
  const std::vector<float> w0 = randn(n + 1, 121), g = randn(n + 1, 122, 1e-2);
  const std::vector<float> m0 = randn(n + 1, 123, 1e-3);
  std::vector<float> v0 = randn(n + 1, 124, 1e-4);
  for (auto& v : v0) v = std::abs(v);
  std::vector<uint8_t> mask(n + 1);
  for (int64_t i = 0; i <= n; ++i) mask[i] = i % 3 != 0;
  for (int offset : {0, 1}) {
    for (bool with_mask_and_model : {true, false}) {
      SCOPED_TRACE("offset " + std::to_string(offset) + (with_mask_and_model ? " +mask" : ""));
      DeviceArray<float> d_w(w0), d_g(g), d_m(m0), d_v(v0);
      DeviceArray<bf16> d_model(n + 1);
      DeviceArray<uint8_t> d_mask(mask);
      adamw_step(d_w.get() + offset, d_g.get() + offset, d_m.get() + offset, d_v.get() + offset,
                 with_mask_and_model ? d_model.get() + offset : nullptr,
                 with_mask_and_model ? d_mask.get() + offset : nullptr, n, lr, beta1, beta2, eps,
                 wd, step, grad_scale, nullptr);
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
