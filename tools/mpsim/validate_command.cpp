// `mpsim validate`; see validate_command.h.
#include "tools/mpsim/validate_command.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "profiler/analyze/run_measurement.h"
#include "profiler/calibrate/op_points.h"
#include "simulator/cost/cost_model.h"
#include "simulator/graph/op_name.h"
#include "simulator/simulation/simulation.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"
#include "tools/mpsim/child_process.h"
#include "tools/mpsim/file_output.h"
#include "tools/mpsim/run_op_tables.h"
#include "tools/mpsim/validate_args.h"
#include "validation/side_by_side_trace.h"
#include "validation/validation_report.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) throw spec::FlagError(flag, "cannot read '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

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

// Runs one configuration under the profiler and stores its measurement; returns an error text
// (empty on success).
std::string measure(const ValidationConfig& c, const ValidateRequest& request, std::ostream& err) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string stem = (fs::path(request.runs) / c.name).string();
  const std::string database = stem + ".sqlite";
  const std::string log = stem + ".log.jsonl";
  std::vector<std::string> argv = {self, "profile", "-o", database, "--", self, "train"};
  argv.insert(argv.end(), c.flags.begin(), c.flags.end());
  argv.insert(argv.end(),
              {"--steps", std::to_string(request.warmup + request.steps), "--log", log});
  err << "mpsim validate: " << c.name << ": " << command_line(argv) << "\n" << std::flush;
  fs::remove(log);
  const int status = run_with_stdout(argv, stem + ".stdout");
  const std::vector<std::string> databases = profiler::run_database_files(database);
  auto cleanup = [&] {
    if (!request.keep_databases)
      for (const std::string& f : databases) fs::remove(f);
  };
  if (status != 0) {
    cleanup();
    return "the run failed (exit status " + std::to_string(status) + "; see " + stem + ".stdout)";
  }
  try {
    const profiler::RunMeasurement run =
        profiler::measure_run(profiler::read_run_traces(database), request.warmup);
    nlohmann::json json;
    json["config"] = c.name;
    json["flags"] = joined(c.flags);
    json["rank_peak_memory_bytes"] = peak_memory_from_log(log, request.warmup);
    json["measurement"] = profiler::to_json(run);
    write_atomically(stem + ".json", json.dump() + "\n", "--runs");
  } catch (const std::exception& e) {
    cleanup();
    return std::string("cannot measure the run: ") + e.what();
  }
  cleanup();
  return {};
}

// A configuration ready to simulate.
struct Prepared {
  const ValidationConfig* config = nullptr;
  StoredRun stored;
  spec::ModelSpec model;
  spec::ParallelConfig parallel;
  report::SimulationResult result;  // with --hw
  std::unique_ptr<report::SimulationDetail> detail;
};

report::SimulationResult simulate_detailed(const Prepared& p, const spec::Hardware& hardware,
                                           report::SimulationDetail* detail) {
  report::SimulateOptions options;
  options.scope = report::RankScope::kAllRanks;
  options.loss_memory = memory::LossMemory::kBf16Logits;  // what the executor's loss keeps
  options.detail = detail;
  return report::simulate(p.model, hardware, p.parallel, options);
}

}  // namespace

