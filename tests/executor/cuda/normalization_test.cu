// LayerNorm and RMSNorm (executor/cuda/normalization.h) against float64 loops on the host, on
// random inputs with fixed seeds (conventions in kernel_test_support.h). Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "executor/cuda/normalization.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

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

}  // namespace
}  // namespace mpsim::executor::kernels
