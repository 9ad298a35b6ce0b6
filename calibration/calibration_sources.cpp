// See calibration_sources.h.
#include "calibration/calibration_sources.h"

#include "calibration/fit/op_points.h"
#include "calibration/runs/run_op_tables.h"
#include "simulator/spec/spec_error.h"

namespace mpsim::calibration {

CalibrationSources classify_sources(const std::vector<std::string>& paths) {
  CalibrationSources sources;
  for (const std::string& db : paths) {
    if (profiler::run_database_files(db).empty())
      throw spec::SpecError(
          db, 0, "",
          "no such file, nor per-rank files " + profiler::rank_path(db, 0, 0) + ", ... (--from)");
    (is_executor_run(profiler::read_run_traces(db)) ? sources.runs : sources.databases)
        .push_back(db);
  }
  return sources;
}

spec::HardwareProfile profile_from_sources(const CalibrationSources& sources,
                                           const spec::HardwareProfile& base,
                                           const calibration::CalibrationInfo& info,
                                           const RunConfigFallback& fallback,
                                           calibration::CalibrationReport* report) {
  spec::HardwareProfile profile = base;
  if (!sources.databases.empty()) {
    profile = calibration::calibrate_from_traces(sources.databases, base, info, report);
  } else {
    profile.set_name(info.profile_name.empty() ? base.name() + "-runs" : info.profile_name);
  }
  for (const std::string& run_path : sources.runs) {
    std::vector<std::string> notes;
    const std::vector<profiler::RankTrace> traces = profiler::read_run_traces(run_path);
    const profiler::RunMeasurement run = profiler::measure_run(traces, kRunWarmup);
    const std::optional<RunConfig> marked = run_config_from_traces(traces, run_path);
    const RunConfig config = marked ? *marked : fallback(run, run_path);
    calibration::merge_exact_tables(&profile, op_tables_from_run(run, config, run_path, &notes));
    for (const std::string& note : notes) report->notes.push_back(run_path + ": " + note);
    report->sources.push_back(run_path + ": executor run on " + run.gpu + " (host " + run.hostname +
                              "), recorded " + run.date + " by `" + run.command + "`");
  }
  if (!sources.runs.empty() && sources.databases.empty())
    profile.set_provenance(base.provenance() + "; exact-shape op tables learned from " +
                           std::to_string(sources.runs.size()) + " profiled executor run(s) by `" +
                           info.command + "` on " + info.date);
  return profile;
}

}  // namespace mpsim::calibration
