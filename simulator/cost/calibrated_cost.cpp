// CalibratedCostModel, the model behind make_calibrated_cost_model: measured times at the exact
// tables' points, measured tables inside their grids, curves fitted to them outside, the roofline
// model elsewhere. Formulas and rationale:
// calibrated_cost.h and simulator/cost/README.md, "Calibrated cost model".
#include "simulator/cost/calibrated_cost.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "simulator/cost/calibrated_tables.h"
#include "simulator/cost/collective_cost.h"

namespace mpsim::cost {
namespace {

using graph::Op;
using graph::OpKind;

std::string join(std::span<const std::string_view> names) {
  std::string text;
  for (std::size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + std::string(names[i]);
  return text;
}

// Refuses a table whose key names are not `expected`, in order.
void check_keys(const spec::CalibratedTable& table, std::span<const std::string_view> expected) {
  const std::size_t n = expected.size();
  bool same = table.key_names_size() == static_cast<int>(n);
  for (std::size_t i = 0; same && i < n; ++i)
    same = table.key_names(static_cast<int>(i)) == expected[i];
  if (same) return;
  std::string got;
  for (int i = 0; i < table.key_names_size(); ++i) got += (i ? ", " : "") + table.key_names(i);
  throw std::invalid_argument("table " + table.op() + ": key_names (" + got +
                              ") do not match, expected (" + join(expected) + ")");
}

// Shortest text that reads back as the same double ("2", "2.5").
std::string num(double x) {
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, result.ptr);
}

bool positive_finite(double x) { return x > 0 && std::isfinite(x); }

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// A compute table: throughput interpolated inside the grid; outside it,
// seconds = work(keys) / (peak · eff(keys)) with eff the efficiency curve fitted to the table.
struct ComputeTable {
  ComputeTable(const spec::CalibratedTable& table, WorkFunction work, double peak)
      : grid(table, work), curve(fit_efficiency_curve(grid, peak)), work(work), peak(peak) {}

  double seconds(std::span<const double> keys) const {
    if (grid.contains(keys)) return grid.seconds(keys);
    return work(keys) / (peak * curve.predict(keys));
  }

  GridTable grid;
  EfficiencyCurve curve;
  WorkFunction work;
  double peak;
};

// A table of seconds by bytes: interpolated inside the grid, alpha + bytes / beta outside.
struct BytesTable {
  explicit BytesTable(const spec::CalibratedTable& table)
      : grid(table), fit(fit_alpha_beta(grid)) {}

  double seconds(double bytes) const {
    const std::array<double, 1> keys{bytes};
    return grid.contains(keys) ? grid.seconds(keys) : fit.predict(bytes);
  }

