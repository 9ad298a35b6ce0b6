#include "simulator/cost/calibrated_tables.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace mpsim::cost {
namespace {

// Deterministic random numbers: std::mt19937_64 is fully specified by the standard, the
// std::*_distribution algorithms are not, so uniforms are taken from its raw bits.
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Log-uniform in [lo, hi]: sizes are spread geometrically, as the grids are.
  double log_uniform(double lo, double hi) { return std::exp(uniform(std::log(lo), std::log(hi))); }
  // Multiplicative noise: a factor uniform in [1 − level, 1 + level].
  double noise(double level) { return 1 + level * (2 * uniform() - 1); }

 private:
  std::mt19937_64 engine_;
};

using Keys = std::vector<double>;

double rel_err(double got, double want) { return std::abs(got - want) / std::abs(want); }

// A table over the full grid axes[0] × axes[1] × ..., seconds = f(keys), points in grid order
// (last key fastest).
spec::CalibratedTable make_table(const std::string& op, const std::vector<std::string>& names,
                                 const std::vector<std::vector<double>>& axes,
                                 const std::function<double(const Keys&)>& f) {
  spec::CalibratedTable table;
  table.set_op(op);
  for (const auto& n : names) table.add_key_names(n);
  std::vector<std::size_t> idx(axes.size(), 0);
  while (true) {
    Keys keys(axes.size());
    for (std::size_t d = 0; d < axes.size(); ++d) keys[d] = axes[d][idx[d]];
    spec::CalibratedPoint* p = table.add_points();
    for (double k : keys) p->add_key(k);
    p->set_seconds(f(keys));
    std::size_t d = axes.size();
    while (d-- > 0) {
      if (++idx[d] < axes[d].size()) break;
      idx[d] = 0;
    }
    if (d == static_cast<std::size_t>(-1)) break;
  }
  return table;
}

const std::vector<double> kPow2 = {256, 512, 1024, 2048, 4096, 8192};

// A GEMM-like time that is no power law: roofline with a saturating efficiency plus a launch.
double gemm_like_seconds(const Keys& x) {
  const double eff = 0.8 * x[0] / (x[0] + 300) * x[1] / (x[1] + 200) * x[2] / (x[2] + 700);
  return 2 * x[0] * x[1] * x[2] / (989e12 * eff) + 4e-6;
}

// A point drawn log-uniformly inside the table's box.
Keys random_inside(const GridTable& t, Random& rng) {
  Keys keys(t.num_keys());
  for (std::size_t d = 0; d < keys.size(); ++d) {
    keys[d] = rng.log_uniform(t.axis(d).front(), t.axis(d).back());
  }
  return keys;
}

