// Calibrated tables: the numerical core that turns measured op times (spec::CalibratedTable, filled
// by `mpsim calibrate`) into op times at any shape. Inside a table's grid, GridTable interpolates;
// outside it, a fitted model extrapolates: an efficiency curve for compute kernels
// (fit_efficiency_curve) and α-β for collectives and memory-bound kernels (fit_alpha_beta).
//
// Failure: a malformed table or sample set throws std::invalid_argument whose message starts with
// the table's op (or the caller's label) and names the point, the key and what was expected, e.g.
//   table gemm.bf16: point 17: key k = -3, expected a positive size
//   table gemm.bf16: grid incomplete: m=4096, n=1024, k=256 missing
// so that the spec loader can prefix `file:line`. contains(), value() and seconds() never
// allocate; asking for a point outside the grid throws std::out_of_range (check contains()
// first).
//
// Why interpolate in log-log. Kernel times and throughputs are close to power laws in the sizes
// over wide ranges (time ∝ bytes for a bandwidth-bound collective, throughput ∝ size while a GEMM
// fills the GPU, constant once it does), and grids are sampled geometrically (powers of two). In
// u_d = log(key_d) a power law v = c·Π key_d^a_d is affine, log v = log c + Σ a_d·u_d, and
// multilinear interpolation reproduces any function that is affine in each u_d separately, so it
// is exact on power laws anywhere inside the grid. Linear interpolation of v in the raw sizes is
// exact on x^a only for a = 0 or 1.
//
// Monotonicity, precisely: fix every key but key d. Within one grid cell the interpolant is an
// affine function of u_d whose end values are convex combinations, with the same non-negative
// weights, of the tabulated values on the cell's two faces normal to d. If the tabulated values
// are non-decreasing along axis d (v[.., i, ..] <= v[.., i+1, ..] for every combination of the
// other keys' grid indices), each face-to-face difference is >= 0, so the interpolant is
// non-decreasing in u_d within every cell; being continuous across cells, it is non-decreasing
// along the whole axis, and so is exp(·) of it. Strictly increasing data give a strictly
// increasing interpolant; non-increasing data, a non-increasing one. The guarantee is about the
// quantity interpolated (value()), and holds for every line parallel to a key axis, anywhere in
// the box, not only on grid lines.
//
// Which quantity. Compute tables interpolate achieved throughput work(keys)/seconds (FLOP/s), the
// quantity that varies smoothly and saturates; memory and collective tables interpolate seconds.
// Note that when work is a monomial in the keys (2·m·n·k for a GEMM, 4·bh·s²·d for attention),
// log(work) is affine in the u_d and is reproduced exactly, so interpolating log throughput and
// interpolating log seconds give the same seconds (to rounding); the choice matters for a
// non-monomial work (flash attention's causal 2·bh·s·(s+1)·d) and for what value() and the
// monotonicity guarantee refer to.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "simulator/spec/hardware.h"  // spec::CalibratedTable

namespace mpsim::cost {

// Keys a table may have: GEMM (m, n, k), attention (batch·heads, seq, head_dim), collective bytes,
// with one spare. Interpolation touches 2^keys corners.
inline constexpr std::size_t kMaxTableKeys = 4;

// The work an op of a compute table does at a key vector (e.g. FLOPs). Must be positive and finite
// at every grid point. A plain function pointer: the table stores it and calls it per query.
using WorkFunction = double (*)(std::span<const double> keys);

// Work functions matching the graph's FLOP counts (simulator/graph/training_graph.cpp).
double gemm_flops(std::span<const double> keys);                // keys m, n, k: 2·m·n·k
double attention_forward_flops(std::span<const double> keys);   // keys bh, s, d: 4·bh·s²·d
double attention_backward_flops(std::span<const double> keys);  // twice the forward
// Flash attention, causal (graph::attention_core_work): 2·bh·s·(s+1)·d forward, 2.5 times that
// backward.
double flash_forward_flops(std::span<const double> keys);
double flash_backward_flops(std::span<const double> keys);

// What a GridTable interpolates.
enum class Interpolant {
  kSeconds,     // log(seconds): memory-bound kernels, collectives
  kThroughput,  // log(work(keys) / seconds): compute kernels
};

// One measured point: a key vector and the op's seconds there.
struct GridPoint {
  std::vector<double> keys;
  double seconds = 0;
};

// A measured quantity on a complete tensor grid over 1 to kMaxTableKeys keys, interpolated
// multilinearly in log(key) of log(value) (see the file comment).
class GridTable {
 public:
  // A table interpolating log(seconds).
  explicit GridTable(const spec::CalibratedTable& table);
  // A table interpolating log(work(keys) / seconds); `work` must not be null.
  GridTable(const spec::CalibratedTable& table, WorkFunction work);

  const std::string& op() const { return op_; }
  const std::vector<std::string>& key_names() const { return key_names_; }
  std::size_t num_keys() const { return key_names_.size(); }
  Interpolant interpolant() const { return interpolant_; }
  // The distinct values of key d, ascending.
  const std::vector<double>& axis(std::size_t d) const { return axes_[d]; }

  // Whether `keys` (num_keys() of them) lies in the grid's box, boundary included. False for a
  // wrong count or a NaN.
  bool contains(std::span<const double> keys) const;

