// GridTable (validation of a measured grid, log-log multilinear interpolation) and the fitted
// fallbacks outside it (efficiency curve, α-β). Formulas and rationale: calibrated_tables.h and
// simulator/cost/README.md, "Calibrated tables".
#include "simulator/cost/calibrated_tables.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "common/text.h"

namespace mpsim::cost {
namespace {

// Shortest text that reads back as the same double ("4096", "0.001", "inf"); any NaN, whatever
// its sign, reads "nan".
std::string num(double x) { return std::isnan(x) ? "nan" : common::shortest(x); }

bool positive_finite(double x) { return x > 0 && std::isfinite(x); }

std::string table_label(const std::string& op) {
  return "table " + (op.empty() ? std::string("<unnamed>") : op);
}

// "m=4096, n=1024, k=256"
std::string describe_keys(const std::vector<std::string>& names, std::span<const double> keys) {
  std::string text;
  for (std::size_t d = 0; d < keys.size(); ++d) {
    if (d > 0) text += ", ";
    text += (d < names.size() ? names[d] : "key" + std::to_string(d)) + "=" + num(keys[d]);
  }
  return text;
}

// Solves the n×n system a·x = b (row-major a) by Gaussian elimination with partial pivoting.
// Returns false when a pivot vanishes.
bool solve_linear(std::vector<double> a, std::vector<double> b, std::size_t n,
                  std::vector<double>& x) {
  for (std::size_t col = 0; col < n; ++col) {
    std::size_t pivot = col;
    for (std::size_t row = col + 1; row < n; ++row) {
      if (std::abs(a[row * n + col]) > std::abs(a[pivot * n + col])) pivot = row;
    }
    if (!(std::abs(a[pivot * n + col]) > 0)) return false;
    if (pivot != col) {
      for (std::size_t j = 0; j < n; ++j) std::swap(a[col * n + j], a[pivot * n + j]);
      std::swap(b[col], b[pivot]);
    }
    for (std::size_t row = col + 1; row < n; ++row) {
      const double f = a[row * n + col] / a[col * n + col];
      for (std::size_t j = col; j < n; ++j) a[row * n + j] -= f * a[col * n + j];
      b[row] -= f * b[col];
    }
  }
  x.assign(n, 0);
  for (std::size_t i = n; i-- > 0;) {
    double s = b[i];
    for (std::size_t j = i + 1; j < n; ++j) s -= a[i * n + j] * x[j];
    x[i] = s / a[i * n + i];
  }
  return std::all_of(x.begin(), x.end(), [](double v) { return std::isfinite(v); });
}

}  // namespace

double gemm_flops(std::span<const double> keys) { return 2.0 * keys[0] * keys[1] * keys[2]; }

double attention_forward_flops(std::span<const double> keys) {
  return 4.0 * keys[0] * keys[1] * keys[1] * keys[2];
}

double attention_backward_flops(std::span<const double> keys) {
  return 2.0 * attention_forward_flops(keys);
}

double flash_forward_flops(std::span<const double> keys) {
  return 2.0 * keys[0] * keys[1] * (keys[1] + 1) * keys[2];
}

double flash_backward_flops(std::span<const double> keys) {
  return 2.5 * flash_forward_flops(keys);
}

// ---------------------------------------------------------------------------------------------
// GridTable

GridTable::GridTable(const spec::CalibratedTable& table) : op_(table.op()) { build(table); }

GridTable::GridTable(const spec::CalibratedTable& table, WorkFunction work)
    : op_(table.op()), interpolant_(Interpolant::kThroughput), work_(work) {
  if (work_ == nullptr) fail("a throughput table needs a work function, got none");
  build(table);
}

void GridTable::fail(const std::string& message) const {
  throw std::invalid_argument(table_label(op_) + ": " + message);
}

// The table is checked and stored in steps, each refusing what it cannot accept (fail()).
void GridTable::build(const spec::CalibratedTable& table) {
  const std::string names_list = read_key_names(table);
  check_points(table, names_list);
  build_axes(table);
  const std::vector<Tuple> tuples = grid_indices(table);
  check_grid(table, tuples);
  store_values(table, tuples);
}

// Key names; returns them as a list for messages.
std::string GridTable::read_key_names(const spec::CalibratedTable& table) {
  const int num_names = table.key_names_size();
  if (num_names < 1 || num_names > static_cast<int>(kMaxTableKeys)) {
    fail(std::to_string(num_names) + " key_names, expected 1 to " + std::to_string(kMaxTableKeys));
  }
  for (const std::string& name : table.key_names()) {
    if (name.empty()) fail("empty key name, expected a name such as m or bytes");
    if (std::find(key_names_.begin(), key_names_.end(), name) != key_names_.end()) {
      fail("key " + name + " named twice, expected distinct key names");
    }
    key_names_.push_back(name);
  }
  const std::size_t dims = key_names_.size();
  std::string names_list;
  for (std::size_t d = 0; d < dims; ++d) names_list += (d ? ", " : "") + key_names_[d];
  return names_list;
}

// Each point on its own.
void GridTable::check_points(const spec::CalibratedTable& table,
                             const std::string& names_list) const {
  const std::size_t dims = key_names_.size();
  const int num_points = table.points_size();
  if (num_points == 0) fail("no points, expected a complete grid");
  for (int i = 0; i < num_points; ++i) {
    const spec::CalibratedPoint& p = table.points(i);
    const std::string where = "point " + std::to_string(i) + ": ";
    if (p.key_size() != static_cast<int>(dims)) {
      fail(where + std::to_string(p.key_size()) + " keys, expected " + std::to_string(dims) + " (" +
           names_list + ")");
    }
    for (std::size_t d = 0; d < dims; ++d) {
      if (!positive_finite(p.key(static_cast<int>(d)))) {
        fail(where + "key " + key_names_[d] + " = " + num(p.key(static_cast<int>(d))) +
             ", expected a positive size");
      }
    }
    if (!positive_finite(p.seconds())) {
      fail(where + "seconds = " + num(p.seconds()) + ", expected a positive time");
    }
    if (work_ != nullptr) {
      const double w = work_(std::span<const double>(p.key().data(), dims));
      if (!positive_finite(w)) {
        fail(where + "work = " + num(w) + " at " +
             describe_keys(key_names_, std::span<const double>(p.key().data(), dims)) +
             ", expected a positive finite amount");
      }
    }
  }
}

// Axes: the distinct values of each key.
void GridTable::build_axes(const spec::CalibratedTable& table) {
  const std::size_t dims = key_names_.size();
  axes_.assign(dims, {});
  log_axes_.assign(dims, {});
  for (std::size_t d = 0; d < dims; ++d) {
    std::vector<double>& axis = axes_[d];
    for (const spec::CalibratedPoint& p : table.points())
      axis.push_back(p.key(static_cast<int>(d)));
    std::sort(axis.begin(), axis.end());
    axis.erase(std::unique(axis.begin(), axis.end()), axis.end());
    if (axis.size() < 2) {
      fail("key " + key_names_[d] + " has a single value (" + num(axis[0]) +
           "), expected at least 2 distinct values to interpolate along it");
    }
    for (double v : axis) log_axes_[d].push_back(std::log(v));
  }
}

// Grid indices of every point.
std::vector<GridTable::Tuple> GridTable::grid_indices(const spec::CalibratedTable& table) const {
  const std::size_t dims = key_names_.size();
  const int num_points = table.points_size();
  std::vector<Tuple> tuples(static_cast<std::size_t>(num_points), Tuple{});
  for (int i = 0; i < num_points; ++i) {
    for (std::size_t d = 0; d < dims; ++d) {
      const auto& axis = axes_[d];
      tuples[i][d] = static_cast<std::size_t>(
          std::lower_bound(axis.begin(), axis.end(), table.points(i).key(static_cast<int>(d))) -
          axis.begin());
    }
  }
  return tuples;
}

// Duplicates, then completeness, on the sorted index tuples (no allocation of the full grid
// before it is known to be complete).
void GridTable::check_grid(const spec::CalibratedTable& table,
                           const std::vector<Tuple>& tuples) const {
  const std::size_t dims = key_names_.size();
  const int num_points = table.points_size();
  std::vector<std::size_t> order(tuples.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return tuples[a] != tuples[b] ? tuples[a] < tuples[b] : a < b;
  });
  std::size_t dup_first = 0, dup_second = 0;
  for (std::size_t j = 1; j < order.size(); ++j) {
    if (tuples[order[j]] == tuples[order[j - 1]] && (dup_second == 0 || order[j] < dup_second)) {
      dup_first = order[j - 1];
      dup_second = order[j];
    }
  }
  if (dup_second != 0) {
    const auto& p = table.points(static_cast<int>(dup_second));
    fail("point " + std::to_string(dup_second) + ": duplicate of point " +
         std::to_string(dup_first) + " (" +
         describe_keys(key_names_, std::span<const double>(p.key().data(), dims)) + ")");
  }
  // Walk the grid in lexicographic order beside the sorted tuples; the first combination that
  // is not the next tuple is missing.
  Tuple combo{};
  std::size_t cells = 1;
  for (std::size_t d = 0; d < dims; ++d) {
    cells = axes_[d].size() > static_cast<std::size_t>(num_points) / cells + 1
                ? static_cast<std::size_t>(num_points) + 1  // saturate: more cells than points
                : cells * axes_[d].size();
  }
  if (cells != static_cast<std::size_t>(num_points)) {
    for (std::size_t pos = 0;; ++pos) {
      if (pos == order.size() || tuples[order[pos]] != combo) {
        std::array<double, kMaxTableKeys> keys{};
        for (std::size_t d = 0; d < dims; ++d) keys[d] = axes_[d][combo[d]];
        fail("grid incomplete: " +
             describe_keys(key_names_, std::span<const double>(keys.data(), dims)) + " missing");
      }
      for (std::size_t d = dims; d-- > 0;) {  // odometer, last key fastest
        if (++combo[d] < axes_[d].size()) break;
        combo[d] = 0;
      }
    }
  }
}