// Runs `f`, expects std::invalid_argument with exactly `message`.
void expect_refused(const std::function<void()>& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "not refused; expected: " << message;
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

// ---------------------------------------------------------------------------------------------
// Interpolation

TEST(GridTable, ReproducesEveryGridPoint) {
  const auto table =
      make_table("gemm.bf16", {"m", "n", "k"}, {kPow2, kPow2, kPow2}, gemm_like_seconds);
  const GridTable by_seconds(table);
  const GridTable by_throughput(table, gemm_flops);
  ASSERT_EQ(table.points_size(), 216);
  for (const auto& p : table.points()) {
    const Keys keys(p.key().begin(), p.key().end());
    EXPECT_LE(rel_err(by_seconds.seconds(keys), p.seconds()), 1e-12);
    EXPECT_LE(rel_err(by_throughput.seconds(keys), p.seconds()), 1e-12);
    EXPECT_LE(rel_err(by_throughput.value(keys), gemm_flops(keys) / p.seconds()), 1e-12);
  }
}

TEST(GridTable, ReproducesGridPointsOfANonMonomialWork) {
  // Work that is not a power law (a causal-attention-like s·(s+1)/2): still exact at the grid.
  const WorkFunction work = [](std::span<const double> k) { return k[0] * k[1] * (k[1] + 1); };
  const auto table = make_table("attn.fwd", {"bh", "s"}, {{8, 32, 128}, {128, 1024, 4096}},
                                [](const Keys& x) { return 1e-9 * x[0] * x[1] * x[1] + 1e-5; });
  const GridTable t(table, work);
  for (const auto& p : table.points()) {
    const Keys keys(p.key().begin(), p.key().end());
    EXPECT_LE(rel_err(t.seconds(keys), p.seconds()), 1e-12);
  }
}

TEST(GridTable, ExactOnPowerLawsInsideTheGrid) {
  // t = c · x^a · y^b (· z^e) on irregular grids; the interpolant must match anywhere inside.
  Random rng(1);
  const auto law2 = [](const Keys& x) { return 3e-7 * std::pow(x[0], 1.3) * std::pow(x[1], -0.4); };
  const auto table2 =
      make_table("elementwise", {"x", "y"}, {{1, 3, 10, 64, 1000}, {2, 5, 7, 300}}, law2);
  const auto law3 = [](const Keys& x) {
    return 1e-13 * std::pow(x[0], 0.9) * std::pow(x[1], 1.1) * std::pow(x[2], 2.0);
  };
  const auto table3 = make_table("gemm.bf16", {"m", "n", "k"},
                                 {{64, 100, 4096}, {128, 129, 130, 8192}, {16, 16384}}, law3);
  const GridTable t2(table2), t3(table3), t3_rate(table3, gemm_flops);
  double worst = 0;
  for (int i = 0; i < 2000; ++i) {
    const Keys a = random_inside(t2, rng), b = random_inside(t3, rng);
    worst = std::max(worst, rel_err(t2.seconds(a), law2(a)));
    worst = std::max(worst, rel_err(t3.seconds(b), law3(b)));
    worst = std::max(worst, rel_err(t3_rate.seconds(b), law3(b)));
  }
  EXPECT_LE(worst, 1e-12);
}

TEST(GridTable, ThroughputAndSecondsAgreeForMonomialWork) {
  // log(2mnk) is affine in log m, log n, log k and interpolated exactly, so both interpolants
  // give the same seconds (calibrated_tables.h).
  Random rng(2);
  const auto table =
      make_table("gemm.bf16", {"m", "n", "k"}, {kPow2, kPow2, kPow2}, gemm_like_seconds);
  const GridTable by_seconds(table), by_throughput(table, gemm_flops);
  for (int i = 0; i < 2000; ++i) {
    const Keys x = random_inside(by_seconds, rng);
    EXPECT_LE(rel_err(by_throughput.seconds(x), by_seconds.seconds(x)), 1e-12);
  }
}

// A 3-key grid of values non-decreasing along key 0, non-increasing along key 1 and arbitrary
// along key 2; `strict` makes both monotone axes strict, otherwise ties are frequent.
spec::CalibratedTable monotone_table(Random& rng, bool strict) {
  const std::vector<std::vector<double>> axes = {
      {16, 40, 128, 129, 1000, 4096}, {1, 2, 8, 9, 64}, {100, 200, 300, 1e4}};
  const std::size_t n0 = axes[0].size(), n1 = axes[1].size(), n2 = axes[2].size();
  // Increments r >= 0 (> 0 when strict; 0 or 1 otherwise, so ties are frequent), summed along
  // key 0 upwards and then along key 1 downwards: v(i, j, k) = 1 + Σ_{i' <= i, j' >= j} r(i', j',
  // k). Each difference along key 0 or key 1 is a sum of increments, so the signs hold everywhere.
  std::vector<double> v(n0 * n1 * n2);
  for (double& x : v) x = strict ? rng.uniform(0.1, 1) : std::floor(rng.uniform(0, 2));
  auto at = [&](std::size_t i, std::size_t j, std::size_t k) -> double& {
    return v[(i * n1 + j) * n2 + k];
  };
  for (std::size_t j = 0; j < n1; ++j)
    for (std::size_t k = 0; k < n2; ++k)
      for (std::size_t i = 1; i < n0; ++i) at(i, j, k) += at(i - 1, j, k);
  for (std::size_t i = 0; i < n0; ++i)
    for (std::size_t k = 0; k < n2; ++k)
      for (std::size_t j = n1 - 1; j-- > 0;) at(i, j, k) += at(i, j + 1, k);
  for (double& x : v) x += 1;
  std::size_t next = 0;
  return make_table("norm", {"a", "b", "c"}, axes, [&](const Keys&) { return 1e-6 * v[next++]; });
}

TEST(GridTable, MonotoneAlongEachAxisWhereTheDataAre) {
  Random rng(3);
  for (bool strict : {true, false}) {
    for (int trial = 0; trial < 20; ++trial) {
      const auto table = monotone_table(rng, strict);
      const GridTable t(table);
      // The data really are monotone as intended (sanity of the generator).
      const std::vector<GridPoint> points = t.points();
      for (const GridPoint& p : points) {
        for (std::size_t axis = 0; axis < 2; ++axis) {
          const auto& values = t.axis(axis);
          const auto pos = std::find(values.begin(), values.end(), p.keys[axis]);
          if (pos + 1 == values.end()) continue;
          Keys up = p.keys;
          up[axis] = *(pos + 1);
          const auto next = std::find_if(points.begin(), points.end(),
                                         [&](const GridPoint& q) { return q.keys == up; });
          ASSERT_NE(next, points.end());
          if (axis == 0) {
            ASSERT_LE(p.seconds, next->seconds);
          } else {
            ASSERT_GE(p.seconds, next->seconds);
          }
        }
      }
      // Dense probing: random lines parallel to key 0 and key 1, 200 sorted positions each,
      // anywhere in the box (not only on grid lines).
      for (int line = 0; line < 50; ++line) {
        const Keys start = random_inside(t, rng);
        for (int axis = 0; axis < 2; ++axis) {
          std::vector<double> xs(200);
          for (double& x : xs) x = rng.log_uniform(t.axis(axis).front(), t.axis(axis).back());
          xs.push_back(t.axis(axis).front());
          xs.push_back(t.axis(axis).back());
          for (double g : t.axis(axis)) xs.push_back(g);
          std::sort(xs.begin(), xs.end());
          Keys at = start;
          double previous = 0;
          for (std::size_t i = 0; i < xs.size(); ++i) {
            at[axis] = xs[i];
            const double v = t.value(at);
            if (i > 0 && xs[i] > xs[i - 1]) {
              // Non-strict data: allow rounding of log/exp only; strict data: strictly.
              const double step = axis == 0 ? v - previous : previous - v;  // expected >= 0
              if (strict) {
                EXPECT_GT(step, 0) << "axis " << axis << " at " << xs[i];
              } else {
                EXPECT_GE(step, -1e-14 * previous) << "axis " << axis << " at " << xs[i];
              }
            }
            previous = v;
          }
        }
      }
    }
  }
}

TEST(GridTable, ContainsIsTheGridBox) {
  const auto table =
      make_table("gemm.bf16", {"m", "n", "k"}, {kPow2, kPow2, {64, 128}}, gemm_like_seconds);
  const GridTable t(table);
  EXPECT_TRUE(t.contains(Keys{256, 8192, 64}));     // corner
  EXPECT_TRUE(t.contains(Keys{300, 5000, 100}));    // inside, off the grid
  EXPECT_FALSE(t.contains(Keys{255, 1024, 100}));   // below m
  EXPECT_FALSE(t.contains(Keys{1024, 8193, 100}));  // above n
  EXPECT_FALSE(t.contains(Keys{1024, 1024, 129}));  // above k
  EXPECT_FALSE(t.contains(Keys{1024, 1024, std::nan("")}));
  EXPECT_FALSE(t.contains(Keys{1024, 1024}));  // wrong count
  EXPECT_THROW(t.seconds(Keys{255, 1024, 100}), std::out_of_range);
  EXPECT_THROW(t.seconds(Keys{1024, 1024}), std::invalid_argument);
  try {
    t.seconds(Keys{255, 1024, 100});
  } catch (const std::out_of_range& e) {
    EXPECT_EQ(std::string(e.what()),
              "table gemm.bf16: m=255, n=1024, k=100 is outside the grid (m in [256, 8192], "
              "n in [256, 8192], k in [64, 128])");
  }
}

TEST(GridTable, PointsComeBackInGridOrderWhateverTheInputOrder) {
  auto table = make_table("allreduce.nvlink.2", {"bytes"}, {{1024, 1 << 20, 1 << 30}},
                          [](const Keys& x) { return 1e-5 + x[0] / 3e11; });
  table.mutable_points()->SwapElements(0, 2);
  const GridTable t(table);
  const auto points = t.points();
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0].keys, Keys{1024});
  EXPECT_EQ(points[2].keys, Keys{double(1 << 30)});
  EXPECT_EQ(points[2].seconds, 1e-5 + double(1 << 30) / 3e11);
  EXPECT_EQ(t.axis(0), (std::vector<double>{1024, 1 << 20, 1 << 30}));
}