  GridTable grid;
  AlphaBeta fit;
};

// Times measured at exact key vectors (an exact table, `<base>.exact`): a point's seconds for an
// op whose keys equal the point's, nothing for any other. Sorted by keys, looked up by binary
// search on the exact doubles: no interpolation, no allocation.
class ExactTable {
 public:
  // `collective`: the first key is a group size, a whole number of ranks.
  ExactTable(const spec::CalibratedTable& table, std::span<const std::string_view> key_names,
             bool collective) {
    check_keys(table, key_names);
    const std::size_t dims = key_names.size();
    const std::string label = "table " + table.op() + ": ";
    if (table.points_size() == 0) {
      throw std::invalid_argument(label + "no points, expected at least one measured point");
    }
    std::vector<std::pair<Point, int>> indexed;  // point, its index in the table
    for (int i = 0; i < table.points_size(); ++i) {
      const spec::CalibratedPoint& p = table.points(i);
      const std::string where = label + "point " + std::to_string(i) + ": ";
      if (p.key_size() != static_cast<int>(dims)) {
        throw std::invalid_argument(where + std::to_string(p.key_size()) + " keys, expected " +
                                    std::to_string(dims) + " (" + join(key_names) + ")");
      }
      Point point;
      for (std::size_t d = 0; d < dims; ++d) {
        const double x = p.key(static_cast<int>(d));
        if (collective && d == 0 && !(x >= 1 && x <= 1 << 20 && x == std::floor(x))) {
          throw std::invalid_argument(where + "key " + std::string(key_names[d]) + " = " + num(x) +
                                      ", expected a whole number of ranks >= 1");
        }
        if (!positive_finite(x)) {
          throw std::invalid_argument(where + "key " + std::string(key_names[d]) + " = " + num(x) +
                                      ", expected a positive size");
        }
        point.keys[d] = x;
      }
      if (!positive_finite(p.seconds())) {
        throw std::invalid_argument(where + "seconds = " + num(p.seconds()) +
                                    ", expected a positive time");
      }
      point.seconds = p.seconds();
      indexed.emplace_back(point, i);
    }
    std::sort(indexed.begin(), indexed.end(), [](const auto& a, const auto& b) {
      return a.first.keys != b.first.keys ? a.first.keys < b.first.keys : a.second < b.second;
    });
    // The duplicate reported is the one with the lowest index, as GridTable does.
    int first = -1, second = -1;
    for (std::size_t j = 1; j < indexed.size(); ++j) {
      if (indexed[j].first.keys == indexed[j - 1].first.keys &&
          (second < 0 || indexed[j].second < second)) {
        first = indexed[j - 1].second;
        second = indexed[j].second;
      }
    }
    if (second >= 0) {
      std::string keys;
      for (std::size_t d = 0; d < dims; ++d) {
        keys += (d ? ", " : "") + std::string(key_names[d]) + "=" +
                num(table.points(second).key(static_cast<int>(d)));
      }
      throw std::invalid_argument(label + "point " + std::to_string(second) +
                                  ": duplicate of point " + std::to_string(first) + " (" + keys +
                                  ")");
    }
    points_.reserve(indexed.size());
    for (const auto& [point, index] : indexed) points_.push_back(point);
  }

  // The measured seconds at exactly `keys` (as many as the table's key_names), or null.
  const double* find(std::span<const double> keys) const {
    Keys probe{};
    std::copy(keys.begin(), keys.end(), probe.begin());
    const auto it = std::lower_bound(points_.begin(), points_.end(), probe,
                                     [](const Point& p, const Keys& k) { return p.keys < k; });
    return it != points_.end() && it->keys == probe ? &it->seconds : nullptr;
  }

  std::size_t size() const { return points_.size(); }

 private:
  using Keys = std::array<double, kMaxTableKeys>;  // unused keys 0
  struct Point {
    Keys keys{};
    double seconds = 0;
  };
  std::vector<Point> points_;  // ascending keys, distinct
};

// The exact table's seconds at `keys`, if the table exists and has that point.
const double* find_exact(const std::optional<ExactTable>& table, std::span<const double> keys) {
  return table ? table->find(keys) : nullptr;
}

// Ring steps of a collective on n ranks: t = steps(n)·α_step + bus_bandwidth_factor(n)·S/B_bus.
double ring_steps(OpKind kind, double n) {
  switch (kind) {
    case OpKind::kAllReduce:
      return 2 * (n - 1);
    case OpKind::kAllGather:
    case OpKind::kReduceScatter:
      return n - 1;
    default:  // send: one transfer whatever the group
      return 1;
  }
}

// One collective's measured tables, one per group size, and the ring scaling to the others.
struct CollectiveTable {
  struct Group {
    int size;
    BytesTable bytes;
  };