  // The interpolated quantity: seconds, or work/seconds for a throughput table. Exactly the
  // measured value at a grid point (to rounding of log/exp). Throws std::invalid_argument for a
  // wrong key count, std::out_of_range outside the box.
  double value(std::span<const double> keys) const;
  // The op's seconds at `keys`: value() itself, or work(keys) / value(). Same exceptions.
  double seconds(std::span<const double> keys) const;

  // The measured points, in grid order (last key fastest).
  std::vector<GridPoint> points() const;

 private:
  using Tuple = std::array<std::size_t, kMaxTableKeys>;  // a point's index along each key
  void build(const spec::CalibratedTable& table);
  std::string read_key_names(const spec::CalibratedTable& table);
  void check_points(const spec::CalibratedTable& table, const std::string& names_list) const;
  void build_axes(const spec::CalibratedTable& table);
  std::vector<Tuple> grid_indices(const spec::CalibratedTable& table) const;
  void check_grid(const spec::CalibratedTable& table, const std::vector<Tuple>& tuples) const;
  void store_values(const spec::CalibratedTable& table, const std::vector<Tuple>& tuples);
  double log_value(std::span<const double> keys) const;
  [[noreturn]] void fail(const std::string& message) const;

  std::string op_;
  std::vector<std::string> key_names_;
  Interpolant interpolant_ = Interpolant::kSeconds;
  WorkFunction work_ = nullptr;
  std::vector<std::vector<double>> axes_;      // distinct key values, ascending
  std::vector<std::vector<double>> log_axes_;  // their logs
  std::array<std::size_t, kMaxTableKeys> stride_{};
  std::vector<double> log_values_;  // log of the interpolated quantity, grid order
  std::vector<double> seconds_;     // measured seconds, grid order
};

// Efficiency curve of a compute kernel, for shapes outside its table:
//   eff(x) = eff_max · Π_d x_d / (x_d + half_d)
// the roofline model's shape factor (README) with one half-size per key. Each factor rises from 0
// to 1 and reaches 1/2 at x_d = half_d: short dimensions leave tiles partly empty, a short
// reduction cannot hide its prologue.
struct EfficiencyCurve {
  double eff_max = 0;
  std::vector<double> half;     // half_d, one per key, in the keys' unit
  double rms_log_residual = 0;  // sqrt(mean (log eff_i − log eff(x_i))²) over the samples

  double predict(std::span<const double> keys) const;  // keys: half.size() of them
};

struct EfficiencySample {
  std::vector<double> keys;  // positive
  double efficiency = 0;     // achieved / peak, positive
};

// Least squares in log space, min Σ_i (log eff_i − log eff(x_i))², over θ = (log eff_max,
// log half_d) so both stay positive: Levenberg–Marquardt (Gauss–Newton with adaptive damping)
// from three deterministic starts (every half_d at the lower end, the geometric middle and the
// upper end of its key's sampled range), keeping the best. Log residuals make every sample count
// by its relative error. half_d is kept within [1e-6·min x_d, 1e6·max x_d]. Throws
// std::invalid_argument (prefixed with `what`) for inconsistent key counts, non-positive or
// non-finite values, fewer samples than parameters, or a key with a single sampled value (its
// half_d would be indistinguishable from eff_max).
EfficiencyCurve fit_efficiency_curve(std::span<const EfficiencySample> samples,
                                     std::string_view what);
// From a throughput table: eff_i = (work(x_i) / seconds_i) / peak_flops.
EfficiencyCurve fit_efficiency_curve(const GridTable& table, double peak_flops);

// α-β model of a collective or memory-bound op, for sizes outside its table:
//   t(S) = alpha + S / beta,  alpha in seconds, beta in bytes/s.
struct AlphaBeta {
  double alpha_s = 0;
  double beta_bytes_per_s = 0;
  double rms_relative_residual = 0;  // sqrt(mean ((t_i − t(S_i)) / t_i)²)

  double predict(double bytes) const { return alpha_s + bytes / beta_bytes_per_s; }
};

struct SizeTime {
  double bytes = 0;    // >= 0
  double seconds = 0;  // > 0
};

// Linear least squares in (alpha, 1/beta) weighted by 1/t_i², i.e. min Σ ((t_i − t(S_i)) / t_i)²:
// sizes span six decades, so unweighted residuals would be those of the largest messages alone
// and alpha (microseconds) would be noise of their milliseconds; relative residuals let small and
// large messages count alike. Solved by modified Gram–Schmidt on the column-scaled 2-column
// system (no normal equations, so no squared condition number). If the unconstrained alpha is
// negative (noise on a latency below resolution), alpha is fixed at 0 and 1/beta refitted. Throws
// std::invalid_argument (prefixed with `what`) for fewer than 2 distinct sizes, a negative or
// non-finite size, a non-positive or non-finite time, or times that do not grow with size (1/beta
// <= 0).
AlphaBeta fit_alpha_beta(std::span<const SizeTime> samples, std::string_view what);
// From a 1-key seconds table (bytes -> seconds).
AlphaBeta fit_alpha_beta(const GridTable& table);

}  // namespace mpsim::cost