// ---------------------------------------------------------------------------------------------
// Malformed tables

spec::CalibratedTable gemm_grid() {
  return make_table("gemm.bf16", {"m", "n", "k"},
                    {{1024, 4096, 8192}, {1024, 2048, 4096}, {256, 512, 1024}}, gemm_like_seconds);
}

TEST(GridTable, RefusesANonPositiveKey) {
  auto table = gemm_grid();
  table.mutable_points(17)->set_key(2, -3);
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: point 17: key k = -3, expected a positive size");
  table.mutable_points(17)->set_key(2, 0);
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: point 17: key k = 0, expected a positive size");
  table.mutable_points(3)->set_key(0, std::numeric_limits<double>::infinity());
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: point 3: key m = inf, expected a positive size");
}

TEST(GridTable, RefusesNaNOrNonPositiveSeconds) {
  auto table = gemm_grid();
  table.mutable_points(5)->set_seconds(std::nan(""));
  expect_refused([&] { GridTable t(table, gemm_flops); },
                 "table gemm.bf16: point 5: seconds = nan, expected a positive time");
  table.mutable_points(5)->set_seconds(0);
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: point 5: seconds = 0, expected a positive time");
}

TEST(GridTable, RefusesAWrongKeyCount) {
  auto table = gemm_grid();
  table.mutable_points(4)->mutable_key()->RemoveLast();
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: point 4: 2 keys, expected 3 (m, n, k)");
}

