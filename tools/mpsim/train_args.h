// Flags of `mpsim train`, parsed into a TrainRequest by a pure function (no I/O, no spec loading)
// so every flag, default and error message is unit-tested.
//
// parse_train_args() throws spec::FlagError naming the flag as typed ("--lr") for an unknown flag,
// a missing, non-numeric or out-of-range value, a value outside the allowed set, a flag given
// twice, or flags that conflict (--data with --synthetic, --sp with --tp 1, --min-lr above --lr).
// Constraints that need the model (heads divisible by TP, GPUs = TP x PP x DP, ...) are left to
// spec::validate_parallel_config(); whether --data exists is checked by the command.
#pragma once

#include <string>
#include <vector>

#include "executor/core/train_options.h"

namespace mpsim::cli {

// The default corpus, relative to the data folders (see train_command.h).
inline constexpr const char* kDefaultTrainData = "data/shakespeare.txt";

struct TrainRequest {
  bool help = false;                // --help: print train_help() and do nothing else
  bool dry_run = false;             // --dry-run: start the ranks and rendezvous, no GPU work
  std::string model = "gpt2-124m";  // a name in models/ or a path to a ModelSpec textproto
  bool fp8 = false;                 // --fp8: the model's dtype becomes FP8 (the recipe)
  // Everything else; defaults are TrainOptions' own. `options.model` is left empty (the command
  // loads it), options.config.data_parallel is 0 unless --dp is given, and options.data_path is
  // the path as typed (kDefaultTrainData by default, empty with --synthetic).
  executor::TrainOptions options;
};

// `args` are the words after "train", e.g. {"--gpus", "8", "--tp", "2"}.
TrainRequest parse_train_args(const std::vector<std::string>& args);

// The --help text: every flag with its default and unit.
std::string train_help();

}  // namespace mpsim::cli
