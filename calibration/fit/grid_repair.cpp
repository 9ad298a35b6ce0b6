// Completing a measured grid by dropping axis values; the rule is in grid_repair.h.
#include "calibration/fit/grid_repair.h"

#include <cstddef>
#include <cstdint>
#include <set>

#include "common/text.h"

namespace mpsim::calibration {
std::vector<std::string> complete_grid(spec::CalibratedTable& table) {
  std::vector<std::string> dropped;
  const int keys = table.key_names_size();
  {
    spec::CalibratedTable kept = table;
    kept.clear_points();
    int bad = 0;
    for (const spec::CalibratedPoint& p : table.points()) {
      if (p.key_size() == keys) {
        *kept.add_points() = p;
      } else {
        ++bad;
      }
    }
    if (bad > 0) {
      dropped.push_back(std::to_string(bad) + " point(s) without " + std::to_string(keys) +
                        " keys");
    }
    table = std::move(kept);
  }
  if (keys == 0) return dropped;
  while (table.points_size() > 0) {
    std::vector<std::set<double>> axes(static_cast<std::size_t>(keys));
    std::set<std::vector<double>> present;
    for (const spec::CalibratedPoint& p : table.points()) {
      for (int d = 0; d < keys; ++d) axes[static_cast<std::size_t>(d)].insert(p.key(d));
      present.emplace(p.key().begin(), p.key().end());
    }
    double total = 1;
    for (const auto& axis : axes) total *= static_cast<double>(axis.size());
    if (static_cast<double>(present.size()) == total) break;
    // Missing combinations through each axis value: the slice's size minus its points.
    int best_d = -1;
    double best_value = 0, best_missing = -1, best_slice = 0;
    for (int d = 0; d < keys; ++d) {
      const auto& axis = axes[static_cast<std::size_t>(d)];
      const double slice = total / static_cast<double>(axis.size());
      for (double value : axis) {
        double count = 0;
        for (const auto& point : present) count += point[static_cast<std::size_t>(d)] == value;
        const double missing = slice - count;
        if (missing > best_missing || (missing == best_missing && value >= best_value)) {
          best_d = d;
          best_value = value;
          best_missing = missing;
          best_slice = slice;
        }
      }
    }
    spec::CalibratedTable kept = table;
    kept.clear_points();
    int64_t removed = 0;
    for (const spec::CalibratedPoint& p : table.points()) {
      if (p.key(best_d) == best_value) {
        ++removed;
      } else {
        *kept.add_points() = p;
      }
    }
    dropped.push_back(table.key_names(best_d) + "=" + common::shortest(best_value) + " (" +
                      common::shortest(best_missing) + " of " + common::shortest(best_slice) +
                      " combinations missing, " + std::to_string(removed) + " points dropped)");
    table = std::move(kept);
  }
  return dropped;
}

}  // namespace mpsim::calibration