TEST(GridTable, RefusesAnIncompleteGrid) {
  auto table = make_table("gemm.bf16", {"m", "n", "k"}, {{1024, 4096}, {1024, 2048}, {256, 512}},
                          gemm_like_seconds);
  // Remove (4096, 1024, 256): point 4 in grid order.
  table.mutable_points()->DeleteSubrange(4, 1);
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: grid incomplete: m=4096, n=1024, k=256 missing");
  // Scattered points (no grid at all): the first missing combination is named.
  spec::CalibratedTable scattered;
  scattered.set_op("attn.fwd");
  scattered.add_key_names("bh");
  scattered.add_key_names("s");
  for (double x : {1.0, 2.0, 3.0}) {
    auto* p = scattered.add_points();
    p->add_key(x);
    p->add_key(10 * x);
    p->set_seconds(x);
  }
  expect_refused([&] { GridTable t(scattered); },
                 "table attn.fwd: grid incomplete: bh=1, s=20 missing");
}

TEST(GridTable, RefusesADuplicatePoint) {
  auto table = gemm_grid();
  *table.add_points() = table.points(2);  // becomes point 27
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: point 27: duplicate of point 2 (m=1024, n=1024, k=1024)");
  // A duplicate that replaces a point: reported as the duplicate, not as the missing one.
  auto replaced = gemm_grid();
  *replaced.mutable_points(9) = replaced.points(1);
  expect_refused([&] { GridTable t(replaced); },
                 "table gemm.bf16: point 9: duplicate of point 1 (m=1024, n=1024, k=512)");
}