int run_validate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const ValidateRequest request = parse_validate_args(args);
  if (request.help) {
    out << validate_help();
    return 0;
  }
  std::vector<ValidationConfig> configs =
      parse_validation_configs(read_text(request.configs, "--configs"), request.configs);
  if (!request.only.empty()) {
    std::set<std::string> known;
    for (const ValidationConfig& c : configs) known.insert(c.name);
    for (const std::string& name : request.only)
      if (!known.count(name))
        throw spec::FlagError("--only", "'" + name + "' is not in " + request.configs);
    std::erase_if(configs, [&](const ValidationConfig& c) {
      return std::find(request.only.begin(), request.only.end(), c.name) == request.only.end();
    });
  }
  const spec::HardwareProfile profile = spec::load_hardware_profile(request.hw);
  const spec::Hardware hardware = spec::to_hardware(profile, request.hw);
  fs::create_directories(request.runs);
  fs::create_directories(fs::path(request.out) / "traces");

  // Measure what has no measurement of the same flags (each stored run read once, kept).
  std::vector<std::string> failures;
  std::map<std::string, StoredRun> kept;  // by configuration name
  for (const ValidationConfig& c : configs) {
    if (request.report_only) break;
    const std::string stored = (fs::path(request.runs) / (c.name + ".json")).string();
    if (fs::exists(stored) && !request.remeasure) {
      try {
        StoredRun run = load_stored_run(stored);
        if (run.flags == joined(c.flags)) {
          kept.emplace(c.name, std::move(run));
          continue;
        }
        err << "mpsim validate: " << stored << " measured other flags; measuring again\n";
      } catch (const std::exception& e) {
        err << "mpsim validate: " << e.what() << "\n";
      }
    }
    if (const std::string error = measure(c, request, err); !error.empty()) {
      failures.push_back(c.name + ": " + error);
      err << "mpsim validate: " << c.name << ": " << error << "\n";
    }
  }

  // Predict.
  std::vector<Prepared> prepared;
  for (const ValidationConfig& c : configs) {
    const std::string stored = (fs::path(request.runs) / (c.name + ".json")).string();
    Prepared p;
    p.config = &c;
    if (auto it = kept.find(c.name); it != kept.end()) {
      p.stored = std::move(it->second);
    } else if (!fs::exists(stored)) {
      if (request.report_only) failures.push_back(c.name + ": no measurement " + stored);
      continue;
    } else {
      try {
        p.stored = load_stored_run(stored);
      } catch (const std::exception& e) {
        failures.push_back(c.name + ": " + e.what());
        continue;
      }
    }
    if (p.stored.flags != joined(c.flags)) {
      failures.push_back(c.name + ": " + stored + " measured other flags (" + p.stored.flags + ")");
      continue;
    }
    p.model = spec::load_model_spec(c.request.model);
    p.model.set_dropout(0);  // the executor has no dropout
    p.parallel = spec::validate_parallel_config(c.request.options.config, p.model, hardware);
    p.detail = std::make_unique<report::SimulationDetail>();
    p.result = simulate_detailed(p, hardware, p.detail.get());
    prepared.push_back(std::move(p));
  }

  // Leave one out: the profile plus the op tables learned from every other run.
  std::vector<std::optional<double>> loo(prepared.size());
  std::vector<std::string> notes;
  if (request.leave_one_out && prepared.size() > 1) {
    std::vector<std::vector<spec::CalibratedTable>> learned;
    for (const Prepared& p : prepared) {
      const std::string provenance = "learned from the run of `mpsim train " + p.stored.flags +
                                     "` (" + p.stored.run.gpu + ", " + p.stored.run.date + ")";
      learned.push_back(profiler::learn_op_tables(
          p.detail->graph, measured_seconds_by_graph_rank(p.detail->graph, p.stored.run),
          provenance, nullptr));
    }
    for (size_t i = 0; i < prepared.size(); ++i) {
      spec::HardwareProfile merged = profile;
      for (size_t j = 0; j < prepared.size(); ++j)
        if (j != i) profiler::merge_exact_tables(&merged, learned[j]);
      const spec::Hardware loo_hardware = spec::to_hardware(merged, request.hw + " + runs");
      loo[i] = simulate_detailed(prepared[i], loo_hardware, nullptr).iteration_time_s;
    }
  }

  // Compare and write.
  std::vector<validation::ConfigComparison> rows;
  for (size_t i = 0; i < prepared.size(); ++i) {
    const Prepared& p = prepared[i];
    validation::ConfigComparison row;
    try {
      row = validation::compare_configuration(p.config->name, joined(p.config->flags), p.stored.run,
                                              p.stored.rank_peak_memory_bytes, p.result, *p.detail);
    } catch (const std::invalid_argument& e) {
      failures.push_back(p.config->name + ": " + e.what());
      continue;
    }
    row.predicted_loo_iteration_s = loo[i];
    validation::write_side_by_side_trace(
        (fs::path(request.out) / "traces" / (p.config->name + ".json")).string(), row, p.stored.run,
        *p.detail);
    rows.push_back(std::move(row));
  }
  validation::ReportContext context;
  std::set<std::string> machines, dates;
  for (const Prepared& p : prepared) {
    machines.insert(p.stored.run.gpu + " (host " + p.stored.run.hostname + ")");
    dates.insert(p.stored.run.date);
  }
  for (const std::string& m : machines)
    context.machine += (context.machine.empty() ? "" : "; ") + m;
  for (const std::string& d : dates) context.date += (context.date.empty() ? "" : ", ") + d;
  context.profile = request.hw + " (" + profile.name() + ")";
  context.profile_provenance = profile.provenance();
  context.commands.push_back("mpsim validate " + command_line(args));
  for (const Prepared& p : prepared) {
    std::string cmd = p.stored.run.command;
    context.commands.push_back("# " + p.config->name + ": " + cmd);
  }
  context.notes.push_back(
      "Leave-one-out: for each configuration the profile is extended with the op times learned "
      "from the profiled runs of all other configurations (exact-shape tables, "
      "profiler/calibrate/op_points.h); no measurement of the configuration itself enters its "
      "prediction. The microbenchmark row uses the profile alone. The simulation is of the "
      "executor's implementation: no dropout (every model is simulated with dropout 0), and a "
      "cross entropy that keeps the bf16 logits for the backward pass (Megatron-LM keeps them in "
      "fp32, the simulator's default).");
  for (const std::string& f : failures) context.notes.push_back("Not reported: " + f + ".");
  write_atomically((fs::path(request.out) / "report.md").string(),
                   validation::markdown_report(rows, context), "--out");
  write_atomically((fs::path(request.out) / "results.csv").string(), validation::csv_report(rows),
                   "--out");
  const validation::ErrorSummary s = validation::iteration_summary(rows);
  out << "validated " << rows.size() << " configurations: iteration time MAPE " << 100 * s.mape
      << " %, worst " << 100 * s.worst << " % (" << s.worst_config << ")";
  if (const auto l = validation::loo_iteration_summary(rows))
    out << "; leave-one-out MAPE " << 100 * l->mape << " %, worst " << 100 * l->worst << " %";
  out << "\nreport: " << (fs::path(request.out) / "report.md").string() << "\n";
  for (const std::string& f : failures) err << "mpsim validate: not reported: " << f << "\n";
  return failures.empty() ? 0 : 1;
}

}  // namespace mpsim::cli
