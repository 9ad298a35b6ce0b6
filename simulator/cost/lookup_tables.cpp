// The links of the calibrated model's lookup chains (lookup_tables.h): exact points, grids with
// their fitted curves, and the ring scaling of collectives to unmeasured group sizes.
#include "simulator/cost/lookup_tables.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <stdexcept>
#include <utility>

#include "simulator/cost/calibrated_cost.h"

namespace mpsim::cost {
namespace {

std::string join(std::span<const std::string_view> names) {
  std::string text;
  for (std::size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + std::string(names[i]);
  return text;
}

// Shortest text that reads back as the same double ("2", "2.5").
std::string num(double x) {
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, result.ptr);
}

bool positive_finite(double x) { return x > 0 && std::isfinite(x); }

bool whole_ranks(double x) { return x >= 1 && x <= 1 << 20 && x == std::floor(x); }

}  // namespace

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

// ---- ExactTable ---------------------------------------------------------------------------------

ExactTable::ExactTable(const spec::CalibratedTable& table,
                       std::span<const std::string_view> key_names, bool collective) {
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
      if (collective && d == 0 && !whole_ranks(x)) {
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

const double* ExactTable::find(std::span<const double> keys) const {
  Keys probe{};
  std::copy(keys.begin(), keys.end(), probe.begin());
  const auto it = std::lower_bound(points_.begin(), points_.end(), probe,
                                   [](const Point& p, const Keys& k) { return p.keys < k; });
  return it != points_.end() && it->keys == probe ? &it->seconds : nullptr;
}

// ---- ComputeTable, BytesTable -------------------------------------------------------------------

ComputeTable::ComputeTable(const spec::CalibratedTable& table, WorkFunction work, double peak)
    : grid_(table, work), curve_(fit_efficiency_curve(grid_, peak)), work_(work), peak_(peak) {}

std::optional<double> ComputeTable::seconds(std::span<const double> keys) const {
  if (grid_.contains(keys)) return grid_.seconds(keys);
  return work_(keys) / (peak_ * curve_.predict(keys));
}

BytesTable::BytesTable(const spec::CalibratedTable& table)
    : grid_(table), fit_(fit_alpha_beta(grid_)) {}

std::optional<double> BytesTable::seconds(std::span<const double> keys) const {
  return seconds(keys[0]);
}

double BytesTable::seconds(double bytes) const {
  const std::array<double, 1> keys{bytes};
  return grid_.contains(keys) ? grid_.seconds(keys) : fit_.predict(bytes);
}

// ---- CollectiveTable ----------------------------------------------------------------------------

CollectiveTable::CollectiveTable(const spec::CalibratedTable& table, graph::OpKind kind)
    : ring_(&collective_traits(kind)) {
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
    if (!whole_ranks(g)) {
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
  for (const auto& [size, sub] : by_group) groups_.push_back({size, BytesTable(sub)});
  // Scaling reference: the largest measured group that communicates.
  if (groups_.back().size >= 2) {
    const Group& ref = groups_.back();
    reference_group_ = ref.size;
    alpha_step_s_ = ref.bytes.fit().alpha_s / ring_->steps(ref.size);
    bus_bytes_per_s_ = ref.bytes.fit().beta_bytes_per_s * ring_->share(ref.size);
  }
}

std::optional<double> CollectiveTable::seconds(std::span<const double> keys) const {
  return seconds(static_cast<int>(keys[0]), keys[1]);
}

std::optional<double> CollectiveTable::seconds(int group_size, double bytes) const {
  for (const Group& g : groups_) {
    if (g.size == group_size) return g.bytes.seconds(bytes);
  }
  if (reference_group_ == 0) return std::nullopt;
  return ring_->steps(group_size) * alpha_step_s_ +
         ring_->share(group_size) * bytes / bus_bytes_per_s_;
}

std::string CollectiveTable::summary() const {
  std::string text = " (group_size ";
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(groups_[i].size);
  }
  if (reference_group_ == 0) return text + "; other groups: roofline)";
  return text + "; other groups ring-scaled from " + std::to_string(reference_group_) + ")";
}

}  // namespace mpsim::cost