// Values in grid order.
void GridTable::store_values(const spec::CalibratedTable& table, const std::vector<Tuple>& tuples) {
  const std::size_t dims = key_names_.size();
  const int num_points = table.points_size();
  stride_.fill(0);
  std::size_t stride = 1;
  for (std::size_t d = dims; d-- > 0;) {
    stride_[d] = stride;
    stride *= axes_[d].size();
  }
  log_values_.assign(static_cast<std::size_t>(num_points), 0);
  seconds_.assign(static_cast<std::size_t>(num_points), 0);
  for (int i = 0; i < num_points; ++i) {
    const spec::CalibratedPoint& p = table.points(i);
    std::size_t flat = 0;
    for (std::size_t d = 0; d < dims; ++d) flat += tuples[i][d] * stride_[d];
    seconds_[flat] = p.seconds();
    const double v = work_ == nullptr
                         ? p.seconds()
                         : work_(std::span<const double>(p.key().data(), dims)) / p.seconds();
    if (!positive_finite(v)) {
      fail("point " + std::to_string(i) + ": throughput = " + num(v) +
           ", expected a positive finite rate");
    }
    log_values_[flat] = std::log(v);
  }
}

bool GridTable::contains(std::span<const double> keys) const {
  if (keys.size() != num_keys()) return false;
  for (std::size_t d = 0; d < keys.size(); ++d) {
    // Written so that NaN compares false.
    if (!(keys[d] >= axes_[d].front() && keys[d] <= axes_[d].back())) return false;
  }
  return true;
}

