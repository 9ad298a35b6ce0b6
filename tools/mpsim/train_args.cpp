// Parsing of `mpsim train` flags; see train_args.h. Each flag is declared once, below or (the
// layout flags) in layout_flags.cpp, with its default, unit and help; hyper-parameter defaults are
// TrainOptions' own, so the help text and the trainer cannot disagree. Values are read as text and
// converted here so that errors name the flag in one style: `--lr: 'abc' is not a number`.
#include "tools/mpsim/train_args.h"

#include <boost/program_options.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>

#include "common/text.h"
#include "simulator/spec/spec_error.h"
#include "tools/mpsim/flag_parsing.h"
#include "tools/mpsim/layout_flags.h"

namespace mpsim::cli {
namespace {

namespace po = boost::program_options;
using spec::FlagError;

// Shortest readable form of a double ("0.0006", "6e-05").
std::string str(double v) { return common::printf_string("%g", v); }

po::options_description flag_descriptions() {
  const executor::TrainOptions defaults;
  po::options_description d("mpsim train flags");
  auto text = [](const std::string& fallback, const char* name) {
    return po::value<std::string>()->default_value(fallback)->value_name(name);
  };
  // clang-format off: one flag per entry reads as a table
  d.add_options()("help,h", "print this help");
  add_layout_flags(
      d, {{LayoutFlag::kModel, "gpt2-124m"},
          {LayoutFlag::kGpus, "1", "number of GPUs (one process each)"},
          {LayoutFlag::kTp, "1"},
          {LayoutFlag::kPp, "1"},
          {LayoutFlag::kDp, "0"},
          {LayoutFlag::kMbs, "4"},
          {LayoutFlag::kGbs, "32"},
          {LayoutFlag::kSp, std::nullopt,
           "sequence parallelism (shard norms and dropout over the TP group); needs --tp > 1"},
          {LayoutFlag::kNoSp, std::nullopt, "no sequence parallelism (the default)"},
          {LayoutFlag::kVpp, "1"},
          {LayoutFlag::kSchedule},
          {LayoutFlag::kRecompute, "none"},
          {LayoutFlag::kAttention, "flash",
           "attention core: flash (cuDNN's fused causal attention, no s x s tensor) or unfused "
           "(batched GEMMs around a fused softmax, Megatron-LM's local path)"}});
  d.add_options()("dist-opt",
                  "distributed optimizer: shard optimizer state over DP (ZeRO stage 1)")(
      "fp8",
      "the layers' linear GEMMs in FP8 (Transformer Engine's recipe: E4M3 forward, E5M2 "
      "gradients, delayed scaling); attention, norms, embedding and LM head in BF16; not with "
      "--sp")("steps", text(std::to_string(defaults.steps), "K"), "training iterations")(
      "data", text(kDefaultTrainData, "FILE"),
      "byte-level text corpus; a relative path is looked up as described above")(
      "synthetic", "train on uniform random tokens instead of a corpus (conflicts with --data)")(
      "dry-run",
      "start the ranks (locally or as Slurm tasks) and their rendezvous, print each "
      "rank's place in the layout as a JSON line, and stop before touching a GPU")(
      "lr", text(str(defaults.lr), "X"), "peak learning rate (AdamW), reached after --warmup")(
      "min-lr", text(str(defaults.min_lr), "X"),
      "learning rate at the last step: cosine decay from --lr down to it")(
      "warmup", text(std::to_string(defaults.warmup_steps), "K"),
      "steps of linear learning-rate warm-up from 0")(
      "seed", text(std::to_string(defaults.seed), "S"), "seed of initialisation and data order")(
      "weight-decay", text(str(defaults.weight_decay), "X"),
      "AdamW weight decay (2-D weights only)")("clip", text(str(defaults.clip_grad), "X"),
                                               "global gradient-norm clip; 0 = off")(
      "log", po::value<std::string>()->value_name("FILE"),
      "write per-step metrics as JSON lines to FILE (default: standard output, rank 0)");
  // clang-format on
  return d;
}

}  // namespace

TrainRequest parse_train_args(const std::vector<std::string>& args) {
  const po::variables_map vm = parse_flags(args, flag_descriptions(), "train");
  TrainRequest request;
  if (vm.count("help")) {
    request.help = true;
    return request;
  }
  auto text = [&](const char* flag) { return vm[flag].as<std::string>(); };
  auto count = [&](const char* flag, int64_t min) {
    return parse_integer(std::string("--") + flag, text(flag), min);
  };
  auto real = [&](const char* flag, double min, bool exclusive) {
    return parse_real(std::string("--") + flag, text(flag), min, exclusive);
  };

  request.model = text("model");
  if (request.model.empty()) throw FlagError("--model", "must not be empty");

  executor::TrainOptions& o = request.options;
  spec::ParallelConfig& c = o.config;
  read_layout_flags(vm, c);
  c.set_sequence_parallel(vm.count("sp") > 0);
  if (c.sequence_parallel() && c.tensor_parallel() < 2) {
    throw FlagError("--sp",
                    "needs --tp > 1 (got --tp " + std::to_string(c.tensor_parallel()) + ")");
  }
  c.set_zero_stage(vm.count("dist-opt") ? 1 : 0);
  request.fp8 = vm.count("fp8") > 0;
  if (request.fp8 && c.sequence_parallel()) {
    throw FlagError("--fp8",
                    "conflicts with --sp (FP8 inputs gathered over TP are not "
                    "implemented); expected one of them");
  }
  c.set_rank_order(spec::TP_DP_PP);

  request.dry_run = vm.count("dry-run") > 0;
  o.steps = count("steps", 1);
  o.synthetic = vm.count("synthetic") > 0;
  if (o.synthetic && !vm["data"].defaulted()) {
    throw FlagError("--synthetic", "conflicts with --data; give one of them");
  }
  o.data_path = o.synthetic ? "" : text("data");
  if (!o.synthetic && o.data_path.empty()) throw FlagError("--data", "needs a file name");

  o.lr = real("lr", 0, true);
  o.min_lr = real("min-lr", 0, false);
  if (o.min_lr > o.lr) {
    throw FlagError("--min-lr", str(o.min_lr) + " is above --lr (" + str(o.lr) +
                                    "); expected the decay floor to be at most the peak");
  }
  o.warmup_steps = count("warmup", 0);
  o.seed = static_cast<uint64_t>(count("seed", 0));
  o.weight_decay = real("weight-decay", 0, false);
  o.clip_grad = real("clip", 0, false);
  if (vm.count("log")) {
    o.log_path = text("log");
    if (o.log_path.empty()) throw FlagError("--log", "needs a file name");
  }
  return request;
}

std::string train_help() {
  std::ostringstream out;
  out << "usage: mpsim train [flags]\n"
         "       srun -n N mpsim train --gpus N [flags]\n\n"
         "Trains a GPT model with the reference CUDA/NCCL executor, one process per GPU, and\n"
         "prints loss, step time and throughput per step. Started plainly it starts --gpus\n"
         "processes on this machine; under srun each Slurm task is one rank (the task count must\n"
         "equal --gpus) and rank 0 is the first node of the step. The learning rate warms up\n"
         "linearly for --warmup steps, then decays along a cosine to --min-lr at the last step.\n"
         "--data and --model names are looked up under $MPSIM_DATA_DIR, the current directory,\n"
         "then the source tree mpsim was built from.\n\n"
      << flag_descriptions();
  return out.str();
}

}  // namespace mpsim::cli
