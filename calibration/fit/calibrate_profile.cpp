// Fitting calibration measurements into a HardwareProfile; what is fitted, and how, is in
// calibrate_profile.h.
#include "calibration/fit/calibrate_profile.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>

#include "calibration/fit/fit_state.h"
#include "common/text.h"
#include "simulator/cost/calibrated_cost.h"
#include "simulator/cost/calibrated_tables.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::calibration {
namespace {

using namespace fit;

// "1 x NVIDIA H100 80GB HBM3 (host vm) on 2026-11-26, traces/calibration/h100.rank0.sqlite"
std::string source_text(FitState& f, int64_t index) {
  const CalibrationSource& s = f.data.sources.at(static_cast<std::size_t>(index));
  return s.gpu_summary() + (s.hostname.empty() ? "" : " (host " + s.hostname + ")") + " on " +
         s.date + ", database " + s.path +
         (s.command.empty() ? "" : ", profiled command `" + s.command + "`") + ", " +
         versions_text(s.versions);
}
std::string sources_text(FitState& f) {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < f.data.sources.size(); ++i) {
    parts.push_back(source_text(f, static_cast<int64_t>(i)));
  }
  return common::join(parts, "; ");
}

// The fit: every table built, checked and placed in order, the numbers fitted, the provenance
// written, and the whole profile checked by the cost model.
spec::HardwareProfile run_fit(FitState& f) {
  for (const CalibrationMeasurement& m : f.data.measurements) add_measurement(f, m);
  std::vector<spec::CalibratedTable> tables;
  for (std::string_view name : table_order()) {
    // Made below from the tables they combine.
    if (name == cost::kGemmTable || name == cost::kNormTable) continue;
    auto it = f.builds.find(std::string(name));
    if (it == f.builds.end()) continue;
    if (auto table = finish(f, it->second)) tables.push_back(std::move(*table));
    // Its exact table right after it (written even where the grid table is not).
    auto exact = f.builds.find(cost::exact_table_name(name));
    if (exact == f.builds.end()) continue;
    if (auto table = finish_exact(f, exact->second, it->second))
      tables.push_back(std::move(*table));
  }
  for (auto& [name, build] : f.builds) {
    if (name.ends_with(cost::kExactTableSuffix)) continue;  // placed with their base
    if (std::find(table_order().begin(), table_order().end(), name) == table_order().end()) {
      throw std::logic_error("calibration: table " + name + " has no place in the order");
    }
  }
  if (tables.empty()) {
    throw CalibrationError(
        "no calibrated table could be built from " + sources_text(f) +
        (f.report.notes.empty() ? "" : ": " + common::join(f.report.notes, "; ")));
  }
  // gemm.bf16: the fwd table, the default for GEMMs of any layout without their own table.
  for (std::size_t i = 0; i < tables.size(); ++i) {
    if (tables[i].op() != cost::kGemmForwardTable) continue;
    spec::CalibratedTable copy = tables[i];
    copy.set_op(std::string(cost::kGemmTable));
    copy.set_provenance(
        "a copy of gemm.bf16.fwd, the default for GEMMs of a layout without its "
        "own table; " +
        tables[i].provenance());
    tables.insert(tables.begin() + static_cast<std::ptrdiff_t>(i), std::move(copy));
    break;
  }
  add_merged_norm_table(f, tables);

  spec::HardwareProfile profile = f.base;
  profile.set_name(f.info.profile_name.empty() ? f.base.name() + "-measured" : f.info.profile_name);
  if (profile.calibrated_size() > 0) {
    f.report.notes.push_back("the base profile's " + std::to_string(profile.calibrated_size()) +
                             " calibrated table(s) are replaced");
    profile.clear_calibrated();
  }
  for (spec::CalibratedTable& t : tables) *profile.add_calibrated() = std::move(t);
  std::vector<std::string> replaced = fit_efficiencies(f, profile);
  fit_nvlink(f, profile, replaced);
  std::vector<std::string> table_names;
  for (const spec::CalibratedTable& t : profile.calibrated()) table_names.push_back(t.op());
  profile.set_provenance(
      "calibrated " + (f.info.date.empty() ? today_utc() : f.info.date) +
      (f.info.command.empty() ? "" : " by `" + f.info.command + "`") + " from measurements on " +
      sources_text(f) + ": tables " + common::join(table_names, ", ") +
      (replaced.empty() ? "" : "; fitted from them: " + common::join(replaced, ", ")) +
      ". Compute peaks, HBM bandwidth and capacity, kernel launch overhead, gemm_half_dim and "
      "the network remain the base profile's datasheet or assumed values (base '" +
      f.base.name() + "': " + f.base.provenance() + ")");

  // The whole profile must convert and be accepted by the cost model.
  try {
    const spec::Hardware hw = spec::to_hardware(profile, "calibrated profile");
    cost::make_calibrated_cost_model(hw);
  } catch (const std::exception& e) {
    throw CalibrationError(std::string("internal error: the calibrated profile is refused: ") +
                           e.what());
  }
  return profile;
}

}  // namespace

namespace fit {

bool ignored_by_cost_model(std::string_view name) {
  return name == kInterferenceGemmTable || name == kSoftmaxTable;
}

double significant(double x, int digits) {
  if (!(x > 0)) return x;
  const double scale = std::pow(10.0, digits - 1 - static_cast<int>(std::floor(std::log10(x))));
  return std::round(x * scale) / scale;
}

std::string keys_text(const spec::CalibratedTable& table, const spec::CalibratedPoint& p) {
  std::string text;
  for (int d = 0; d < p.key_size() && d < table.key_names_size(); ++d) {
    text += (d ? ", " : "") + table.key_names(d) + "=" + common::shortest(p.key(d));
  }
  return text;
}

}  // namespace fit

spec::HardwareProfile calibrate_profile(const CalibrationData& data,
                                        const spec::HardwareProfile& base,
                                        const CalibrationInfo& info, CalibrationReport* report) {
  CalibrationReport local;
  CalibrationReport& out = report ? *report : local;
  out.notes.insert(out.notes.end(), data.notes.begin(), data.notes.end());
  for (const CalibrationSource& source : data.sources) {
    out.sources.push_back(source.path + ": " + source.gpu_summary() +
                          (source.hostname.empty() ? "" : " (host " + source.hostname + ")") +
                          ", recorded " + source.date +
                          (source.command.empty() ? "" : " by `" + source.command + "`") + "; " +
                          versions_text(source.versions));
  }
  FitState f{data, base, info, out, spec::to_hardware(base, "base profile '" + base.name() + "'"),
             {},   {},   0,    0};
  return run_fit(f);
}

spec::HardwareProfile calibrate_from_traces(const std::vector<std::string>& databases,
                                            const spec::HardwareProfile& base,
                                            const CalibrationInfo& info,
                                            CalibrationReport* report) {
  if (databases.empty()) throw CalibrationError("no database to calibrate from");
  return calibrate_profile(read_calibration_data(databases), base, info, report);
}

std::string today_utc() { return profiler::utc_date(int64_t{std::time(nullptr)} * 1000000000); }

}  // namespace mpsim::calibration