  CollectiveTable(const spec::CalibratedTable& table, OpKind kind) : kind(kind) {
    check_keys(table, kCollectiveKeys);
    std::map<int, spec::CalibratedTable> by_group;
    for (int i = 0; i < table.points_size(); ++i) {
      const spec::CalibratedPoint& p = table.points(i);
      const std::string where = "table " + table.op() + ": point " + std::to_string(i) + ": ";
      if (p.key_size() != 2) {
        throw std::invalid_argument(where + std::to_string(p.key_size()) + " keys, expected 2 (" +
                                    join(kCollectiveKeys) + ")");
      }
      const double g = p.key(0);
      if (!(g >= 1 && g <= 1 << 20 && g == std::floor(g))) {
        throw std::invalid_argument(where + "key group_size = " + num(g) +
                                    ", expected a whole number of ranks >= 1");
      }
      const int size = static_cast<int>(g);
      auto [it, inserted] = by_group.try_emplace(size);
      spec::CalibratedTable& sub = it->second;
      if (inserted) {
        sub.set_op(table.op() + " (group_size " + std::to_string(size) + ")");
        sub.add_key_names(std::string(kCollectiveKeys[1]));
      }
      spec::CalibratedPoint* q = sub.add_points();
      q->add_key(p.key(1));
      q->set_seconds(p.seconds());
    }
    if (by_group.empty()) {
      throw std::invalid_argument("table " + table.op() + ": no points, expected " +
                                  join(kCollectiveKeys) + " points");
    }
    for (const auto& [size, sub] : by_group) groups.push_back({size, BytesTable(sub)});
    // Scaling reference: the largest measured group that communicates.
    if (groups.back().size >= 2) {
      const Group& ref = groups.back();
      const double m = ref.size;
      reference_group = ref.size;
      alpha_step_s = ref.bytes.fit.alpha_s / ring_steps(kind, m);
      bus_bytes_per_s = ref.bytes.fit.beta_bytes_per_s * bus_bandwidth_factor(kind, ref.size);
    }
  }

  // nullopt when neither the group's table nor a scaling reference applies.
  std::optional<double> seconds(int group_size, double bytes) const {
    for (const Group& g : groups) {
      if (g.size == group_size) return g.bytes.seconds(bytes);
    }
    if (reference_group == 0) return std::nullopt;
    return ring_steps(kind, group_size) * alpha_step_s +
           bus_bandwidth_factor(kind, group_size) * bytes / bus_bytes_per_s;
  }

  std::string summary() const {
    std::string text = " (group_size ";
    for (std::size_t i = 0; i < groups.size(); ++i) {
      text += (i ? ", " : "") + std::to_string(groups[i].size);
    }
    if (reference_group == 0) return text + "; other groups: roofline)";
    return text + "; other groups ring-scaled from " + std::to_string(reference_group) + ")";
  }

