// A hardware profile from everything `mpsim calibrate` was given: calibration databases (the
// bench's measurements, fitted by calibration/fit/calibrate_profile.h) and profiled executor runs
// (their op times learned as exact-shape tables, calibration/runs/run_op_tables.h), merged into
// one profile on a base profile, with one report of what was fitted, learned and dropped.
//
// A run's model and configuration come from its run mark (calibration/runs/run_config.h); for a
// database recorded before runs carried one, from `fallback`, which the command gives (it rebuilds
// them from the run's command line, the only place that knows `mpsim train`'s flags).
//
// Failure: classify_sources throws spec::SpecError naming a path that is neither a database nor
// the stem of per-rank databases. profile_from_sources throws CalibrationError from the fit
// (calibrate_profile.h), std::invalid_argument naming the run for a run without iterations to
// measure or with a broken run mark, and whatever `fallback` throws for a run without a mark.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "calibration/fit/calibrate_profile.h"
#include "calibration/runs/run_config.h"
#include "profiler/analyze/run_measurement.h"
#include "simulator/spec/hardware_profile.pb.h"

namespace mpsim::calibration {

// Iterations excluded from a profiled executor run's op times (its first: cuBLAS heuristics,
// NCCL connections, allocator growth).
inline constexpr int64_t kRunWarmup = 1;

struct CalibrationSources {
  std::vector<std::string> databases;  // calibration databases, fitted
  std::vector<std::string> runs;       // profiled executor runs, learned from
};

// Sorts the paths given (each a database or the stem of per-rank databases) into the two kinds.
CalibrationSources classify_sources(const std::vector<std::string>& paths);

// The configuration of a run whose databases hold no run mark.
using RunConfigFallback =
    std::function<RunConfig(const profiler::RunMeasurement& run, const std::string& source)>;

// The base with the databases' fitted tables (when there are databases; else the base renamed
// "<info.profile_name or base name-runs>") and every run's op tables merged in. Sources, notes and
// fitted numbers go to `report`.
spec::HardwareProfile profile_from_sources(const CalibrationSources& sources,
                                           const spec::HardwareProfile& base,
                                           const calibration::CalibrationInfo& info,
                                           const RunConfigFallback& fallback,
                                           calibration::CalibrationReport* report);

}  // namespace mpsim::calibration
