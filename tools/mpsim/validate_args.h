// Flags of `mpsim validate` and its configuration list, parsed by pure functions:
//   mpsim validate --configs FILE --hw PROFILE [--out DIR] [--runs DIR] [--only A,B]
//                  [--warmup W] [--steps S] [--report-only] [--remeasure] [--keep-databases]
//
// The configuration list (e.g. docs/validation/configs.txt): one configuration per line,
//   <name> <mpsim train flags...>
// e.g. `tp2-sp  --model gpt2-355m --gpus 2 --tp 2 --sp --mbs 4 --gbs 16`. Blank lines and
// lines starting with '#' are skipped. Names are unique, of letters, digits, '.', '_', '-'.
// The flags are `mpsim train`'s (train_args.h); --steps, --log and --dry-run are validate's to
// set and are refused in the list.
//
// Errors: parse_validate_args() throws spec::FlagError naming the flag; parse_validation_configs()
// throws spec::SpecError "<file>:<line>: ..." naming the configuration and, for a bad train flag,
// the flag as typed.
#pragma once

#include <string>
#include <vector>

#include "tools/mpsim/train_args.h"

namespace mpsim::cli {

struct ValidateRequest {
  bool help = false;
  std::string configs;                  // --configs FILE
  std::string hw;                       // --hw: the microbenchmark-calibrated profile
  std::string out = "docs/validation";  // --out: report.md, results.csv, traces/
  std::string runs;                     // --runs: measurements (default <out>/runs)
  std::vector<std::string> only;        // --only: names to run and report (default: all)
  int64_t warmup = 2;                   // --warmup: iterations excluded
  int64_t steps = 4;                    // --steps: measured iterations
  bool report_only = false;             // --report-only: never run the executor
  bool remeasure = false;               // --remeasure: run even where a measurement exists
  bool keep_databases = false;          // --keep-databases: keep the profiled SQLite files
  bool leave_one_out = true;            // --no-leave-one-out: skip the second prediction
};

ValidateRequest parse_validate_args(const std::vector<std::string>& args);
std::string validate_help();

struct ValidationConfig {
  std::string name;
  std::vector<std::string> flags;  // the train flags as written
  int line = 0;
  TrainRequest request;  // the flags parsed
};

std::vector<ValidationConfig> parse_validation_configs(const std::string& text,
                                                       const std::string& file_for_errors);

}  // namespace mpsim::cli
