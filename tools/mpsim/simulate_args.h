// Flags of `mpsim simulate`, parsed into a SimulateRequest by a pure function (no I/O, no spec
// loading) so every flag, default and error message is unit-tested.
//
// parse_simulate_args() throws spec::FlagError naming the flag as typed ("--schedule") for an
// unknown flag, a missing or non-numeric value, a value outside the allowed set (listing it) or
// a flag given twice. Constraints that need the model or hardware (heads divisible by TP, GPUs =
// TP x PP x DP, ...) are left to spec::validate_parallel_config().
#pragma once

#include <string>
#include <vector>

#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::cli {

enum class OutputFormat { kTable, kJson };

struct SimulateRequest {
  bool help = false;  // --help: print simulate_help() and do nothing else
  std::string model = "gpt3-175b";
  std::string hardware = "h100-sxm";
  spec::ParallelConfig config;  // data_parallel 0 = derive; other fields set from flags
  bool all_ranks = false;
  std::string trace_path;  // empty: no trace
  OutputFormat format = OutputFormat::kTable;
  double memory_headroom = 0;  // --memory-headroom: fraction of usable memory kept free
  bool fp8 = false;            // --fp8: the model's dtype becomes FP8 (Transformer Engine's recipe)
  bool ignore_memory = false;  // --ignore-memory: exit 0 even when the run does not fit
  // --megatron-args: Megatron-LM's pretrain_gpt.py arguments, or a file holding them; they set
  // the model and layout (spec/megatron_args.h). Empty: the model and layout flags do.
  std::string megatron_args;
  int64_t megatron_gpus = 0;  // --gpus where given with --megatron-args; 0: from torchrun's flags
};

// `args` are the words after "simulate", e.g. {"--tp", "4", "--sp"}.
SimulateRequest parse_simulate_args(const std::vector<std::string>& args);

// The --help text: every flag with its default and unit.
std::string simulate_help();

}  // namespace mpsim::cli