double GridTable::log_value(std::span<const double> keys) const {
  if (keys.size() != num_keys()) {
    throw std::invalid_argument(table_label(op_) + ": " + std::to_string(keys.size()) +
                                " keys given, expected " + std::to_string(num_keys()));
  }
  if (!contains(keys)) {
    std::string ranges;
    for (std::size_t d = 0; d < num_keys(); ++d) {
      ranges += (d ? ", " : "") + key_names_[d] + " in [" + num(axes_[d].front()) + ", " +
                num(axes_[d].back()) + "]";
    }
    throw std::out_of_range(table_label(op_) + ": " + describe_keys(key_names_, keys) +
                            " is outside the grid (" + ranges + ")");
  }
  // Cell of each key and the position t in it, in log(key). At a grid value t is exactly 0 (or
  // exactly 1 at the last value), so grid points come back unchanged.
  const std::size_t dims = num_keys();
  std::array<double, kMaxTableKeys> t{};
  std::size_t base = 0;
  for (std::size_t d = 0; d < dims; ++d) {
    const std::vector<double>& axis = axes_[d];
    std::size_t i = static_cast<std::size_t>(std::upper_bound(axis.begin(), axis.end(), keys[d]) -
                                             axis.begin());
    i = std::min(i == 0 ? 0 : i - 1, axis.size() - 2);
    const std::vector<double>& la = log_axes_[d];
    t[d] = (std::log(keys[d]) - la[i]) / (la[i + 1] - la[i]);
    base += i * stride_[d];
  }
  // Σ over the 2^dims corners of Π_d (t_d or 1 − t_d) · log v(corner).
  double sum = 0;
  for (std::size_t corner = 0; corner < (std::size_t{1} << dims); ++corner) {
    double weight = 1;
    std::size_t index = base;
    for (std::size_t d = 0; d < dims; ++d) {
      if ((corner >> d) & 1) {
        weight *= t[d];
        index += stride_[d];
      } else {
        weight *= 1 - t[d];
      }
    }
    if (weight != 0) sum += weight * log_values_[index];
  }
  return sum;
}

