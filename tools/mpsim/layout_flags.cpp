// The layout flags, declared once; see layout_flags.h.
#include "tools/mpsim/layout_flags.h"

#include <stdexcept>

#include "common/text.h"
#include "simulator/spec/config_words.h"
#include "simulator/spec/spec_loader.h"
#include "tools/mpsim/flag_parsing.h"

namespace mpsim::cli {
namespace {

namespace po = boost::program_options;

// clang-format off: one flag per line reads as a table
const LayoutFlagInfo kLayoutFlags[] = {
    {LayoutFlag::kModel, "model", "model", "M",
     "model: a name in models/ (without .textproto) or a path to a ModelSpec textproto"},
    {LayoutFlag::kHw, "hw", "hardware", "H",
     "hardware: a name in hw_profiles/ or a path to a HardwareProfile textproto"},
    {LayoutFlag::kGpus, "gpus", "num_gpus", "N", "number of GPUs"},
    {LayoutFlag::kTp, "tp", "tensor_parallel", "T", "tensor-parallel size (GPUs)"},
    {LayoutFlag::kPp, "pp", "pipeline_parallel", "P", "pipeline-parallel size (stages)"},
    {LayoutFlag::kCp, "cp", "context_parallel", "C",
     "context-parallel size: each sequence split over C ranks, ring attention (Megatron-Core)"},
    {LayoutFlag::kDp, "dp", "data_parallel", "D",
     "data-parallel size (replicas); 0 = gpus / (tp * pp)"},
    {LayoutFlag::kMbs, "mbs", "micro_batch_size", "B", "micro-batch size (sequences)"},
    {LayoutFlag::kGbs, "gbs", "global_batch_size", "G",
     "global batch size (sequences per iteration)"},
    {LayoutFlag::kSp, "sp", "sequence_parallel", nullptr,
     "sequence parallelism (shard norms and dropout over the TP group)"},
    {LayoutFlag::kNoSp, "no-sp", "sequence_parallel", nullptr, "no sequence parallelism"},
    {LayoutFlag::kVpp, "vpp", "virtual_pipeline_stages", "V",
     "model chunks per pipeline rank (virtual stages); 1 = none"},
    {LayoutFlag::kSchedule, "schedule", "schedule", "gpipe|1f1b|interleaved",
     "pipeline schedule (default: 1f1b, or interleaved when --vpp > 1)"},
    {LayoutFlag::kRecompute, "recompute", "recompute", "none|selective|full",
     "activation recomputation: selective = attention core, full = whole layer"},
    {LayoutFlag::kZero, "zero", "zero_stage", "0|1|2|3",
     "ZeRO stage: 1 shards optimizer state over DP, 2 also gradients, 3 also weights"},
    {LayoutFlag::kNoOverlapDp, "no-overlap-dp", "overlap_dp_comm", nullptr,
     "do not overlap DP gradient reduction with the backward pass"},
    {LayoutFlag::kRankOrder, "rank-order", "rank_order", "tp-dp-pp|tp-pp-dp",
     "how parallel dimensions map to global ranks, innermost first"},
    {LayoutFlag::kAttention, "attention", "attention", "flash|unfused",
     "attention core: flash (fused, no s x s tensor; Megatron-Core with Transformer Engine) or "
     "unfused (batched GEMMs around a fused softmax; Megatron-LM 2020-22)"},
    {LayoutFlag::kOverlapParamGather, "overlap-param-gather", "overlap_param_gather", nullptr,
     "overlap the distributed optimizer's parameter all-gather with the next forward "
     "(Megatron-Core; needs --zero 1)"},
    {LayoutFlag::kOptimizerOffload, "optimizer-offload", "optimizer_offload", "F",
     "fraction of the optimizer state kept in host memory, its step run on the host "
     "(Megatron-Core's optimizer CPU offload, DeepSpeed's ZeRO-Offload); 0 = none"},
    {LayoutFlag::kTpCommOverlap, "tp-comm-overlap", "tp_comm_overlap", nullptr,
     "overlap the sequence-parallel all-gathers and reduce-scatters with the GEMMs in chunks "
     "(Megatron-Core with Transformer Engine; needs --sp, TP within a node)"},
    // No command takes it yet; the spec layer's errors about the field name it so.
    {LayoutFlag::kDpBucketParams, "dp-bucket-params", "dp_bucket_params", "N",
     "parameters per DP gradient bucket; 0 = Megatron's 40M"},
};
// clang-format on

}  // namespace

const LayoutFlagInfo& layout_flag(LayoutFlag id) {
  for (const LayoutFlagInfo& f : kLayoutFlags)
    if (f.id == id) return f;
  throw std::logic_error("layout_flag: an undeclared layout flag");
}

void add_layout_flags(po::options_description& d, const std::vector<LayoutFlagUse>& uses) {
  for (const LayoutFlagUse& use : uses) {
    const LayoutFlagInfo& f = layout_flag(use.id);
    const char* help = use.help ? use.help : f.help;
    const char* value_name = use.value_name ? use.value_name : f.value_name;
    if (value_name == nullptr) {
      d.add_options()(f.name, help);
      continue;
    }
    auto* value = po::value<std::string>()->value_name(value_name);
    if (use.fallback) value->default_value(*use.fallback);
    d.add_options()(f.name, value, help);
  }
}

void read_layout_flags(const po::variables_map& vm, spec::ParallelConfig& c) {
  auto text = [&](LayoutFlag id) { return vm[layout_flag(id).name].as<std::string>(); };
  auto count = [&](LayoutFlag id, int64_t min) {
    return parse_integer(std::string("--") + layout_flag(id).name, text(id), min);
  };
  c.set_num_gpus(count(LayoutFlag::kGpus, 1));
  c.set_tensor_parallel(count(LayoutFlag::kTp, 1));
  c.set_pipeline_parallel(count(LayoutFlag::kPp, 1));
  if (vm.count(layout_flag(LayoutFlag::kCp).name))
    c.set_context_parallel(count(LayoutFlag::kCp, 1));
  if (vm.count(layout_flag(LayoutFlag::kOptimizerOffload).name)) {
    c.set_optimizer_offload(parse_fraction(
        "--optimizer-offload", text(LayoutFlag::kOptimizerOffload), kOptimizerOffloadWhat));
  }
  c.set_data_parallel(count(LayoutFlag::kDp, 0));
  c.set_micro_batch_size(count(LayoutFlag::kMbs, 1));
  c.set_global_batch_size(count(LayoutFlag::kGbs, 1));
  if (vm.count("sp") && vm.count("no-sp")) throw spec::FlagError("--sp", "conflicts with --no-sp");
  c.set_virtual_pipeline_stages(count(LayoutFlag::kVpp, 1));
  if (vm.count("schedule")) {
    c.set_schedule(choose("--schedule", text(LayoutFlag::kSchedule), kScheduleChoices));
  } else {
    c.set_schedule(c.virtual_pipeline_stages() > 1 ? spec::INTERLEAVED_1F1B : spec::ONE_F_ONE_B);
  }
  c.set_recompute(choose("--recompute", text(LayoutFlag::kRecompute), kRecomputeChoices));
  if (vm.count("attention"))
    c.set_attention(choose("--attention", text(LayoutFlag::kAttention), kAttentionChoices));
}

std::string simulate_command(const std::string& model, const std::string& hardware,
                             const spec::ParallelConfig& c) {
  std::string s = "mpsim simulate";
  auto add = [&](LayoutFlag id, const std::string& value) {
    s += std::string(" --") + layout_flag(id).name;
    if (!value.empty()) s += " " + value;
  };
  add(LayoutFlag::kModel, model);
  add(LayoutFlag::kHw, hardware);
  add(LayoutFlag::kGpus, std::to_string(c.num_gpus()));
  add(LayoutFlag::kTp, std::to_string(c.tensor_parallel()));
  add(LayoutFlag::kPp, std::to_string(c.pipeline_parallel()));
  if (c.context_parallel() > 1) add(LayoutFlag::kCp, std::to_string(c.context_parallel()));
  add(LayoutFlag::kMbs, std::to_string(c.micro_batch_size()));
  add(LayoutFlag::kGbs, std::to_string(c.global_batch_size()));
  add(c.sequence_parallel() ? LayoutFlag::kSp : LayoutFlag::kNoSp, "");
  add(LayoutFlag::kVpp, std::to_string(c.virtual_pipeline_stages()));
  add(LayoutFlag::kSchedule, spec::schedule_word(c.schedule()));
  add(LayoutFlag::kRecompute, spec::recompute_word(c.recompute()));
  add(LayoutFlag::kAttention, spec::attention_word(c.attention()));
  add(LayoutFlag::kZero, std::to_string(c.zero_stage()));
  if (!c.overlap_dp_comm()) add(LayoutFlag::kNoOverlapDp, "");
  if (c.overlap_param_gather()) add(LayoutFlag::kOverlapParamGather, "");
  if (c.tp_comm_overlap()) add(LayoutFlag::kTpCommOverlap, "");
  if (c.optimizer_offload() > 0)
    add(LayoutFlag::kOptimizerOffload, common::shortest(c.optimizer_offload()));
  add(LayoutFlag::kRankOrder, spec::rank_order_word(c.rank_order()));
  return s;
}

std::string flag_of_field(const std::string& field) {
  // --sp and --no-sp both set sequence_parallel; the spec's complaints are about turning it on.
  for (const LayoutFlagInfo& f : kLayoutFlags)
    if (f.id != LayoutFlag::kNoSp && field == f.field) return std::string("--") + f.name;
  if (spec::ModelSpec::descriptor()->FindFieldByName(field) != nullptr) return "--model";
  if (field.rfind("gpu.", 0) == 0 || field.rfind("node.", 0) == 0) return "--hw";
  return {};
}

spec::FlagError flag_error_from(const spec::FieldError& error) {
  const std::string flag = flag_of_field(error.field());
  return spec::FlagError(flag.empty() ? error.field() : flag, error.message());
}

spec::ParallelConfig checked_layout(const spec::ParallelConfig& config,
                                    const spec::ModelSpec& model, const spec::Hardware& hardware) {
  try {
    return spec::validate_parallel_config(config, model, hardware);
  } catch (const spec::FieldError& e) {
    throw flag_error_from(e);
  }
}

}  // namespace mpsim::cli