TEST(GridTable, RefusesASingleValueOnAnAxis) {
  const auto table =
      make_table("gemm.bf16", {"m", "n", "k"}, {kPow2, kPow2, {256}}, gemm_like_seconds);
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: key k has a single value (256), expected at least 2 "
                 "distinct values to interpolate along it");
}

TEST(GridTable, RefusesBadKeyNamesNoPointsAndNoWork) {
  spec::CalibratedTable table;
  table.set_op("gemm.bf16");
  expect_refused([&] { GridTable t(table); }, "table gemm.bf16: 0 key_names, expected 1 to 4");
  for (const char* n : {"a", "b", "c", "d", "e"}) table.add_key_names(n);
  expect_refused([&] { GridTable t(table); }, "table gemm.bf16: 5 key_names, expected 1 to 4");
  table.clear_key_names();
  table.add_key_names("m");
  table.add_key_names("m");
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: key m named twice, expected distinct key names");
  table.clear_key_names();
  table.add_key_names("m");
  expect_refused([&] { GridTable t(table); },
                 "table gemm.bf16: no points, expected a complete grid");
  table.set_op("");
  expect_refused([&] { GridTable t(table, nullptr); },
                 "table <unnamed>: a throughput table needs a work function, got none");
}

// ---------------------------------------------------------------------------------------------
// Efficiency curve

constexpr double kPeak = 989e12;

double true_efficiency(const Keys& x) {
  return 0.83 * x[0] / (x[0] + 180) * x[1] / (x[1] + 350) * x[2] / (x[2] + 1200);
}