double GridTable::value(std::span<const double> keys) const { return std::exp(log_value(keys)); }

double GridTable::seconds(std::span<const double> keys) const {
  const double v = value(keys);
  return work_ == nullptr ? v : work_(keys) / v;
}

std::vector<GridPoint> GridTable::points() const {
  std::vector<GridPoint> out(seconds_.size());
  for (std::size_t flat = 0; flat < seconds_.size(); ++flat) {
    GridPoint& p = out[flat];
    p.keys.resize(num_keys());
    for (std::size_t d = 0; d < num_keys(); ++d) {
      p.keys[d] = axes_[d][flat / stride_[d] % axes_[d].size()];
    }
    p.seconds = seconds_[flat];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Efficiency curve

double EfficiencyCurve::predict(std::span<const double> keys) const {
  double eff = eff_max;
  for (std::size_t d = 0; d < half.size(); ++d) eff *= keys[d] / (keys[d] + half[d]);
  return eff;
}

namespace {

// Log-space least squares for eff(x) = E · Π x_d / (x_d + h_d), θ = (log E, log h_1..log h_D).
class EfficiencyFit {
 public:
  EfficiencyFit(std::span<const EfficiencySample> samples, std::size_t dims)
      : samples_(samples), dims_(dims), log_eff_(samples.size()) {
    for (std::size_t i = 0; i < samples.size(); ++i) log_eff_[i] = std::log(samples[i].efficiency);
  }

  // Residuals r_i = log eff_i − log model_i; returns Σ r_i².
  double cost(const std::vector<double>& theta, std::vector<double>* residuals) const {
    double total = 0;
    for (std::size_t i = 0; i < samples_.size(); ++i) {
      double model = theta[0];
      for (std::size_t d = 0; d < dims_; ++d) {
        const double x = samples_[i].keys[d];
        model += std::log(x) - std::log(x + std::exp(theta[d + 1]));
      }
      const double r = log_eff_[i] - model;
      if (residuals != nullptr) (*residuals)[i] = r;
      total += r * r;
    }
    return total;
  }

  // log E minimising the cost for fixed h: the mean of log eff_i − Σ_d log factor_d.
  double best_log_eff_max(const std::vector<double>& theta) const {
    double sum = 0;
    for (std::size_t i = 0; i < samples_.size(); ++i) {
      double shape = 0;
      for (std::size_t d = 0; d < dims_; ++d) {
        const double x = samples_[i].keys[d];
        shape += std::log(x) - std::log(x + std::exp(theta[d + 1]));
      }
      sum += log_eff_[i] - shape;
    }
    return sum / static_cast<double>(samples_.size());
  }

  // Levenberg–Marquardt from `theta`; log h_d stays within [lo_d, hi_d]. Returns the final cost.
  double minimise(std::vector<double>& theta, const std::vector<double>& lo,
                  const std::vector<double>& hi) const {
    const std::size_t n = dims_ + 1, m = samples_.size();
    std::vector<double> r(m), jac(m * n), a(n * n), g(n), step, trial(n), diag(n);
    double current = cost(theta, &r);
    double lambda = 1e-3;
    for (int iter = 0; iter < 500 && current > 0; ++iter) {
      // Jacobian of the model: ∂/∂log E = 1, ∂/∂log h_d = −h_d / (x_d + h_d).
      for (std::size_t i = 0; i < m; ++i) {
        jac[i * n] = 1;
        for (std::size_t d = 0; d < dims_; ++d) {
          const double h = std::exp(theta[d + 1]);
          jac[i * n + d + 1] = -h / (samples_[i].keys[d] + h);
        }
      }
      std::fill(a.begin(), a.end(), 0);
      std::fill(g.begin(), g.end(), 0);
      for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t p = 0; p < n; ++p) {
          g[p] += jac[i * n + p] * r[i];
          for (std::size_t q = 0; q < n; ++q) a[p * n + q] += jac[i * n + p] * jac[i * n + q];
        }
      }
      for (std::size_t p = 0; p < n; ++p) diag[p] = a[p * n + p];
      bool accepted = false;
      while (!accepted && lambda < 1e16) {
        std::vector<double> damped = a;
        for (std::size_t p = 0; p < n; ++p) damped[p * n + p] += lambda * diag[p];
        if (solve_linear(damped, g, n, step)) {
          for (std::size_t p = 0; p < n; ++p) trial[p] = theta[p] + step[p];
          for (std::size_t d = 0; d < dims_; ++d) {
            trial[d + 1] = std::clamp(trial[d + 1], lo[d], hi[d]);
          }
          std::vector<double> trial_r(m);
          const double trial_cost = cost(trial, &trial_r);
          if (trial_cost < current) {
            double moved = 0;
            for (std::size_t p = 0; p < n; ++p)
              moved = std::max(moved, std::abs(trial[p] - theta[p]));
            theta = trial;
            r = std::move(trial_r);
            current = trial_cost;
            lambda = std::max(lambda / 10, 1e-12);
            accepted = true;
            if (moved < 1e-14) return current;
            continue;
          }
        }
        lambda *= 10;
      }
      if (!accepted) break;  // no step lowers the cost: a minimum to working precision
    }
    return current;
  }

 private:
  std::span<const EfficiencySample> samples_;
  std::size_t dims_;
  std::vector<double> log_eff_;
};

}  // namespace

