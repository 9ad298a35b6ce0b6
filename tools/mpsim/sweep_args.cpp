// Parsing of `mpsim sweep` flags; see sweep_args.h. Each flag is declared once, below or (the
// layout flags) in layout_flags.cpp, with its default, unit and help; values are read as text and
// converted here so that errors read as those of `mpsim simulate`: `--schedule: 'foo' is not one of
// gpipe, 1f1b, interleaved`.
#include "tools/mpsim/sweep_args.h"

#include <boost/program_options.hpp>
#include <charconv>
#include <cstdint>
#include <limits>
#include <sstream>
#include <utility>

#include "simulator/spec/spec_error.h"
#include "tools/mpsim/flag_parsing.h"
#include "tools/mpsim/layout_flags.h"

namespace mpsim::cli {
namespace {

namespace po = boost::program_options;
using spec::FlagError;

const Choices<SweepFormat> kFormats = {{"table", SweepFormat::kTable},
                                       {"json", SweepFormat::kJson},
                                       {"csv", SweepFormat::kCsv},
                                       {"megatron", SweepFormat::kMegatron}};
const Choices<bool> kFrameworks = {{"any", false}, {"megatron", true}};

po::options_description flag_descriptions() {
  po::options_description d("mpsim sweep flags");
  auto text = [](const char* fallback, const char* name) {
    return po::value<std::string>()->default_value(fallback)->value_name(name);
  };
  auto optional = [](const char* name) { return po::value<std::string>()->value_name(name); };
  // clang-format off
  d.add_options()("help,h", "print this help");
  add_layout_flags(d, {{LayoutFlag::kModel, "gpt3-175b"},
                       {LayoutFlag::kHw, "h100-sxm"},
                       {LayoutFlag::kGpus, "1024"},
                       {LayoutFlag::kGbs, "1536"},
                       {LayoutFlag::kAttention, "flash",
                        "attention core of every configuration: flash or unfused (the training "
                        "stack's, not swept)"}});
  d.add_options()
      ("top", text("10", "K"), "configurations shown in the table")
      ("format", text("table", "table|json|csv|megatron"),
       "output: the top K as a table or as Megatron-LM command lines, or every fitting "
       "configuration as JSON or CSV (each row with the commands that reproduce it)")
      ("framework", text("any", "any|megatron"),
       "megatron: only configurations Megatron-LM runs (no ZeRO-2/3, no GPipe)")
      ("out", optional("FILE"), "also write every result to an SQLite database FILE")
      ("threads", text("0", "N"), "simulation threads; 0 = all cores")
      ("fp8", "the model's linear-layer GEMMs in FP8 with Transformer Engine's recipe (casts, amax reduction, FP8 weight cache and saved inputs); attention, norms, embedding and LM head in BF16")
      ("memory-headroom", text("0", "F"),
       "fraction of the GPU's usable memory to keep free; configurations must fit in the rest")
      ("trace-best", optional("FILE"),
       "write a Chrome trace (JSON, times in us) of the fastest configuration to FILE");
  // clang-format on
  po::options_description c("constraints (each fixes or bounds one dimension of the space)");
  add_layout_flags(
      c, {{LayoutFlag::kTp, std::nullopt, "tensor-parallel size"},
          {LayoutFlag::kPp, std::nullopt, "pipeline-parallel size"},
          {LayoutFlag::kCp, std::nullopt, "context-parallel size"},
          {LayoutFlag::kDp, std::nullopt, "data-parallel size"},
          {LayoutFlag::kMbs, std::nullopt, "micro-batch size (sequences)"},
          {LayoutFlag::kVpp, std::nullopt, "model chunks per pipeline rank (1 = not interleaved)"},
          {LayoutFlag::kSp, std::nullopt, "sequence parallelism", "on|off"},
          {LayoutFlag::kSchedule, std::nullopt, "pipeline schedule"},
          {LayoutFlag::kRecompute, std::nullopt, "activation recomputation"},
          {LayoutFlag::kZero, std::nullopt, "ZeRO stage"},
          {LayoutFlag::kOverlapParamGather, std::nullopt,
           "overlap the parameter all-gather with the forward in every ZeRO-1 configuration"},
          {LayoutFlag::kOptimizerOffload, std::nullopt,
           "the fraction of every configuration's optimizer state offloaded to the host"},
          {LayoutFlag::kTpCommOverlap, std::nullopt,
           "overlap the TP all-gathers and reduce-scatters with the GEMMs in every "
           "configuration with sequence parallelism and TP within a node"}});
  // clang-format off
  c.add_options()
      ("max-tp", optional("T"), "largest tensor-parallel size")
      ("max-pp", optional("P"), "largest pipeline-parallel size")
      ("max-cp", optional("C"),
       "largest context-parallel size (default 8; without --cp only sizes that leave each rank "
       "4096 tokens of a sequence or more)")
      ("max-mbs", optional("B"), "largest micro-batch size");
  // clang-format on
  d.add(c);
  return d;
}

}  // namespace

SweepRequest parse_sweep_args(const std::vector<std::string>& args) {
  const po::variables_map vm = parse_flags(args, flag_descriptions(), "sweep");
  SweepRequest request;
  if (vm.count("help")) {
    request.help = true;
    return request;
  }
  auto text = [&](const char* flag) { return vm[flag].as<std::string>(); };
  auto count = [&](const char* flag, int64_t min,
                   int64_t max = std::numeric_limits<int64_t>::max()) {
    return parse_integer(std::string("--") + flag, text(flag), min, max);
  };
  auto file = [&](const char* flag) {
    const std::string path = text(flag);
    if (path.empty()) throw FlagError(std::string("--") + flag, "needs a file name");
    return path;
  };

  request.model = text("model");
  request.hardware = text("hw");
  if (request.model.empty()) throw FlagError("--model", "must not be empty");
  if (request.hardware.empty()) throw FlagError("--hw", "must not be empty");
  request.gpus = count("gpus", 1);
  request.gbs = count("gbs", 1);
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  request.top = static_cast<int>(count("top", 1, kIntMax));
  request.format = choose("--format", text("format"), kFormats);
  if (vm.count("out")) request.out_path = file("out");
  request.threads = static_cast<int>(count("threads", 0, kIntMax));
  if (vm.count("trace-best")) request.trace_best_path = file("trace-best");
  request.memory_headroom = parse_memory_headroom("--memory-headroom", text("memory-headroom"));
  request.fp8 = vm.count("fp8") > 0;

  sweep::Constraints& c = request.constraints;
  auto fixed = [&](const char* flag, std::optional<int64_t>& field) {
    if (vm.count(flag)) field = count(flag, 1);
  };
  fixed("tp", c.tp);
  fixed("pp", c.pp);
  fixed("dp", c.dp);
  fixed("mbs", c.mbs);
  fixed("vpp", c.vpp);
  fixed("max-tp", c.max_tp);
  fixed("max-pp", c.max_pp);
  fixed("cp", c.cp);
  fixed("max-cp", c.max_cp);
  fixed("max-mbs", c.max_mbs);
  if (vm.count("sp")) c.sp = choose("--sp", text("sp"), kOnOffChoices);
  if (vm.count("schedule")) c.schedule = choose("--schedule", text("schedule"), kScheduleChoices);
  if (vm.count("recompute"))
    c.recompute = choose("--recompute", text("recompute"), kRecomputeChoices);
  if (vm.count("zero")) c.zero = choose("--zero", text("zero"), kZeroChoices);
  c.attention = choose("--attention", text("attention"), kAttentionChoices);
  c.megatron_only = choose("--framework", text("framework"), kFrameworks);
  c.overlap_param_gather = vm.count("overlap-param-gather") > 0;
  c.tp_comm_overlap = vm.count("tp-comm-overlap") > 0;
  if (vm.count("optimizer-offload")) {
    c.optimizer_offload = parse_fraction(
        "--optimizer-offload", vm["optimizer-offload"].as<std::string>(), kOptimizerOffloadWhat);
  }
  return request;
}

std::string sweep_help() {
  std::ostringstream out;
  out << "usage: mpsim sweep [flags]\n\n"
         "Enumerates every valid parallel configuration of a model on a number of GPUs for a\n"
         "global batch, prunes those that do not fit in GPU memory, simulates the rest on all\n"
         "cores and ranks them by iteration time.\n\n"
      << flag_descriptions();
  return out.str();
}

}  // namespace mpsim::cli
