// The space of parallel configurations a sweep explores. enumerate_configs() returns every
// ParallelConfig that spec::validate_parallel_config() accepts for a model, hardware, GPU count
// and global batch (TP, PP, DP, sequence parallelism, virtual stages, micro-batch size, recompute
// mode, ZeRO stage, pipeline schedule), narrowed by Constraints. DP gradient overlap is always on,
// the rank order is TP_DP_PP and the attention core is the constraints' (flash by default).
//
// Contract: every returned config is in the normalized form validate_parallel_config() returns;
// there are no duplicates; the order is deterministic (TP, then PP, micro-batch size, schedule
// and vpp, SP, recompute, ZeRO, each ascending). validate_parallel_config() is the judge of
// validity: the loops run over divisors (of the GPU count, of the batch) and skip early only
// values it is known to refuse (TP not splitting heads / kv heads / ffn, ZeRO 2-3 with PP,
// interleaving with micro-batches not a multiple of PP, SP with TP 1 or not dividing the
// sequence), so that few candidates throw; GPT-3 175B on 1024 GPUs takes milliseconds. A test
// compares the result with a brute force over every field value. Nothing throws for an empty space:
// the result is then empty. Bad inputs that no config could fix (gpus < 1, gbs < 1) give an empty
// result too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "simulator/spec/hardware.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::sweep {

inline constexpr int64_t kMinCpTokens = 4096;

// Narrows the space. An unset optional leaves that dimension free.
struct Constraints {
  std::optional<int64_t> tp, pp, dp, mbs, vpp;
  std::optional<bool> sp;
  std::optional<spec::Schedule> schedule;
  std::optional<spec::Recompute> recompute;
  std::optional<int64_t> zero;
  std::optional<int64_t> max_tp, max_pp, max_mbs;
  // Context parallelism: a fixed size, or sizes up to max_cp that keep at least kMinCpTokens of
  // each sequence per rank (below that, splitting the sequence buys nothing over DP).
  std::optional<int64_t> cp;
  std::optional<int64_t> max_cp = 8;
  bool allow_zero23 = true;  // false: ZeRO stages 0 and 1 only
  // Only what Megatron-LM runs (spec::framework_for): no ZeRO-2/3, no GPipe schedule.
  bool megatron_only = false;
  // Megatron-Core's parameter-gather overlap in every ZeRO-1 configuration (a stack choice).
  bool overlap_param_gather = false;
  // Transformer Engine's TP-communication overlap in every configuration that can have it
  // (sequence parallelism, TP within a node): a stack choice too.
  bool tp_comm_overlap = false;
  // Optimizer offload's fraction in every configuration (a stack choice; 0 = none).
  double optimizer_offload = 0;
  // The attention core of every configuration: the training stack's choice, not swept.
  spec::Attention attention = spec::ATTENTION_FLASH;
};

std::vector<spec::ParallelConfig> enumerate_configs(const spec::ModelSpec& model,
                                                    const spec::Hardware& hardware, int64_t gpus,
                                                    int64_t gbs,
                                                    const Constraints& constraints = {});

// A short stable text naming a config's swept fields, e.g.
// "tp8 pp16 dp8 mbs1 vpp3 interleaved sp recompute=selective zero1"; used in messages and as
// part of the ranking tie-break.
std::string config_label(const spec::ParallelConfig& config);

}  // namespace mpsim::sweep