EfficiencyCurve fit_efficiency_curve(std::span<const EfficiencySample> samples,
                                     std::string_view what) {
  const std::string label(what);
  auto fail = [&](const std::string& message) {
    throw std::invalid_argument(label + ": " + message);
  };
  if (samples.empty()) fail("efficiency fit: no samples");
  const std::size_t dims = samples[0].keys.size();
  if (dims < 1 || dims > kMaxTableKeys) {
    fail("efficiency fit: sample 0 has " + std::to_string(dims) + " keys, expected 1 to " +
         std::to_string(kMaxTableKeys));
  }
  std::vector<double> lo(dims, std::numeric_limits<double>::infinity()), hi(dims, 0);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const std::string where = "efficiency fit: sample " + std::to_string(i) + ": ";
    if (samples[i].keys.size() != dims) {
      fail(where + std::to_string(samples[i].keys.size()) + " keys, expected " +
           std::to_string(dims));
    }
    for (std::size_t d = 0; d < dims; ++d) {
      const double x = samples[i].keys[d];
      if (!positive_finite(x)) {
        fail(where + "key " + std::to_string(d) + " = " + num(x) + ", expected a positive size");
      }
      lo[d] = std::min(lo[d], x);
      hi[d] = std::max(hi[d], x);
    }
    if (!positive_finite(samples[i].efficiency)) {
      fail(where + "efficiency = " + num(samples[i].efficiency) + ", expected a positive fraction");
    }
  }
  if (samples.size() < dims + 1) {
    fail("efficiency fit: " + std::to_string(samples.size()) + " samples, expected at least " +
         std::to_string(dims + 1) + " (one more than the keys)");
  }
  for (std::size_t d = 0; d < dims; ++d) {
    if (!(hi[d] > lo[d])) {
      fail("efficiency fit: key " + std::to_string(d) + " has a single value (" + num(lo[d]) +
           "), expected at least 2 distinct values to fit its half size");
    }
  }

  const EfficiencyFit fit(samples, dims);
  std::vector<double> log_lo(dims), log_hi(dims);
  for (std::size_t d = 0; d < dims; ++d) {
    log_lo[d] = std::log(lo[d]) + std::log(1e-6);
    log_hi[d] = std::log(hi[d]) + std::log(1e6);
  }
  std::vector<double> best;
  double best_cost = std::numeric_limits<double>::infinity();
  for (double position : {0.0, 0.5, 1.0}) {  // every h_d at the low end, middle, high end (log)
    std::vector<double> theta(dims + 1);
    for (std::size_t d = 0; d < dims; ++d) {
      theta[d + 1] = (1 - position) * std::log(lo[d]) + position * std::log(hi[d]);
    }
    theta[0] = fit.best_log_eff_max(theta);
    const double c = fit.minimise(theta, log_lo, log_hi);
    if (c < best_cost) {
      best_cost = c;
      best = theta;
    }
  }
  if (best.empty()) fail("efficiency fit did not converge");

  EfficiencyCurve curve;
  curve.eff_max = std::exp(best[0]);
  for (std::size_t d = 0; d < dims; ++d) curve.half.push_back(std::exp(best[d + 1]));
  curve.rms_log_residual = std::sqrt(best_cost / static_cast<double>(samples.size()));
  return curve;
}

