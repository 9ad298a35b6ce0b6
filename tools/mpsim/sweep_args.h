// Flags of `mpsim sweep`, parsed into a SweepRequest by a pure function (no I/O, no spec
// loading) so every flag, default and error message is unit-tested.
//
// parse_sweep_args() throws spec::FlagError naming the flag as typed ("--schedule") for an
// unknown flag, a missing or non-numeric value, a value outside the allowed set (listing it) or
// a flag given twice, in the same words as `mpsim simulate`. Constraint flags (--tp, --pp, --dp,
// --mbs, --vpp, --sp, --schedule, --recompute, --zero, --max-tp, --max-pp, --max-mbs) fill
// sweep::Constraints; whether any config satisfies them is the sweep's business.
#pragma once

#include <string>
#include <vector>

#include "simulator/sweep/config_space.h"

namespace mpsim::cli {

enum class SweepFormat { kTable, kJson, kCsv, kMegatron };

struct SweepRequest {
  bool help = false;  // --help: print sweep_help() and do nothing else
  std::string model = "gpt3-175b";
  bool fp8 = false;  // --fp8, as for simulate
  std::string hardware = "h100-sxm";
  int64_t gpus = 1024;
  int64_t gbs = 1536;
  int top = 10;
  SweepFormat format = SweepFormat::kTable;
  std::string out_path;         // --out: SQLite file; empty = none
  int threads = 0;              // 0 = all cores
  std::string trace_best_path;  // --trace-best: Chrome trace of the winner; empty = none
  sweep::Constraints constraints;
  double memory_headroom = 0;  // --memory-headroom: fraction of usable memory kept free
};

// `args` are the words after "sweep", e.g. {"--gpus", "64", "--max-tp", "8"}.
SweepRequest parse_sweep_args(const std::vector<std::string>& args);

// The --help text: every flag with its default and unit.
std::string sweep_help();

}  // namespace mpsim::cli
