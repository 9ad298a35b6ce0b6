// The links of the calibrated model's lookup chains (calibrated_cost.h), each built once from
// one measured table (spec::CalibratedTable) and then only read:
//   ExactTable   times measured at exact key vectors (`<base>.exact`): a point's seconds for an
//                op whose keys equal it, nothing for any other;
//   FittedTable  a grid table with a curve fitted to it: the grid inside its box (GridTable,
//                calibrated_tables.h), the curve outside; three kinds, by what the keys are:
//                ComputeTable (throughput grid, efficiency curve), BytesTable (seconds by bytes,
//                α-β) and CollectiveTable (one bytes table per measured group size, ring-scaled
//                to the others with the traits of collective_traits.h).
// Internal to simulator/cost: calibrated_cost.cpp builds these; other callers use CostModel.
//
// Failure: the constructors throw std::invalid_argument naming the table, the point and the key
// (the messages of calibrated_cost.h's "Failure"); the lookups never throw for keys of the
// table's count, allocate nothing and do no string work.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "simulator/cost/calibrated_tables.h"
#include "simulator/cost/collective_traits.h"
#include "simulator/graph/op.h"
#include "simulator/spec/hardware.h"

namespace mpsim::cost {

// Refuses a table whose key names are not `expected`, in order.
void check_keys(const spec::CalibratedTable& table, std::span<const std::string_view> expected);

// Times measured at exact key vectors. Sorted by keys, looked up by binary search on the exact
// doubles: no interpolation, no allocation.
class ExactTable {
 public:
  // `collective`: the first key is a group size, a whole number of ranks.
  ExactTable(const spec::CalibratedTable& table, std::span<const std::string_view> key_names,
             bool collective);

  // The measured seconds at exactly `keys` (as many as the table's key_names), or null.
  const double* find(std::span<const double> keys) const;
  std::size_t size() const { return points_.size(); }

 private:
  using Keys = std::array<double, kMaxTableKeys>;  // unused keys 0
  struct Point {
    Keys keys{};
    double seconds = 0;
  };
  std::vector<Point> points_;  // ascending keys, distinct
};

// A grid table and the curve fitted to it.
class FittedTable {
 public:
  virtual ~FittedTable() = default;
  // The op's seconds at `keys` (the table's key count): the grid inside its box, the fitted
  // curve outside; nullopt where the table cannot answer (a collective group size that neither
  // was measured nor can be scaled to).
  virtual std::optional<double> seconds(std::span<const double> keys) const = 0;
  // What describe() adds after the table's name; empty for most tables.
  virtual std::string summary() const { return {}; }
};

// A compute table: throughput interpolated inside the grid; outside it,
// seconds = work(keys) / (peak · eff(keys)) with eff the efficiency curve fitted to the table.
class ComputeTable final : public FittedTable {
 public:
  ComputeTable(const spec::CalibratedTable& table, WorkFunction work, double peak);
  std::optional<double> seconds(std::span<const double> keys) const override;

 private:
  GridTable grid_;
  EfficiencyCurve curve_;
  WorkFunction work_;
  double peak_;
};

// A table of seconds by bytes: interpolated inside the grid, alpha + bytes / beta outside.
class BytesTable final : public FittedTable {
 public:
  explicit BytesTable(const spec::CalibratedTable& table);
  std::optional<double> seconds(std::span<const double> keys) const override;
  double seconds(double bytes) const;
  const AlphaBeta& fit() const { return fit_; }

 private:
  GridTable grid_;
  AlphaBeta fit_;
};

// One collective's measured tables, one per group size (keys group_size, bytes), and the ring
// scaling to the others: from the largest measured group m >= 2, alpha_step = alpha / steps(m)
// and bus = beta · share(m); on n ranks t = steps(n)·alpha_step + share(n)·S / bus.
class CollectiveTable final : public FittedTable {
 public:
  CollectiveTable(const spec::CalibratedTable& table, graph::OpKind kind);
  std::optional<double> seconds(std::span<const double> keys) const override;
  std::optional<double> seconds(int group_size, double bytes) const;
  std::string summary() const override;

 private:
  struct Group {
    int size;
    BytesTable bytes;
  };
  const CollectiveTraits* ring_;  // steps and shares of this collective
  std::vector<Group> groups_;     // ascending size
  int reference_group_ = 0;       // 0: none (only group 1 measured)
  double alpha_step_s_ = 0;       // per ring step, from the reference group's alpha-beta fit
  double bus_bytes_per_s_ = 0;    // bus bandwidth, from the same fit
};

}  // namespace mpsim::cost