EfficiencyCurve fit_efficiency_curve(const GridTable& table, double peak_flops) {
  const std::string label = table_label(table.op());
  if (table.interpolant() != Interpolant::kThroughput) {
    throw std::invalid_argument(label +
                                ": efficiency fit needs a throughput table (built with a work "
                                "function), got a seconds table");
  }
  if (!positive_finite(peak_flops)) {
    throw std::invalid_argument(label + ": efficiency fit: peak = " + num(peak_flops) +
                                " FLOP/s, expected a positive rate");
  }
  std::vector<EfficiencySample> samples;
  for (GridPoint& p : table.points()) {
    // The table's value at its own grid point is the measured throughput.
    const double throughput = table.value(p.keys);
    samples.push_back({std::move(p.keys), throughput / peak_flops});
  }
  return fit_efficiency_curve(samples, label);
}

// ---------------------------------------------------------------------------------------------
// α-β

AlphaBeta fit_alpha_beta(std::span<const SizeTime> samples, std::string_view what) {
  const std::string label(what);
  auto fail = [&](const std::string& message) {
    throw std::invalid_argument(label + ": alpha-beta fit: " + message);
  };
  double min_bytes = std::numeric_limits<double>::infinity(), max_bytes = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const std::string where = "sample " + std::to_string(i) + ": ";
    if (!(samples[i].bytes >= 0 && std::isfinite(samples[i].bytes))) {
      fail(where + "bytes = " + num(samples[i].bytes) + ", expected a size >= 0");
    }
    if (!positive_finite(samples[i].seconds)) {
      fail(where + "seconds = " + num(samples[i].seconds) + ", expected a positive time");
    }
    min_bytes = std::min(min_bytes, samples[i].bytes);
    max_bytes = std::max(max_bytes, samples[i].bytes);
  }
  if (samples.size() < 2 || !(max_bytes > min_bytes)) {
    fail("expected at least 2 distinct sizes");
  }

  // Weighted rows: (1/t_i)·alpha + (S_i/t_i)·gamma ≈ 1, gamma = 1/beta. Columns scaled to unit
  // norm, then modified Gram–Schmidt.
  const std::size_t m = samples.size();
  std::vector<double> c1(m), c2(m);
  double n1 = 0, n2 = 0;
  for (std::size_t i = 0; i < m; ++i) {
    c1[i] = 1 / samples[i].seconds;
    c2[i] = samples[i].bytes / samples[i].seconds;
    n1 += c1[i] * c1[i];
    n2 += c2[i] * c2[i];
  }
  n1 = std::sqrt(n1);
  n2 = std::sqrt(n2);
  for (std::size_t i = 0; i < m; ++i) {
    c1[i] /= n1;
    c2[i] /= n2;
  }
  double r12 = 0;
  for (std::size_t i = 0; i < m; ++i) r12 += c1[i] * c2[i];
  double r22 = 0;
  for (std::size_t i = 0; i < m; ++i) {
    c2[i] -= r12 * c1[i];
    r22 += c2[i] * c2[i];
  }
  r22 = std::sqrt(r22);
  if (!(r22 > 1e-12)) fail("sizes and times are collinear; expected a latency and a bandwidth");
  double z1 = 0, z2 = 0;
  for (std::size_t i = 0; i < m; ++i) z1 += c1[i];  // b = (1, ..., 1)
  for (std::size_t i = 0; i < m; ++i) z2 += c2[i] / r22 * (1 - z1 * c1[i]);
  const double y2 = z2 / r22;
  const double y1 = z1 - r12 * y2;
  double alpha = y1 / n1;
  double gamma = y2 / n2;

  if (alpha < 0) {
    // Latency below what the data resolve: fix alpha = 0, gamma = Σ(S/t) / Σ(S/t)².
    double num_sum = 0, den_sum = 0;
    for (const SizeTime& s : samples) {
      const double q = s.bytes / s.seconds;
      num_sum += q;
      den_sum += q * q;
    }
    alpha = 0;
    gamma = num_sum / den_sum;
  }
  if (!(gamma > 0) || !std::isfinite(gamma)) {
    fail("time does not grow with size (1/beta = " + num(gamma) +
         "), expected t = alpha + bytes/beta with beta > 0");
  }

  AlphaBeta fit;
  fit.alpha_s = alpha;
  fit.beta_bytes_per_s = 1 / gamma;
  double sum = 0;
  for (const SizeTime& s : samples) {
    const double rel = (s.seconds - fit.predict(s.bytes)) / s.seconds;
    sum += rel * rel;
  }
  fit.rms_relative_residual = std::sqrt(sum / static_cast<double>(m));
  return fit;
}

AlphaBeta fit_alpha_beta(const GridTable& table) {
  const std::string label = table_label(table.op());
  if (table.num_keys() != 1) {
    throw std::invalid_argument(label + ": alpha-beta fit needs a 1-key table (bytes), got " +
                                std::to_string(table.num_keys()) + " keys");
  }
  std::vector<SizeTime> samples;
  for (const GridPoint& p : table.points()) samples.push_back({p.keys[0], p.seconds});
  return fit_alpha_beta(samples, label);
}

}  // namespace mpsim::cost
