// Flags of `mpsim calibrate`, parsed by a pure function:
//   mpsim calibrate --from DB [--from DB2 ...] [--base H] -o FILE [--name NAME]
//   mpsim calibrate -o FILE [--base H] [--name NAME] [--quick] [--bench PATH] [--models DIR]
//                   [--gpus N]
// The first fits databases already recorded; the second records one on this machine first.
// parse_calibrate_args() throws spec::FlagError for an unknown flag, a missing -o, an empty
// value, --gpus out of [1, 1024], or --quick, --bench, --models or --gpus with --from (nothing is
// measured then).
//
// train_request_from_command() rebuilds what a profiled executor run trained from its command
// line, for databases recorded before runs stored their configuration (calibration/runs/
// run_config.h); it throws spec::SpecError naming `source` when the command is not an
// `mpsim train` command line or its flags do not parse (the flag named).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/mpsim/train_args.h"

namespace mpsim::cli {

struct CalibrateRequest {
  bool help = false;
  std::vector<std::string> from;  // --from: databases to fit; empty: measure here
  std::string base = "h100-sxm";  // --base: a name in hw_profiles/ or a path
  std::string output;             // -o: the profile to write
  std::string name;               // --name: the profile's name; empty: -o's file name stem
  bool quick = false;             // --quick: calibration_bench --quick (measuring only)
  std::string bench;   // --bench: the calibration_bench to run; empty: found beside mpsim
  std::string models;  // --models: the folder whose models set the GEMM grid; empty: models/
                       // where spec names are looked up (calibrate_command.h)
  int64_t gpus = 0;    // --gpus: local GPUs for the exact-shape point list and the bench; 0:
                       // the number of /dev/nvidia<N> devices (at least 1)
};

CalibrateRequest parse_calibrate_args(const std::vector<std::string>& args);
std::string calibrate_help();

// The flags of a profiled command line "<path>/mpsim train --model ... --log ..." (as the
// profiler stores it), parsed as `mpsim train` parses them.
TrainRequest train_request_from_command(const std::string& command, const std::string& source);

}  // namespace mpsim::cli