  OpKind kind;
  std::vector<Group> groups;   // ascending size
  int reference_group = 0;     // 0: none (only group 1 measured)
  double alpha_step_s = 0;     // per ring step, from the reference group's alpha-beta fit
  double bus_bytes_per_s = 0;  // bus bandwidth, from the same fit
};

int memory_index(OpKind kind) {
  switch (kind) {
    case OpKind::kNorm:
      return 0;
    case OpKind::kElementwise:
      return 1;
    case OpKind::kLoss:
      return 2;
    case OpKind::kOptimizer:
      return 3;
    default:
      return -1;
  }
}

int collective_index(OpKind kind) {
  switch (kind) {
    case OpKind::kAllReduce:
      return 0;
    case OpKind::kAllGather:
      return 1;
    case OpKind::kReduceScatter:
      return 2;
    case OpKind::kSend:
      return 3;
    default:
      return -1;
  }
}

constexpr std::array<OpKind, 4> kMemoryKinds = {OpKind::kNorm, OpKind::kElementwise, OpKind::kLoss,
                                                OpKind::kOptimizer};

// GEMM tables by layout: index 0 the default (kGemmTable), then fwd, dgrad, wgrad.
constexpr std::array<std::string_view, 4> kGemmTables = {kGemmTable, kGemmForwardTable,
                                                         kGemmDgradTable, kGemmWgradTable};
int gemm_layout_index(std::string_view label) {
  if (label.ends_with(".dgrad")) return 2;
  if (label.ends_with(".wgrad")) return 3;
  return 1;
}
constexpr std::array<OpKind, 4> kCollectiveKinds = {OpKind::kAllReduce, OpKind::kAllGather,
                                                    OpKind::kReduceScatter, OpKind::kSend};

class CalibratedCostModel final : public CostModel {
 public:
  CalibratedCostModel(const spec::Hardware& hardware, CollectiveAlgorithm algorithm,
                      spec::DType compute_dtype)
      : roofline_(make_roofline_cost_model(hardware, algorithm, compute_dtype)) {
    const spec::DType dtype = compute_dtype == spec::DTYPE_UNSPECIFIED ? spec::BF16 : compute_dtype;
    const std::string where = "calibrated cost model for '" + hardware.name + "': ";
    // Tables by name, each at most once.
    std::map<std::string, const spec::CalibratedTable*, std::less<>> tables;
    for (const spec::CalibratedTable& t : hardware.calibrated) {
      if (!tables.try_emplace(t.op(), &t).second) {
        throw std::invalid_argument(where + "table " + t.op() +
                                    " given twice, expected one table per op");
      }
    }
    std::vector<std::string> used, fallback, ignored;
    bool grid_tables_used = false;
    // `optional`: a per-layout or per-pass table, whose absence is no fallback to the roofline
    // (the default table, or its absence, says what prices those ops).
    auto take = [&](std::string_view name, bool optional = false) -> const spec::CalibratedTable* {
      auto it = tables.find(name);
      if (it == tables.end()) {
        if (!optional) fallback.emplace_back(name);
        return nullptr;
      }
      const spec::CalibratedTable* t = it->second;
      tables.erase(it);
      used.emplace_back(name);
      return t;
    };
    try {
      if (dtype == spec::BF16) {
        const double peak = hardware.peak_flops(dtype);
        for (std::size_t i = 0; i < kGemmTables.size(); ++i) {
          if (const auto* t = take(kGemmTables[i], i > 0)) {
            check_keys(*t, kGemmKeys);
            gemm_[i].emplace(*t, gemm_flops, peak);
          }
        }
        if (const auto* t = take(kAttentionForwardTable)) {
          check_keys(*t, kAttentionKeys);
          attention_forward_.emplace(*t, attention_forward_flops, peak);
        }
        if (const auto* t = take(kAttentionBackwardTable)) {
          check_keys(*t, kAttentionKeys);
          attention_backward_.emplace(*t, attention_backward_flops, peak);
        }
      } else {
        const std::string note =
            " (bf16 table, model dtype " + lower(spec::DType_Name(dtype)) + ")";
        for (std::string_view name :
             {kGemmTable, kGemmForwardTable, kGemmDgradTable, kGemmWgradTable,
              kAttentionForwardTable, kAttentionBackwardTable}) {
          const bool layout =
              name == kGemmForwardTable || name == kGemmDgradTable || name == kGemmWgradTable;
          if (!layout) fallback.emplace_back(name);
          if (auto it = tables.find(name); it != tables.end()) {
            ignored.push_back(std::string(name) + note);
            tables.erase(it);
          }
        }
      }
      for (OpKind kind : kMemoryKinds) {
        if (const auto* t = take(calibrated_table_name(kind, graph::Pass::kForward))) {
          check_keys(*t, kMemoryKeys);
          memory_[memory_index(kind)].emplace(*t);
        }
        if (kind != OpKind::kNorm) continue;
        for (std::size_t i = 0; i < norm_by_pass_.size(); ++i) {
          if (const auto* t = take(i == 0 ? kNormForwardTable : kNormBackwardTable, true)) {
            check_keys(*t, kMemoryKeys);
            norm_by_pass_[i].emplace(*t);
          }
        }
      }
      for (OpKind kind : kCollectiveKinds) {
        if (const auto* t = take(calibrated_table_name(kind, graph::Pass::kForward))) {
          const int i = collective_index(kind);
          collective_[i].emplace(*t, kind);
          used.back() += collective_[i]->summary();
        }
      }
      grid_tables_used = !used.empty();
      // Exact tables, each optional and independent of its base table.
      struct ExactSlot {
        std::string_view base;
        std::optional<ExactTable>* table;
        std::span<const std::string_view> keys;
        bool compute;     // a bf16 compute table
        bool collective;  // keyed (group_size, bytes)
      };
      std::vector<ExactSlot> slots;
      for (std::size_t i = 0; i < kGemmTables.size(); ++i)
        slots.push_back({kGemmTables[i], &gemm_exact_[i], kGemmKeys, true, false});
      slots.push_back({kAttentionForwardTable, &attention_exact_[0], kAttentionKeys, true, false});
      slots.push_back({kAttentionBackwardTable, &attention_exact_[1], kAttentionKeys, true, false});
      for (OpKind kind : kMemoryKinds) {
        slots.push_back({calibrated_table_name(kind, graph::Pass::kForward),
                         &memory_exact_[memory_index(kind)], kMemoryKeys, false, false});
      }
      slots.push_back({kNormForwardTable, &norm_exact_by_pass_[0], kMemoryKeys, false, false});
      slots.push_back({kNormBackwardTable, &norm_exact_by_pass_[1], kMemoryKeys, false, false});
      for (OpKind kind : kCollectiveKinds) {
        slots.push_back({calibrated_table_name(kind, graph::Pass::kForward),
                         &collective_exact_[collective_index(kind)], kCollectiveKeys, false, true});
      }
      for (const ExactSlot& slot : slots) {
        const std::string name = exact_table_name(slot.base);
        if (slot.compute && dtype != spec::BF16) {
          if (auto it = tables.find(name); it != tables.end()) {
            ignored.push_back(name + " (bf16 table, model dtype " + lower(spec::DType_Name(dtype)) +
                              ")");
            tables.erase(it);
          }
          continue;
        }
        if (const auto* t = take(name, true)) {
          slot.table->emplace(*t, slot.keys, slot.collective);
          const std::size_t n = (*slot.table)->size();
          used.back() += " (" + std::to_string(n) + (n == 1 ? " point)" : " points)");
        }
      }
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + e.what());
    }
    for (const auto& [name, table] : tables) ignored.push_back(name);

