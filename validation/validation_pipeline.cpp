// Validation's pipeline; see validation_pipeline.h.
#include "validation/validation_pipeline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "calibration/fit/op_points.h"
#include "calibration/runs/run_op_tables.h"
#include "profiler/analyze/run_measurement.h"
#include "simulator/simulation/simulation.h"
#include "simulator/spec/spec_loader.h"
#include "validation/side_by_side_trace.h"

namespace mpsim::validation {
namespace {

namespace fs = std::filesystem;

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) text += (text.empty() ? "" : " ") + w;
  return text;
}

// A configuration's measurement as stored in <runs>/<name>.json.
struct StoredRun {
  profiler::RunMeasurement run;
  std::vector<int64_t> rank_peak_memory_bytes;
  std::string flags;
};

StoredRun load_stored_run(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  nlohmann::json json;
  try {
    in >> json;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not JSON (" + e.what() + ")");
  }
  StoredRun stored;
  stored.run =
      profiler::run_measurement_from_json(json.value("measurement", nlohmann::json()), path);
  stored.flags = json.value("flags", std::string());
  // Runs stored before the executor had the fused core name no attention: they ran the unfused
  // one, and say so from here on.
  if (!stored.flags.empty() && stored.flags.find("--attention") == std::string::npos)
    stored.flags += " --attention unfused";
  stored.rank_peak_memory_bytes = json.value("rank_peak_memory_bytes", std::vector<int64_t>());
  return stored;
}

// Per rank, the largest of the log's rank_peak_memory_bytes over the measured iterations.
std::vector<int64_t> peak_memory_from_log(const std::string& path, int64_t warmup) {
  std::ifstream in(path);
  std::vector<int64_t> peaks;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("rank_peak_memory_bytes")) continue;
    if (j.value("iteration", int64_t{0}) <= warmup) continue;
    const auto ranks = j["rank_peak_memory_bytes"].get<std::vector<int64_t>>();
    if (peaks.size() < ranks.size()) peaks.resize(ranks.size(), 0);
    for (size_t r = 0; r < ranks.size(); ++r) peaks[r] = std::max(peaks[r], ranks[r]);
  }
  return peaks;
}

std::string stored_path(const ValidationSettings& settings, const ValidationCase& c) {
  return (fs::path(settings.runs) / (c.name + ".json")).string();
}

// Runs one configuration under the profiler and stores its measurement; returns an error text
// (empty on success).
std::string measure(const ValidationCase& c, const ValidationSettings& settings,
                    ValidationHost& host) {
  const std::string stem = (fs::path(settings.runs) / c.name).string();
  const std::string database = stem + ".sqlite";
  const std::string log = stem + ".log.jsonl";
  std::vector<std::string> train_flags = c.flags;
  train_flags.insert(train_flags.end(),
                     {"--steps", std::to_string(settings.warmup + settings.steps), "--log", log});
  fs::remove(log);
  const int status = host.run_profiled_training(c.name, train_flags, database, stem + ".stdout");
  const std::vector<std::string> databases = profiler::run_database_files(database);
  auto cleanup = [&] {
    if (!settings.keep_databases)
      for (const std::string& f : databases) fs::remove(f);
  };
  if (status != 0) {
    cleanup();
    return "the run failed (exit status " + std::to_string(status) + "; see " + stem + ".stdout)";
  }
  try {
    const profiler::RunMeasurement run =
        profiler::measure_run(profiler::read_run_traces(database), settings.warmup);
    nlohmann::json json;
    json["config"] = c.name;
    json["flags"] = joined(c.flags);
    json["rank_peak_memory_bytes"] = peak_memory_from_log(log, settings.warmup);
    json["measurement"] = profiler::to_json(run);
    host.write_file(stem + ".json", json.dump() + "\n", OutputFolder::kRuns);
  } catch (const std::exception& e) {
    cleanup();
    return std::string("cannot measure the run: ") + e.what();
  }
  cleanup();
  return {};
}

