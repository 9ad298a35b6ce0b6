// Synthetic calibrated tables built from known closed forms, and ops to price with them, shared
// by the tests of the calibrated cost model (calibrated_cost_test.cpp, lookup_tables_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "simulator/cost/calibrated_cost.h"
#include "simulator/cost/cost_model.h"
#include "tests/cost/cost_test_hardware.h"

namespace mpsim::cost::calibrated_test {

using graph::Op;
using graph::OpKind;
using graph::Pass;
using Keys = std::vector<double>;

inline spec::Hardware test_hardware() { return testing::cost_test_hardware(); }

constexpr double kPeak = 989e12;

inline double rel_err(double got, double want) { return std::abs(got - want) / std::abs(want); }

// A table over the full grid axes[0] × axes[1] × ..., seconds = f(keys).
inline spec::CalibratedTable grid_table(std::string_view op, const std::vector<std::string>& names,
                                        const std::vector<std::vector<double>>& axes,
                                        const std::function<double(const Keys&)>& f) {
  spec::CalibratedTable table;
  table.set_op(std::string(op));
  for (const auto& n : names) table.add_key_names(n);
  std::vector<std::size_t> idx(axes.size(), 0);
  for (bool done = false; !done;) {
    Keys keys(axes.size());
    for (std::size_t d = 0; d < axes.size(); ++d) keys[d] = axes[d][idx[d]];
    spec::CalibratedPoint* p = table.add_points();
    for (double k : keys) p->add_key(k);
    p->set_seconds(f(keys));
    done = true;
    for (std::size_t d = axes.size(); d-- > 0;) {
      if (++idx[d] < axes[d].size()) {
        done = false;
        break;
      }
      idx[d] = 0;
    }
  }
  return table;
}

inline std::vector<double> geometric(double first, double last, double ratio) {
  std::vector<double> axis;
  for (double x = first; x <= last * (1 + 1e-12); x *= ratio) axis.push_back(x);
  return axis;
}

// ---- closed forms -------------------------------------------------------------------------------

// GEMM time on a GPU whose efficiency has exactly the calibrated model's curve shape.
inline double gemm_eff(const Keys& x) {
  return 0.8 * x[0] / (x[0] + 300) * x[1] / (x[1] + 200) * x[2] / (x[2] + 700);
}
inline double gemm_closed_form(const Keys& x) {
  return 2 * x[0] * x[1] * x[2] / (kPeak * gemm_eff(x));
}
// A power law in (m, n, k): exact anywhere inside under log-log interpolation.
inline double gemm_power_law(const Keys& x) {
  return 1e-15 * std::pow(x[0], 0.9) * std::pow(x[1], 1.1) * x[2];
}

inline double attention_eff(const Keys& x, double max) {
  return max * x[0] / (x[0] + 4) * x[1] / (x[1] + 256) * x[2] / (x[2] + 32);
}
inline double attention_forward_closed_form(const Keys& x) {
  return 4 * x[0] * x[1] * x[1] * x[2] / (kPeak * attention_eff(x, 0.6));
}
inline double attention_backward_closed_form(const Keys& x) {
  return 8 * x[0] * x[1] * x[1] * x[2] / (kPeak * attention_eff(x, 0.45));
}
// Flash attention: the causal work 2 bh s (s + 1) d forward, 2.5 times that backward; keys (bh,
// s, d, group), the time growing with the query heads per key/value head (a power law in the
// group, which the log-log interpolation reproduces).
inline double group_factor(const Keys& x) { return std::pow(x[3], 0.05); }
inline double flash_forward_closed_form(const Keys& x) {
  return 2 * x[0] * x[1] * (x[1] + 1) * x[2] * group_factor(x) / (kPeak * attention_eff(x, 0.7));
}
inline double flash_backward_closed_form(const Keys& x) {
  return 5 * x[0] * x[1] * (x[1] + 1) * x[2] * group_factor(x) / (kPeak * attention_eff(x, 0.55));
}

// α-β times of memory-bound kernels and collectives.
struct AlphaBetaForm {
  double alpha, beta;
  double operator()(double bytes) const { return alpha + bytes / beta; }
};
constexpr AlphaBetaForm kElementwise{3e-6, 2.5e12};
constexpr AlphaBetaForm kAllReduce2{5e-6, 300e9};  // group 2 on NVLink
constexpr AlphaBetaForm kAllReduce1{2e-6, 1e12};   // group 1: a local copy
constexpr AlphaBetaForm kAllGather2{4e-6, 350e9};

inline const std::vector<double> kGemmAxis = geometric(256, 8192, 2);
inline const std::vector<double> kMemoryAxis =
    geometric(1024, 1024.0 * 1024 * 1024, 4);  // 1 KiB..1 GiB
inline const std::vector<double> kMessageAxis =
    geometric(1024, 1024.0 * 1024 * 1024, 2);  // 1 KiB..1 GiB

inline spec::CalibratedTable gemm_table(
    const std::function<double(const Keys&)>& f = gemm_closed_form) {
  return grid_table(kGemmTable, {"m", "n", "k"}, {kGemmAxis, kGemmAxis, kGemmAxis}, f);
}

inline spec::CalibratedTable attention_table(bool backward) {
  return grid_table(backward ? kAttentionBackwardTable : kAttentionForwardTable,
                    {"batch_heads", "seq", "head_dim"},
                    {{8, 16, 32, 64}, {512, 1024, 2048, 4096}, {32, 64, 128}},
                    backward ? attention_backward_closed_form : attention_forward_closed_form);
}

inline spec::CalibratedTable flash_table(bool backward) {
  return grid_table(backward ? kFlashBackwardTable : kFlashForwardTable,
                    {"batch_heads", "seq", "head_dim", "group"},
                    {{8, 16, 32, 64}, {512, 1024, 2048, 4096}, {32, 64, 128}, {1, 4, 8}},
                    backward ? flash_backward_closed_form : flash_forward_closed_form);
}

inline spec::CalibratedTable memory_table(std::string_view op,
                                          const std::function<double(double)>& f) {
  return grid_table(op, {"bytes"}, {kMemoryAxis}, [&](const Keys& x) { return f(x[0]); });
}

// A collective table with one α-β curve per group size, each over its own byte sizes.
struct GroupCurve {
  int group_size;
  AlphaBetaForm form;
  std::vector<double> sizes;
};
inline spec::CalibratedTable collective_table(std::string_view op,
                                              const std::vector<GroupCurve>& curves) {
  spec::CalibratedTable table;
  table.set_op(std::string(op));
  table.add_key_names("group_size");
  table.add_key_names("bytes");
  for (const GroupCurve& c : curves) {
    for (double s : c.sizes) {
      spec::CalibratedPoint* p = table.add_points();
      p->add_key(c.group_size);
      p->add_key(s);
      p->set_seconds(c.form(s));
    }
  }
  return table;
}

// ---- ops ----------------------------------------------------------------------------------------

inline Op gemm(double m, double n, double k) {
  Op op;
  op.kind = OpKind::kGemm;
  op.gemm = {static_cast<int64_t>(m), static_cast<int64_t>(n), static_cast<int64_t>(k)};
  op.flops = 2.0 * m * n * k;
  op.bytes = 2.0 * (m * k + k * n + m * n);
  return op;
}

inline Op attention(const Keys& x, Pass pass) {
  Op op;
  op.kind = OpKind::kAttention;
  op.pass = pass;
  op.attn_batch_heads = static_cast<int64_t>(x[0]);
  op.attn_seq = static_cast<int64_t>(x[1]);
  op.attn_head_dim = static_cast<int64_t>(x[2]);
  const double forward = 4 * x[0] * x[1] * x[1] * x[2];
  op.flops = pass == Pass::kBackward ? 2 * forward : forward;
  op.bytes = 2.0 * 3 * x[0] * x[1] * x[2];
  return op;
}

inline Op memory_op(OpKind kind, double bytes) {
  Op op;
  op.kind = kind;
  op.bytes = bytes;
  op.flops = bytes / 2;
  return op;
}

inline Op collective(OpKind kind, double bytes, int group_size, int group_nodes = 1) {
  Op op;
  op.kind = kind;
  op.bytes = bytes;
  op.group_size = group_size;
  op.group_nodes = group_nodes;
  return op;
}

// One op of every kind, priced by whichever model is asked.
inline std::vector<Op> every_kind_of_op() {
  std::vector<Op> ops = {gemm(4096, 4096, 4096),
                         gemm(16, 100000, 64),
                         attention({32, 2048, 128}, Pass::kForward),
                         attention({32, 2048, 128}, Pass::kRecompute),
                         attention({32, 2048, 128}, Pass::kBackward),
                         memory_op(OpKind::kNorm, 64e6),
                         memory_op(OpKind::kElementwise, 64e6),
                         memory_op(OpKind::kLoss, 64e6),
                         memory_op(OpKind::kOptimizer, 2e9)};
  for (OpKind kind :
       {OpKind::kAllReduce, OpKind::kAllGather, OpKind::kReduceScatter, OpKind::kSend}) {
    ops.push_back(collective(kind, 128e6, 2));
    ops.push_back(collective(kind, 128e6, 8));
    ops.push_back(collective(kind, 128e6, 16, 2));
  }
  Op step;
  step.kind = OpKind::kStepBlock;
  step.duration_s = 1.25e-3;
  ops.push_back(step);
  return ops;
}

// Every table this test knows, on test_hardware().
inline spec::Hardware calibrated_hardware() {
  spec::Hardware hw = test_hardware();
  hw.calibrated = {gemm_table(),
                   attention_table(false),
                   attention_table(true),
                   memory_table(kElementwiseTable, kElementwise),
                   collective_table(kAllReduceTable, {{1, kAllReduce1, kMessageAxis},
                                                      {2, kAllReduce2, kMessageAxis}}),
                   collective_table(kAllGatherTable, {{2, kAllGather2, kMessageAxis}})};
  return hw;
}

template <typename F>
inline std::string refusal(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace mpsim::cost::calibrated_test