    auto list = [](const std::vector<std::string>& names) {
      std::string text;
      for (std::size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
      return text;
    };
    description_ = "calibrated: " + (used.empty() ? std::string("no tables used") : list(used));
    if (grid_tables_used) description_ += ", fitted curves outside their grids";
    description_ += "; " + roofline_->describe() + ", for collectives across nodes";
    if (!fallback.empty()) description_ += " and ops without a table (" + list(fallback) + ")";
    if (!ignored.empty()) description_ += "; ignored tables: " + list(ignored);
  }

  double op_seconds(const Op& op) const override {
    switch (op.kind) {
      case OpKind::kGemm: {
        const int layout_index = 1 + static_cast<int>(graph::gemm_layout(op.label));  // kGemmTables
        const auto& layout = gemm_[layout_index];
        const auto& table = layout ? layout : gemm_[0];
        const auto& exact_layout = gemm_exact_[layout_index];
        const auto& exact = exact_layout ? exact_layout : gemm_exact_[0];
        if ((table || exact) && op.gemm.m > 0 && op.gemm.n > 0 && op.gemm.k > 0) {
          const std::array<double, 3> keys{static_cast<double>(op.gemm.m),
                                           static_cast<double>(op.gemm.n),
                                           static_cast<double>(op.gemm.k)};
          if (const double* seconds = find_exact(exact, keys)) return *seconds;
          if (table) return table->seconds(keys);
        }
        break;
      }
      case OpKind::kAttention: {
        const bool backward = op.pass == graph::Pass::kBackward;
        const auto& table = backward ? attention_backward_ : attention_forward_;
        const auto& exact = attention_exact_[backward ? 1 : 0];
        if ((table || exact) && op.attn_batch_heads > 0 && op.attn_seq > 0 &&
            op.attn_head_dim > 0) {
          const std::array<double, 3> keys{static_cast<double>(op.attn_batch_heads),
                                           static_cast<double>(op.attn_seq),
                                           static_cast<double>(op.attn_head_dim)};
          if (const double* seconds = find_exact(exact, keys)) return *seconds;
          if (table) return table->seconds(keys);
        }
        break;
      }
      case OpKind::kNorm:
      case OpKind::kElementwise:
      case OpKind::kLoss:
      case OpKind::kOptimizer: {
        const bool norm = op.kind == OpKind::kNorm;
        const int pass_index = op.pass == graph::Pass::kBackward ? 1 : 0;  // norms only
        const auto& by_pass = norm_by_pass_[pass_index];
        const auto& table = norm && by_pass ? by_pass : memory_[memory_index(op.kind)];
        const auto& exact_by_pass = norm_exact_by_pass_[pass_index];
        const auto& exact =
            norm && exact_by_pass ? exact_by_pass : memory_exact_[memory_index(op.kind)];
        if ((table || exact) && op.bytes > 0 && std::isfinite(op.bytes)) {
          const std::array<double, 1> keys{op.bytes};
          if (const double* seconds = find_exact(exact, keys)) return *seconds;
          if (table) return table->seconds(op.bytes);
        }
        break;
      }
      case OpKind::kAllReduce:
      case OpKind::kAllGather:
      case OpKind::kReduceScatter:
      case OpKind::kSend: {
        const auto& table = collective_[collective_index(op.kind)];
        const auto& exact = collective_exact_[collective_index(op.kind)];
        // Invalid groups and sizes go to the roofline, which refuses them.
        if ((!table && !exact) || op.group_nodes != 1 || op.group_size < 1 || !(op.bytes >= 0) ||
            !std::isfinite(op.bytes)) {
          break;
        }
        if (op.group_size == 1 || op.bytes == 0) return 0;  // nothing moves
        const std::array<double, 2> keys{static_cast<double>(op.group_size), op.bytes};
        if (const double* seconds = find_exact(exact, keys)) return *seconds;
        if (!table) break;
        if (auto seconds = table->seconds(op.group_size, op.bytes)) return *seconds;
        break;
      }
      case OpKind::kStepBlock:
        break;
    }
    return roofline_->op_seconds(op);
  }

