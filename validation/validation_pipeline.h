// Validation's pipeline: predicted against measured, configuration by configuration, from the
// list of configurations to the written report.
//
// For each configuration, unless `report_only`, or a measurement of the same flags exists in
// `runs` (and no `remeasure`): the caller's host runs `mpsim train <flags> --steps W+S --log
// <runs>/<name>.log.jsonl` under the profiler into <runs>/<name>.sqlite (stdout to
// <runs>/<name>.stdout); the pipeline measures the databases (profiler/analyze/run_measurement.h)
// and stores <runs>/<name>.json: the measurement, the flags and the per-rank peak memory of the
// measured iterations from the log. The databases are removed unless `keep_databases`. A run
// that fails is reported as failed and the others go on. Then every measured configuration is
// simulated with every GPU twice: with the hardware profile alone (microbenchmarks only), and,
// with `leave_one_out`, with the profile plus the exact op tables learned from the *other*
// configurations' runs (leave one out: no measurement of a configuration enters its own
// prediction; calibration/fit/op_points.h). It simulates the executor's implementation: no
// dropout (the model is simulated with dropout 0) and a cross entropy that keeps the bf16 logits
// (memory::LossMemory::kBf16Logits), not Megatron's fp32 ones. The comparison
// (validation/comparison.h) of every configuration goes to <out>/report.md, <out>/results.csv
// and <out>/traces/<name>.json.
//
// Starting child processes and writing files are the caller's (ValidationHost); this library
// decides what runs, what is measured, predicted, compared and written, and knows no flag names.
//
// Failure: a hardware profile or a model spec that does not load throws spec::SpecError; a layout
// the model or hardware rejects throws what spec::validate_parallel_config() throws; the host's
// exceptions propagate. A run that fails, a measurement that is missing (under `report_only`),
// unreadable or of other flags, and a configuration the comparison refuses are not exceptions:
// they are listed in ValidationOutcome::failures and in the report's notes, and the others are
// still reported.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "simulator/spec/parallel_config.pb.h"
#include "validation/validation_report.h"

namespace mpsim::validation {

// One configuration of the list, already parsed by the caller.
struct ValidationCase {
  std::string name;                // unique in the list; names the files of its run and trace
  std::vector<std::string> flags;  // the `mpsim train` flags as written (stored with the run)
  std::string model;               // a name in models/ or a path to a ModelSpec textproto
  spec::ParallelConfig parallel;   // the layout the flags ask for (validated here)
  bool fp8 = false;                // --fp8: the model is simulated with the FP8 recipe
};

struct ValidationSettings {
  std::string hardware;      // a name in hw_profiles/ or a path: calibrated by microbenchmarks only
  std::string out;           // report.md, results.csv, traces/<name>.json (created when missing)
  std::string runs;          // measurements <name>.json (created when missing)
  int64_t warmup = 2;        // iterations excluded from a measurement
  int64_t steps = 4;         // measured iterations
  bool report_only = false;  // never run anything: report the measurements in `runs`
  bool remeasure = false;    // run even where a measurement of the same flags exists
  bool keep_databases = false;  // keep each run's profiled databases
  bool leave_one_out = true;    // the second prediction, from the other runs' op times
  std::string command;          // the command that asked for the report, as the report shows it
};

// The folders the pipeline writes into, for the host to name them in its errors.
enum class OutputFolder { kRuns, kOut };

// What the pipeline needs from its caller.
class ValidationHost {
 public:
  virtual ~ValidationHost() = default;
  // Runs `mpsim train <train_flags>` under the profiler, one database per rank named after
  // `database` (as `mpsim profile -o database` names them), with its stdout to `stdout_path`;
  // returns the exit status (non-zero: the run failed). `config` names the configuration.
  virtual int run_profiled_training(const std::string& config,
                                    const std::vector<std::string>& train_flags,
                                    const std::string& database,
                                    const std::string& stdout_path) = 0;
  // Writes `text` to `path`, inside `folder`, so that nothing is left half written; throws when
  // it cannot.
  virtual void write_file(const std::string& path, const std::string& text,
                          OutputFolder folder) = 0;
  // One line of progress or of a problem the pipeline goes on after, for the user.
  virtual void note(const std::string& line) = 0;
};

struct ValidationOutcome {
  std::vector<ConfigComparison> rows;  // the configurations reported, in the list's order
  std::vector<std::string> failures;   // "<name>: <what>" for each configuration not reported
  std::string report_path;             // <out>/report.md
};

ValidationOutcome run_validation(const std::vector<ValidationCase>& cases,
                                 const ValidationSettings& settings, ValidationHost& host);

}  // namespace mpsim::validation