TEST(EfficiencyCurve, RecoversKnownParametersWithoutNoise) {
  const std::vector<double> axis = {32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
  std::vector<EfficiencySample> samples;
  for (double m : axis)
    for (double n : axis)
      for (double k : axis) samples.push_back({{m, n, k}, true_efficiency({m, n, k})});
  const EfficiencyCurve c = fit_efficiency_curve(samples, "gemm.bf16");
  EXPECT_LE(rel_err(c.eff_max, 0.83), 1e-6);
  ASSERT_EQ(c.half.size(), 3u);
  EXPECT_LE(rel_err(c.half[0], 180), 1e-6);
  EXPECT_LE(rel_err(c.half[1], 350), 1e-6);
  EXPECT_LE(rel_err(c.half[2], 1200), 1e-6);
  EXPECT_LE(c.rms_log_residual, 1e-9);

  // One key, half far above the sampled range's lower end.
  std::vector<EfficiencySample> one;
  for (double x : axis) one.push_back({{x}, 0.6 * x / (x + 5000)});
  const EfficiencyCurve c1 = fit_efficiency_curve(one, "norm");
  EXPECT_LE(rel_err(c1.eff_max, 0.6), 1e-6);
  EXPECT_LE(rel_err(c1.half[0], 5000), 1e-6);
}

TEST(EfficiencyCurve, PredictsHeldOutPointsUnderNoise) {
  // Fit a GEMM table measured with 2 % multiplicative noise (a factor uniform in [0.98, 1.02],
  // fixed seed) on m, n, k in {128, ..., 16384}; predict 500 held-out shapes drawn off the grid,
  // inside the box and outside it (down to 32, up to 65536), themselves measured with the same
  // noise. Stated error: every prediction within 5 % of its noisy measurement and within 2 % of
  // the noiseless truth.
  Random rng(4);
  const std::vector<double> axis = {128, 256, 512, 1024, 2048, 4096, 8192, 16384};
  const auto table =
      make_table("gemm.bf16", {"m", "n", "k"}, {axis, axis, axis}, [&](const Keys& x) {
        return gemm_flops(x) / (kPeak * true_efficiency(x)) * rng.noise(0.02);
      });
  const GridTable t(table, gemm_flops);
  const EfficiencyCurve c = fit_efficiency_curve(t, kPeak);
  EXPECT_LE(rel_err(c.eff_max, 0.83), 0.01);
  double worst_truth = 0, worst_measured = 0;
  for (int i = 0; i < 500; ++i) {
    Keys x(3);
    for (double& v : x) v = rng.log_uniform(32, 65536);
    const double truth = true_efficiency(x);
    const double measured = truth / rng.noise(0.02);  // efficiency ∝ 1 / time
    worst_truth = std::max(worst_truth, rel_err(c.predict(x), truth));
    worst_measured = std::max(worst_measured, rel_err(c.predict(x), measured));
  }
  EXPECT_LE(worst_truth, 0.02);
  EXPECT_LE(worst_measured, 0.05);
  RecordProperty("worst_error_vs_truth", std::to_string(worst_truth));
  RecordProperty("worst_error_vs_measured", std::to_string(worst_measured));
}

TEST(EfficiencyCurve, RefusesBadSamples) {
  std::vector<EfficiencySample> s = {{{1, 2}, 0.5}, {{2, 4}, 0.6}, {{4, 4}, 0.7}};
  EXPECT_NO_THROW(fit_efficiency_curve(s, "gemm.bf16"));
  auto bad = s;
  bad[1].efficiency = 0;
  expect_refused([&] { fit_efficiency_curve(bad, "gemm.bf16"); },
                 "gemm.bf16: efficiency fit: sample 1: efficiency = 0, expected a positive "
                 "fraction");
  bad = s;
  bad[2].keys = {4};
  expect_refused([&] { fit_efficiency_curve(bad, "gemm.bf16"); },
                 "gemm.bf16: efficiency fit: sample 2: 1 keys, expected 2");
  bad = s;
  bad[0].keys[1] = -1;
  expect_refused([&] { fit_efficiency_curve(bad, "gemm.bf16"); },
                 "gemm.bf16: efficiency fit: sample 0: key 1 = -1, expected a positive size");
  bad = {{{1, 4}, 0.5}, {{2, 4}, 0.6}, {{4, 4}, 0.7}};
  expect_refused([&] { fit_efficiency_curve(bad, "gemm.bf16"); },
                 "gemm.bf16: efficiency fit: key 1 has a single value (4), expected at least 2 "
                 "distinct values to fit its half size");
  bad.pop_back();
  expect_refused([&] { fit_efficiency_curve(bad, "gemm.bf16"); },
                 "gemm.bf16: efficiency fit: 2 samples, expected at least 3 (one more than "
                 "the keys)");
  const auto seconds_table =
      make_table("gemm.bf16", {"m", "n", "k"}, {kPow2, kPow2, kPow2}, gemm_like_seconds);
  expect_refused([&] { fit_efficiency_curve(GridTable(seconds_table), kPeak); },
                 "table gemm.bf16: efficiency fit needs a throughput table (built with a work "
                 "function), got a seconds table");
}

// ---------------------------------------------------------------------------------------------
// α-β

constexpr double kAlpha = 7e-6, kBeta = 3.2e11;

std::vector<double> sizes_1k_to_1g() {
  std::vector<double> s;
  for (double b = 1024; b <= double(1 << 30); b *= 2) s.push_back(b);
  return s;
}

TEST(AlphaBeta, RecoversKnownParametersWithoutNoise) {
  const auto table = make_table("allreduce.nvlink.2", {"bytes"}, {sizes_1k_to_1g()},
                                [](const Keys& x) { return kAlpha + x[0] / kBeta; });
  const AlphaBeta f = fit_alpha_beta(GridTable(table));
  EXPECT_LE(rel_err(f.alpha_s, kAlpha), 1e-12);
  EXPECT_LE(rel_err(f.beta_bytes_per_s, kBeta), 1e-12);
  EXPECT_LE(f.rms_relative_residual, 1e-12);
  for (double s : {0.0, 100.0, 3e5, 7e9})
    EXPECT_LE(rel_err(f.predict(s), kAlpha + s / kBeta), 1e-12);
}

TEST(AlphaBeta, PredictsHeldOutSizesUnderNoise) {
  // 2 % multiplicative noise (uniform factor in [0.98, 1.02], fixed seed) on 1 KiB .. 1 GiB in
  // powers of two. Stated error: alpha within 3 %, beta within 1 %, and 300 held-out sizes
  // (256 B .. 8 GiB, off the powers of two, measured with the same noise) predicted within 5 %
  // of their measurement and 2 % of the truth.
  Random rng(5);
  std::vector<SizeTime> samples;
  for (double s : sizes_1k_to_1g()) samples.push_back({s, (kAlpha + s / kBeta) * rng.noise(0.02)});
  const AlphaBeta f = fit_alpha_beta(samples, "allreduce.nvlink.2");
  EXPECT_LE(rel_err(f.alpha_s, kAlpha), 0.03);
  EXPECT_LE(rel_err(f.beta_bytes_per_s, kBeta), 0.01);
  double worst_truth = 0, worst_measured = 0;
  for (int i = 0; i < 300; ++i) {
    const double s = rng.log_uniform(256, 8.0 * (1 << 30));
    const double truth = kAlpha + s / kBeta;
    worst_truth = std::max(worst_truth, rel_err(f.predict(s), truth));
    worst_measured = std::max(worst_measured, rel_err(f.predict(s), truth * rng.noise(0.02)));
  }
  EXPECT_LE(worst_truth, 0.02);
  EXPECT_LE(worst_measured, 0.05);
  RecordProperty("worst_error_vs_truth", std::to_string(worst_truth));
  RecordProperty("worst_error_vs_measured", std::to_string(worst_measured));
}

TEST(AlphaBeta, ANegativeLatencyIsClampedToZero) {
  // Pure bandwidth data with the small messages slightly fast: the free fit gives alpha < 0.
  std::vector<SizeTime> samples;
  for (double s : {1e3, 1e4, 1e6, 1e8}) samples.push_back({s, s / kBeta * (s < 1e5 ? 0.9 : 1.0)});
  const AlphaBeta f = fit_alpha_beta(samples, "send.nvlink");
  EXPECT_EQ(f.alpha_s, 0);
  EXPECT_LE(rel_err(f.beta_bytes_per_s, kBeta), 0.1);
}

TEST(AlphaBeta, RefusesBadSamples) {
  expect_refused(
      [] {
        fit_alpha_beta(std::vector<SizeTime>{{1024, 1e-5}, {1024, 2e-5}}, "ar");
      },
      "ar: alpha-beta fit: expected at least 2 distinct sizes");
  expect_refused(
      [] {
        fit_alpha_beta(std::vector<SizeTime>{{-1, 1e-5}, {1024, 2e-5}}, "ar");
      },
      "ar: alpha-beta fit: sample 0: bytes = -1, expected a size >= 0");
  expect_refused(
      [] {
        fit_alpha_beta(std::vector<SizeTime>{{1, 1e-5}, {1024, 0}}, "ar");
      },
      "ar: alpha-beta fit: sample 1: seconds = 0, expected a positive time");
  try {
    fit_alpha_beta(std::vector<SizeTime>{{1e3, 2e-5}, {1e6, 1e-5}}, "ar");
    ADD_FAILURE() << "decreasing times not refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ar: alpha-beta fit: time does not grow with size"),
              std::string::npos)
        << e.what();
  }
  const auto table =
      make_table("gemm.bf16", {"m", "n", "k"}, {kPow2, kPow2, kPow2}, gemm_like_seconds);
  expect_refused([&] { fit_alpha_beta(GridTable(table)); },
                 "table gemm.bf16: alpha-beta fit needs a 1-key table (bytes), got 3 keys");
}

}  // namespace
}  // namespace mpsim::cost
