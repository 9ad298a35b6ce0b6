// Parsing of `mpsim simulate` flags; see simulate_args.h. Each flag is declared once, below or
// (the layout flags) in layout_flags.cpp, with its default, unit and help; every value is read as
// text and converted here so that errors name the flag and the allowed values in one style:
// `--schedule: 'foo' is not one of gpipe, ...`.
#include "tools/mpsim/simulate_args.h"

#include <boost/program_options.hpp>
#include <charconv>
#include <cstdint>
#include <sstream>
#include <utility>

#include "simulator/spec/spec_error.h"
#include "tools/mpsim/flag_parsing.h"
#include "tools/mpsim/layout_flags.h"

namespace mpsim::cli {
namespace {

namespace po = boost::program_options;
using spec::FlagError;

// What --megatron-args sets, so that these flags may not be given beside it.
constexpr LayoutFlag kLayoutFlagsOfMegatronArgs[] = {LayoutFlag::kModel,
                                                     LayoutFlag::kTp,
                                                     LayoutFlag::kPp,
                                                     LayoutFlag::kDp,
                                                     LayoutFlag::kCp,
                                                     LayoutFlag::kMbs,
                                                     LayoutFlag::kGbs,
                                                     LayoutFlag::kSp,
                                                     LayoutFlag::kNoSp,
                                                     LayoutFlag::kVpp,
                                                     LayoutFlag::kSchedule,
                                                     LayoutFlag::kRecompute,
                                                     LayoutFlag::kZero,
                                                     LayoutFlag::kNoOverlapDp,
                                                     LayoutFlag::kRankOrder,
                                                     LayoutFlag::kAttention,
                                                     LayoutFlag::kOverlapParamGather,
                                                     LayoutFlag::kTpCommOverlap,
                                                     LayoutFlag::kOptimizerOffload};

const Choices<OutputFormat> kFormats = {{"table", OutputFormat::kTable},
                                        {"json", OutputFormat::kJson}};

po::options_description flag_descriptions() {
  po::options_description d("mpsim simulate flags");
  auto text = [](const char* fallback, const char* name) {
    return po::value<std::string>()->default_value(fallback)->value_name(name);
  };
  d.add_options()("help,h", "print this help");
  add_layout_flags(
      d, {{LayoutFlag::kModel, "gpt3-175b"},
          {LayoutFlag::kHw, "h100-sxm"},
          {LayoutFlag::kGpus, "1024"},
          {LayoutFlag::kTp, "8"},
          {LayoutFlag::kPp, "16"},
          {LayoutFlag::kCp, "1"},
          {LayoutFlag::kDp, "0"},
          {LayoutFlag::kMbs, "1"},
          {LayoutFlag::kGbs, "1536"},
          {LayoutFlag::kSp, std::nullopt,
           "sequence parallelism (shard norms and dropout over the TP group); the default when "
           "--tp > 1"},
          {LayoutFlag::kNoSp},
          {LayoutFlag::kVpp, "1"},
          {LayoutFlag::kSchedule},
          {LayoutFlag::kRecompute, "selective"},
          {LayoutFlag::kAttention, "flash"},
          {LayoutFlag::kZero, "0"},
          {LayoutFlag::kNoOverlapDp},
          {LayoutFlag::kOverlapParamGather},
          {LayoutFlag::kTpCommOverlap},
          {LayoutFlag::kOptimizerOffload},
          {LayoutFlag::kRankOrder, "tp-dp-pp"}});
  d.add_options()("fp8",
                  "the model's linear-layer GEMMs in FP8 with Transformer Engine's recipe (casts, "
                  "amax reduction, FP8 weight cache and saved inputs); attention, norms, embedding "
                  "and LM head in BF16");
  d.add_options()("all-ranks", "simulate every rank, not one representative per pipeline stage")(
      "trace", po::value<std::string>()->value_name("FILE"),
      "write a Chrome trace (JSON, times in us) of the iteration to FILE")(
      "format", text("table", "table|json"), "output format")(
      "memory-headroom", text("0", "F"),
      "fraction of the GPU's usable memory to keep free; the run must fit in the rest")(
      "megatron-args", po::value<std::string>()->value_name("ARGS|FILE"),
      "Megatron-LM's pretrain_gpt.py arguments (or a file of them, e.g. a launch script's "
      "argument arrays) instead of --model and the layout flags; --gpus, or torchrun's "
      "--nproc_per_node x --nnodes among them, gives the GPU count")(
      "ignore-memory",
      "print the simulation and exit 0 even when it does not fit in GPU memory (otherwise the "
      "status is 3)");
  return d;
}

}  // namespace

SimulateRequest parse_simulate_args(const std::vector<std::string>& args) {
  const po::variables_map vm = parse_flags(args, flag_descriptions(), "simulate");
  SimulateRequest request;
  if (vm.count("help")) {
    request.help = true;
    return request;
  }
  auto text = [&](const char* flag) { return vm[flag].as<std::string>(); };
  auto count = [&](const char* flag, int64_t min) {
    return parse_integer(std::string("--") + flag, text(flag), min);
  };

  request.model = text("model");
  request.hardware = text("hw");
  if (request.model.empty()) throw FlagError("--model", "must not be empty");
  if (vm.count("megatron-args")) {
    request.megatron_args = text("megatron-args");
    if (request.megatron_args.empty()) throw FlagError("--megatron-args", "must not be empty");
    for (LayoutFlag id : kLayoutFlagsOfMegatronArgs) {
      const char* name = layout_flag(id).name;
      if (vm.count(name) && !vm[name].defaulted()) {
        throw FlagError(std::string("--") + name,
                        "conflicts with --megatron-args, which sets the model and layout; "
                        "expected one of the two");
      }
    }
    if (vm.count("gpus") && !vm["gpus"].defaulted()) request.megatron_gpus = count("gpus", 1);
  }
  if (request.hardware.empty()) throw FlagError("--hw", "must not be empty");

  spec::ParallelConfig& c = request.config;
  read_layout_flags(vm, c);
  // Megatron-LM's recipe for large models (Korthikanti et al. 2022): SP with TP, selective
  // recompute; so the defaults describe a configuration that fits, not one that runs out.
  c.set_sequence_parallel(vm.count("sp")      ? true
                          : vm.count("no-sp") ? false
                                              : c.tensor_parallel() > 1);
  c.set_zero_stage(choose("--zero", text("zero"), kZeroChoices));
  c.set_overlap_dp_comm(vm.count("no-overlap-dp") == 0);
  c.set_overlap_param_gather(vm.count("overlap-param-gather") > 0);
  c.set_tp_comm_overlap(vm.count("tp-comm-overlap") > 0);
  c.set_rank_order(choose("--rank-order", text("rank-order"), kRankOrderChoices));

  request.all_ranks = vm.count("all-ranks") > 0;
  if (vm.count("trace")) {
    request.trace_path = text("trace");
    if (request.trace_path.empty()) throw FlagError("--trace", "needs a file name");
  }
  request.format = choose("--format", text("format"), kFormats);
  request.memory_headroom = parse_memory_headroom("--memory-headroom", text("memory-headroom"));
  request.ignore_memory = vm.count("ignore-memory") > 0;
  request.fp8 = vm.count("fp8") > 0;
  if (request.fp8 && !request.megatron_args.empty()) {
    throw FlagError("--fp8",
                    "conflicts with --megatron-args, whose --fp8-format says it; expected "
                    "one of the two");
  }
  return request;
}

std::string simulate_help() {
  std::ostringstream out;
  out << "usage: mpsim simulate [flags]\n\n"
         "Simulates one training iteration of a model on a cluster under a parallel\n"
         "configuration and prints iteration time, throughput, MFU/HFU and a time breakdown.\n\n"
      << flag_descriptions();
  return out.str();
}

}  // namespace mpsim::cli