// Measures what has no measurement of the same flags; returns the stored runs read on the way
// (each read once), by configuration name.
std::map<std::string, StoredRun> measure_missing(const std::vector<ValidationCase>& cases,
                                                 const ValidationSettings& settings,
                                                 ValidationHost& host,
                                                 std::vector<std::string>* failures) {
  std::map<std::string, StoredRun> kept;
  if (settings.report_only) return kept;
  for (const ValidationCase& c : cases) {
    const std::string stored = stored_path(settings, c);
    if (fs::exists(stored) && !settings.remeasure) {
      try {
        StoredRun run = load_stored_run(stored);
        if (run.flags == joined(c.flags)) {
          kept.emplace(c.name, std::move(run));
          continue;
        }
        host.note(stored + " measured other flags; measuring again");
      } catch (const std::exception& e) {
        host.note(e.what());
      }
    }
    if (const std::string error = measure(c, settings, host); !error.empty()) {
      failures->push_back(c.name + ": " + error);
      host.note(c.name + ": " + error);
    }
  }
  return kept;
}

// A configuration ready to compare: its measurement and its prediction.
struct Prepared {
  const ValidationCase* config = nullptr;
  StoredRun stored;
  spec::ModelSpec model;
  spec::ParallelConfig parallel;
  report::SimulationResult result;  // with the profile alone
  std::unique_ptr<simulation::SimulationDetail> detail;
};

report::SimulationResult simulate_detailed(const Prepared& p, const spec::Hardware& hardware,
                                           simulation::SimulationDetail* detail) {
  simulation::SimulateOptions options;
  options.scope = simulation::RankScope::kAllRanks;
  options.loss_memory = memory::LossMemory::kBf16Logits;  // what the executor's loss keeps
  options.detail = detail;
  return simulation::simulate(p.model, hardware, p.parallel, options);
}

// Every configuration with a measurement of its flags, simulated with the profile alone.
std::vector<Prepared> predict(const std::vector<ValidationCase>& cases,
                              const ValidationSettings& settings, const spec::Hardware& hardware,
                              std::map<std::string, StoredRun>* kept,
                              std::vector<std::string>* failures) {
  std::vector<Prepared> prepared;
  for (const ValidationCase& c : cases) {
    const std::string stored = stored_path(settings, c);
    Prepared p;
    p.config = &c;
    if (auto it = kept->find(c.name); it != kept->end()) {
      p.stored = std::move(it->second);
    } else if (!fs::exists(stored)) {
      if (settings.report_only) failures->push_back(c.name + ": no measurement " + stored);
      continue;
    } else {
      try {
        p.stored = load_stored_run(stored);
      } catch (const std::exception& e) {
        failures->push_back(c.name + ": " + e.what());
        continue;
      }
    }
    if (p.stored.flags != joined(c.flags)) {
      failures->push_back(c.name + ": " + stored + " measured other flags (" + p.stored.flags +
                          ")");
      continue;
    }
    p.model = spec::load_model_spec(c.model);
    if (c.fp8) p.model.set_dtype(spec::FP8);
    p.model.set_dropout(0);  // the executor has no dropout
    p.parallel = spec::validate_parallel_config(c.parallel, p.model, hardware);
    p.detail = std::make_unique<simulation::SimulationDetail>();
    p.result = simulate_detailed(p, hardware, p.detail.get());
    prepared.push_back(std::move(p));
  }
  return prepared;
}

// Leave one out: per configuration, the iteration time predicted with the profile plus the op
// tables learned from every other run (none with fewer than two runs).
std::vector<std::optional<double>> leave_one_out(const std::vector<Prepared>& prepared,
                                                 const spec::HardwareProfile& profile,
                                                 const std::string& hardware_name) {
  std::vector<std::optional<double>> loo(prepared.size());
  if (prepared.size() < 2) return loo;
  std::vector<std::vector<spec::CalibratedTable>> learned;
  for (const Prepared& p : prepared) {
    const std::string provenance = "learned from the run of `mpsim train " + p.stored.flags +
                                   "` (" + p.stored.run.gpu + ", " + p.stored.run.date + ")";
    learned.push_back(calibration::learn_op_tables(
        p.detail->graph, calibration::measured_seconds_by_graph_rank(p.detail->graph, p.stored.run),
        provenance, nullptr));
  }
  for (size_t i = 0; i < prepared.size(); ++i) {
    spec::HardwareProfile merged = profile;
    for (size_t j = 0; j < prepared.size(); ++j)
      if (j != i) calibration::merge_exact_tables(&merged, learned[j]);
    const spec::Hardware loo_hardware = spec::to_hardware(merged, hardware_name + " + runs");
    loo[i] = simulate_detailed(prepared[i], loo_hardware, nullptr).iteration_time_s;
  }
  return loo;
}

