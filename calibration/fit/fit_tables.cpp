// Each calibrated table sorted, repaired (grid_repair.h) and checked: points off the grid's axes
// moved to the exact table, measurement artifacts and thin collective groups dropped, keys of a
// single value refused, the cost model's own checks; the exact tables and the merged memory.norm.
// See calibrate_profile.h.
#include <algorithm>
#include <map>

#include "calibration/fit/fit_state.h"
#include "calibration/fit/grid_repair.h"
#include "common/text.h"

namespace mpsim::calibration::fit {
namespace {

// The cost model's own checks (key names, grid, fits) on `table` alone; a refusal is noted.
bool accepted_by_cost_model(FitState& f, const spec::CalibratedTable& table) {
  spec::Hardware hw = f.base_hw;
  hw.calibrated = {table};
  try {
    cost::make_calibrated_cost_model(hw);
    return true;
  } catch (const std::invalid_argument& e) {
    f.report.notes.push_back(std::string(e.what()) + "; table not written");
    return false;
  }
}

// Points measured from the point list whose keys are not all on the grid's axes (the values
// of the table's unlisted points) leave the grid table: they are in the exact table.
void keep_grid_axes(FitState& f, TableBuild& build) {
  if (build.listed.empty()) return;
  spec::CalibratedTable& table = build.table;
  std::vector<std::set<double>> axes(static_cast<std::size_t>(table.key_names_size()));
  for (const auto& p : table.points()) {
    if (build.listed.contains(Keys(p.key().begin(), p.key().end()))) continue;
    for (int d = 0; d < p.key_size() && d < table.key_names_size(); ++d)
      axes[static_cast<std::size_t>(d)].insert(p.key(d));
  }
  spec::CalibratedTable kept = table;
  kept.clear_points();
  int off_grid = 0;
  for (const auto& p : table.points()) {
    bool on_axes = true;
    for (int d = 0; d < p.key_size() && d < table.key_names_size(); ++d)
      on_axes = on_axes && axes[static_cast<std::size_t>(d)].contains(p.key(d));
    if (on_axes) {
      *kept.add_points() = p;
    } else {
      ++off_grid;
    }
  }
  if (off_grid > 0) {
    f.report.notes.push_back("table " + table.op() + ": " + std::to_string(off_grid) + " of " +
                             std::to_string(build.listed.size()) +
                             " points of the point list lie off the grid's axes; in " +
                             cost::exact_table_name(table.op()) + " only");
  }
  table = std::move(kept);
}

void sort_points(spec::CalibratedTable& table) {
  auto& points = *table.mutable_points();
  std::sort(points.begin(), points.end(),
            [](const spec::CalibratedPoint& a, const spec::CalibratedPoint& b) {
              return std::lexicographical_compare(a.key().begin(), a.key().end(), b.key().begin(),
                                                  b.key().end());
            });
}

// Drops the points of a bytes-keyed table (per group size for a collective) that are slower
// than kArtifactRatio times a point at a larger size.
// Returns the keys dropped; notes each, except those in `reported`.
std::set<Keys> drop_artifacts(FitState& f, spec::CalibratedTable& table,
                              const std::set<Keys>& reported) {
  std::set<Keys> dropped;
  const int bytes_key = table.key_names_size() - 1;
  spec::CalibratedTable kept = table;
  kept.clear_points();
  // Points are sorted by (group,) bytes: walk each group from the largest size down.
  std::vector<bool> keep(static_cast<std::size_t>(table.points_size()), true);
  double fastest_larger = 0;
  for (int i = table.points_size() - 1; i >= 0; --i) {
    const spec::CalibratedPoint& p = table.points(i);
    const bool new_group =
        i == table.points_size() - 1 || (bytes_key > 0 && table.points(i + 1).key(0) != p.key(0));
    if (new_group) fastest_larger = 0;
    if (fastest_larger > 0 && p.seconds() > kArtifactRatio * fastest_larger) {
      keep[static_cast<std::size_t>(i)] = false;
      Keys keys(p.key().begin(), p.key().end());
      const bool known = reported.contains(keys);
      dropped.insert(std::move(keys));
      if (!known)
        f.report.notes.push_back("table " + table.op() + ": point " + keys_text(table, p) +
                                 " dropped: " + common::shortest(p.seconds()) + " s, more than " +
                                 common::shortest(kArtifactRatio) + " x the " +
                                 common::shortest(fastest_larger) +
                                 " s of a larger size (a measurement artifact)");
    }
    fastest_larger = fastest_larger > 0 ? std::min(fastest_larger, p.seconds()) : p.seconds();
  }
  for (int i = 0; i < table.points_size(); ++i) {
    if (keep[static_cast<std::size_t>(i)]) *kept.add_points() = table.points(i);
  }
  table = std::move(kept);
  return dropped;
}

// A collective's group with fewer than 2 sizes cannot be interpolated: its points go.
void drop_thin_groups(FitState& f, spec::CalibratedTable& table) {
  std::map<double, std::set<double>> sizes;
  for (const auto& p : table.points()) sizes[p.key(0)].insert(p.key(1));
  spec::CalibratedTable kept = table;
  kept.clear_points();
  for (const auto& p : table.points()) {
    if (sizes[p.key(0)].size() >= 2) *kept.add_points() = p;
  }
  for (const auto& [group, bytes] : sizes) {
    if (bytes.size() < 2) {
      f.report.notes.push_back("table " + table.op() + ": group_size " + common::shortest(group) +
                               " has a single measured size; its point dropped");
    }
  }
  table = std::move(kept);
}

std::string keys_text_of(const std::vector<int64_t>& k) {
  return "m=" + std::to_string(k[0]) + ", n=" + std::to_string(k[1]) +
         ", k=" + std::to_string(k[2]);
}

// The interference measurement against the same GEMM alone, measured right before it.
std::string interference_detail(FitState& f) {
  std::string text;
  for (const InterferencePair& pair : interference_pairs(f)) {
    text += "; " + keys_text_of(pair.measurement->range.keys) + ": " +
            common::fixed(pair.with->nccl_kernels_per_repetition, 1) +
            " all-reduce kernels per repetition beside the GEMM";
    if (pair.alone == nullptr) continue;
    text += ", the GEMM alone right before " +
            common::shortest(significant(pair.alone->seconds.all, 7)) + " s, so x" +
            common::fixed(pair.slowdown(), 3) + " with the all-reduces";
  }
  return text;
}

}  // namespace

std::vector<InterferencePair> interference_pairs(FitState& f) {
  std::vector<InterferencePair> pairs;
  for (const CalibrationMeasurement* m : f.interference) {
    const std::vector<int64_t>& k = m->range.keys;
    const std::string alone_text = "calib/gemm.bf16/fwd/m=" + std::to_string(k[0]) +
                                   ",n=" + std::to_string(k[1]) + ",k=" + std::to_string(k[2]);
    const auto alone =
        std::find_if(f.data.measurements.begin(), f.data.measurements.end(),
                     [&](const CalibrationMeasurement& a) { return a.text == alone_text; });
    for (const RangeInstance& with : m->instances) {
      InterferencePair pair{m, &with, nullptr};
      if (alone != f.data.measurements.end()) {
        for (const RangeInstance& a : alone->instances) {
          if (a.database == with.database && a.rank == with.rank && a.start_ns < with.start_ns &&
              a.seconds.all > 0 && (pair.alone == nullptr || a.start_ns > pair.alone->start_ns)) {
            pair.alone = &a;
          }
        }
      }
      pairs.push_back(pair);
    }
  }
  return pairs;
}

// "1 x NVIDIA H100 80GB HBM3 2026-11-26 (traces/calibration/h100.rank0.sqlite)", for sources.
std::string measured_on(FitState& f, const std::set<int64_t>& indices) {
  std::vector<std::string> parts;
  for (int64_t i : indices) {
    const CalibrationSource& s = f.data.sources.at(static_cast<std::size_t>(i));
    parts.push_back(s.gpu_summary() + " " + s.date + " (" + s.path + ") with " +
                    versions_text(s.versions));
  }
  return "measured on " + common::join(parts, " and ");
}

// Sorts, repairs and checks one table; nullopt (with notes) when it cannot be written.
std::optional<spec::CalibratedTable> finish(FitState& f, TableBuild& build) {
  spec::CalibratedTable& table = build.table;
  const std::string name = table.op();  // a copy: the table is replaced below
  keep_grid_axes(f, build);
  sort_points(table);
  const bool collective = table.key_names_size() == 2 && table.key_names(0) == "group_size";
  if (collective || table.key_names_size() == 1) build.artifacts = drop_artifacts(f, table, {});
  if (collective) {
    drop_thin_groups(f, table);
  } else if (name != kInterferenceGemmTable) {
    for (const std::string& dropped : complete_grid(table)) {
      f.report.notes.push_back("table " + name + ": grid incomplete, dropped " + dropped);
    }
    for (int d = 0; d < table.key_names_size() && table.points_size() > 0; ++d) {
      std::set<double> values;
      for (const auto& p : table.points()) values.insert(p.key(d));
      if (values.size() < 2) {
        f.report.notes.push_back("table " + name + ": key " + table.key_names(d) +
                                 " has a single measured value (" +
                                 common::shortest(*values.begin()) + "); table not written");
        return std::nullopt;
      }
    }
  }
  if (table.points_size() == 0) {
    f.report.notes.push_back("table " + name + ": no points left; not written");
    return std::nullopt;
  }
  if (!ignored_by_cost_model(name) && !accepted_by_cost_model(f, table)) return std::nullopt;
  std::string provenance = build.what + "; " + std::to_string(table.points_size()) +
                           (table.points_size() == 1 ? " point " : " points ") +
                           measured_on(f, build.sources);
  if (name == kInterferenceGemmTable) provenance += interference_detail(f);
  if (name == cost::kLossTable) {
    provenance += "; ranges measured: " + std::to_string(f.loss_forward) + " forward, " +
                  std::to_string(f.loss_backward) + " backward";
  }
  table.set_provenance(provenance);
  return table;
}

// An exact table: every point of its base table's measurements, sorted, a collective's
// artifacts dropped (those dropped from the base table already reported there); nullopt (with
// a note) when the cost model refuses it.
std::optional<spec::CalibratedTable> finish_exact(FitState& f, TableBuild& build,
                                                  const TableBuild& base) {
  spec::CalibratedTable& table = build.table;
  sort_points(table);
  if (table.key_names_size() == 2 && table.key_names(0) == "group_size")
    drop_artifacts(f, table, base.artifacts);
  if (!accepted_by_cost_model(f, table)) return std::nullopt;
  const std::string base_name = base.table.op();
  table.set_provenance(
      "the measured points of " + base_name +
      " at their exact keys (its grid's, and those of "
      "the bench's --points list where it had one: the models' exact shapes), for the cost "
      "model's exact lookup ahead of the grid; " +
      table_description(base_name) + "; " + std::to_string(table.points_size()) +
      (table.points_size() == 1 ? " point " : " points ") + measured_on(f, build.sources));
  return table;
}

// memory.norm: the points of memory.norm.fwd and memory.norm.bwd together, before them.
void add_merged_norm_table(FitState& f, std::vector<spec::CalibratedTable>& tables) {
  auto at = [&](std::string_view name) {
    return std::find_if(tables.begin(), tables.end(),
                        [&](const spec::CalibratedTable& t) { return t.op() == name; });
  };
  const auto forward = at(cost::kNormForwardTable);
  const auto backward = at(cost::kNormBackwardTable);
  if (forward == tables.end() || backward == tables.end()) return;
  spec::CalibratedTable merged = *forward;
  merged.set_op(std::string(cost::kNormTable));
  for (const auto& p : backward->points()) *merged.add_points() = p;
  auto& points = *merged.mutable_points();
  std::sort(points.begin(), points.end(),
            [](const spec::CalibratedPoint& a, const spec::CalibratedPoint& b) {
              return a.key(0) < b.key(0);
            });
  spec::Hardware hw = f.base_hw;
  hw.calibrated = {merged};
  try {
    cost::make_calibrated_cost_model(hw);
  } catch (const std::invalid_argument& e) {
    f.report.notes.push_back(std::string(e.what()) + "; table not written");
    return;
  }
  merged.set_provenance(
      "the points of memory.norm.fwd (bytes = 2 x the tensor) and "
      "memory.norm.bwd (bytes = 3 x the tensor) together, for a model that "
      "prices norms by bytes alone; the two kernels stream at different "
      "rates, so the times zigzag between forward and backward points. " +
      forward->provenance());
  tables.insert(forward, std::move(merged));
}

}  // namespace mpsim::calibration::fit