  std::string describe() const override { return description_; }

 private:
  std::unique_ptr<CostModel> roofline_;
  std::array<std::optional<ComputeTable>, 4> gemm_;  // default, fwd, dgrad, wgrad (kGemmTables)
  std::optional<ComputeTable> attention_forward_, attention_backward_;
  std::array<std::optional<BytesTable>, 4> memory_;           // by memory_index
  std::array<std::optional<BytesTable>, 2> norm_by_pass_;     // fwd (and rcp), bwd
  std::array<std::optional<CollectiveTable>, 4> collective_;  // by collective_index
  // The exact tables (`<base>.exact`), indexed as their base tables above.
  std::array<std::optional<ExactTable>, 4> gemm_exact_;
  std::array<std::optional<ExactTable>, 2> attention_exact_;  // fwd (and rcp), bwd
  std::array<std::optional<ExactTable>, 4> memory_exact_;
  std::array<std::optional<ExactTable>, 2> norm_exact_by_pass_;
  std::array<std::optional<ExactTable>, 4> collective_exact_;
  std::string description_;
};

}  // namespace

std::string_view calibrated_table_name(OpKind kind, graph::Pass pass) {
  switch (kind) {
    case OpKind::kGemm:
      return kGemmTable;
    case OpKind::kAttention:
      return pass == graph::Pass::kBackward ? kAttentionBackwardTable : kAttentionForwardTable;
    case OpKind::kNorm:
      return kNormTable;
    case OpKind::kElementwise:
      return kElementwiseTable;
    case OpKind::kLoss:
      return kLossTable;
    case OpKind::kOptimizer:
      return kOptimizerTable;
    case OpKind::kAllReduce:
      return kAllReduceTable;
    case OpKind::kAllGather:
      return kAllGatherTable;
    case OpKind::kReduceScatter:
      return kReduceScatterTable;
    case OpKind::kSend:
      return kSendTable;
    case OpKind::kStepBlock:
      break;
  }
  return {};
}

std::string exact_table_name(std::string_view base) {
  return std::string(base) + std::string(kExactTableSuffix);
}

std::string_view gemm_layout_table(std::string_view label) {
  return kGemmTables[gemm_layout_index(label)];
}

std::unique_ptr<CostModel> make_calibrated_cost_model(const spec::Hardware& hardware,
                                                      CollectiveAlgorithm algorithm,
                                                      spec::DType compute_dtype) {
  return std::make_unique<CalibratedCostModel>(hardware, algorithm, compute_dtype);
}

std::unique_ptr<CostModel> make_cost_model(const spec::Hardware& hardware,
                                           CollectiveAlgorithm algorithm,
                                           spec::DType compute_dtype) {
  if (hardware.calibrated.empty()) {
    return make_roofline_cost_model(hardware, algorithm, compute_dtype);
  }
  return make_calibrated_cost_model(hardware, algorithm, compute_dtype);
}

}  // namespace mpsim::cost