// What the report says besides its rows: machines, dates, profile, commands and notes.
ReportContext report_context(const std::vector<Prepared>& prepared,
                             const spec::HardwareProfile& profile,
                             const ValidationSettings& settings,
                             const std::vector<std::string>& failures) {
  ReportContext context;
  std::set<std::string> machines, dates;
  for (const Prepared& p : prepared) {
    machines.insert(p.stored.run.gpu + " (host " + p.stored.run.hostname + ")");
    dates.insert(p.stored.run.date);
  }
  for (const std::string& m : machines)
    context.machine += (context.machine.empty() ? "" : "; ") + m;
  for (const std::string& d : dates) context.date += (context.date.empty() ? "" : ", ") + d;
  context.profile = settings.hardware + " (" + profile.name() + ")";
  context.profile_provenance = profile.provenance();
  context.commands.push_back(settings.command);
  for (const Prepared& p : prepared)
    context.commands.push_back("# " + p.config->name + ": " + p.stored.run.command);
  // The note names the header by its path before calibration/ existed (now
  // calibration/fit/op_points.h); the committed reports carry that text.
  context.notes.push_back(
      "Leave-one-out: for each configuration the profile is extended with the op times learned "
      "from the profiled runs of all other configurations (exact-shape tables, "
      "profiler/calibrate/op_points.h); no measurement of the configuration itself enters its "
      "prediction. The microbenchmark row uses the profile alone. The simulation is of the "
      "executor's implementation: no dropout (every model is simulated with dropout 0), and a "
      "cross entropy that keeps the bf16 logits for the backward pass (Megatron-LM keeps them in "
      "fp32, the simulator's default).");
  for (const std::string& f : failures) context.notes.push_back("Not reported: " + f + ".");
  return context;
}

}  // namespace

ValidationOutcome run_validation(const std::vector<ValidationCase>& cases,
                                 const ValidationSettings& settings, ValidationHost& host) {
  const spec::HardwareProfile profile = spec::load_hardware_profile(settings.hardware);
  const spec::Hardware hardware = spec::to_hardware(profile, settings.hardware);
  fs::create_directories(settings.runs);
  fs::create_directories(fs::path(settings.out) / "traces");

  ValidationOutcome outcome;
  std::map<std::string, StoredRun> kept = measure_missing(cases, settings, host, &outcome.failures);
  const std::vector<Prepared> prepared =
      predict(cases, settings, hardware, &kept, &outcome.failures);
  const std::vector<std::optional<double>> loo =
      settings.leave_one_out ? leave_one_out(prepared, profile, settings.hardware)
                             : std::vector<std::optional<double>>(prepared.size());

  // Compare, one side-by-side trace per configuration, then the report.
  for (size_t i = 0; i < prepared.size(); ++i) {
    const Prepared& p = prepared[i];
    ConfigComparison row;
    try {
      row = compare_configuration(p.config->name, joined(p.config->flags), p.stored.run,
                                  p.stored.rank_peak_memory_bytes, p.result, *p.detail);
    } catch (const std::invalid_argument& e) {
      outcome.failures.push_back(p.config->name + ": " + e.what());
      continue;
    }
    row.predicted_loo_iteration_s = loo[i];
    write_side_by_side_trace(
        (fs::path(settings.out) / "traces" / (p.config->name + ".json")).string(), row,
        p.stored.run, *p.detail);
    outcome.rows.push_back(std::move(row));
  }
  const ReportContext context = report_context(prepared, profile, settings, outcome.failures);
  outcome.report_path = (fs::path(settings.out) / "report.md").string();
  host.write_file(outcome.report_path, markdown_report(outcome.rows, context), OutputFolder::kOut);
  host.write_file((fs::path(settings.out) / "results.csv").string(), csv_report(outcome.rows),
                  OutputFolder::kOut);
  return outcome;
}

}  // namespace mpsim::validation
