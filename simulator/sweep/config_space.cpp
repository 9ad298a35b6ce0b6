// enumerate_configs(); see config_space.h.
#include "simulator/sweep/config_space.h"

#include "simulator/spec/config_words.h"
#include "simulator/spec/megatron_args.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::sweep {
namespace {

// Divisors of n in ascending order.
std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> small, large;
  for (int64_t d = 1; d * d <= n; ++d) {
    if (n % d != 0) continue;
    small.push_back(d);
    if (d != n / d) large.push_back(n / d);
  }
  small.insert(small.end(), large.rbegin(), large.rend());
  return small;
}

bool allowed(const std::optional<int64_t>& fixed, const std::optional<int64_t>& max, int64_t v) {
  return (!fixed || *fixed == v) && (!max || v <= *max);
}

// (schedule, vpp) pairs for pp stages in a fixed order: gpipe and 1f1b with vpp 1, then
// interleaved with vpp 2, 3, ... where pp x vpp divides the layers; validate_parallel_config()
// rejects the pairs that do not fit the split.
std::vector<std::pair<spec::Schedule, int64_t>> schedules_for(int64_t pp, int64_t layers) {
  std::vector<std::pair<spec::Schedule, int64_t>> schedules;
  for (spec::Schedule s : {spec::GPIPE, spec::ONE_F_ONE_B}) schedules.emplace_back(s, 1);
  if (pp >= 2 && layers > 0) {
    for (int64_t vpp = 2; vpp * pp <= layers; ++vpp) {
      if (layers % (pp * vpp) == 0) schedules.emplace_back(spec::INTERLEAVED_1F1B, vpp);
    }
  }
  return schedules;
}

// Appends to `out`, in a fixed order, every valid configuration with the TP, PP and DP of
// `split` that the constraints allow: each micro-batch size, schedule, SP, recompute and ZeRO.
void add_configs_of_split(const spec::ParallelConfig& split, const spec::ModelSpec& model,
                          const spec::Hardware& hardware, const Constraints& c,
                          std::vector<spec::ParallelConfig>& out) {
  const int64_t tp = split.tensor_parallel(), pp = split.pipeline_parallel(),
                dp = split.data_parallel(), gbs = split.global_batch_size();
  const spec::Recompute recomputes[] = {spec::RECOMPUTE_NONE, spec::RECOMPUTE_SELECTIVE,
                                        spec::RECOMPUTE_FULL};
  const int64_t max_zero = c.allow_zero23 ? 3 : 1;
  const auto schedules = schedules_for(pp, model.num_layers());
  for (int64_t mbs : divisors(gbs / dp)) {
    if (!allowed(c.mbs, c.max_mbs, mbs)) continue;
    for (const auto& [schedule, vpp] : schedules) {
      if (c.schedule && *c.schedule != schedule) continue;
      if (c.vpp && *c.vpp != vpp) continue;
      // The interleaved schedule needs the micro-batches to be a multiple of pp.
      if (schedule == spec::INTERLEAVED_1F1B && (gbs / (mbs * dp)) % pp != 0) continue;
      for (bool sp : {false, true}) {
        if (c.sp && *c.sp != sp) continue;
        if (sp && (tp < 2 || model.seq_length() % tp != 0)) continue;
        for (spec::Recompute recompute : recomputes) {
          if (c.recompute && *c.recompute != recompute) continue;
          for (int64_t zero = 0; zero <= max_zero; ++zero) {
            if (c.zero && *c.zero != zero) continue;
            if (zero >= 2 && pp > 1) continue;  // ZeRO-2/3 only without pipelining
            spec::ParallelConfig config = split;
            config.set_micro_batch_size(mbs);
            config.set_virtual_pipeline_stages(vpp);
            config.set_schedule(schedule);
            config.set_sequence_parallel(sp);
            config.set_recompute(recompute);
            config.set_zero_stage(zero);
            config.set_overlap_param_gather(c.overlap_param_gather && zero == 1);
            config.set_optimizer_offload(c.optimizer_offload);
            config.set_tp_comm_overlap(
                c.tp_comm_overlap && sp &&
                (hardware.gpus_per_node <= 0 || tp <= hardware.gpus_per_node));
            if (c.megatron_only && spec::framework_for(config) != "megatron-lm") continue;
            try {
              out.push_back(spec::validate_parallel_config(config, model, hardware));
            } catch (const spec::FieldError&) {
              // Not a valid configuration: validate_parallel_config() is the judge.
            }
          }
        }
      }
    }
  }
}

}  // namespace

std::vector<spec::ParallelConfig> enumerate_configs(const spec::ModelSpec& model,
                                                    const spec::Hardware& hardware, int64_t gpus,
                                                    int64_t gbs, const Constraints& c) {
  std::vector<spec::ParallelConfig> out;
  if (gpus < 1 || gbs < 1) return out;
  const int64_t layers = model.num_layers();
  // Quick rejections of values validation would refuse, so that few exceptions are thrown (the
  // brute-force test guards that these never drop a valid config).
  const int64_t heads = model.num_attention_heads();
  const int64_t kv_heads = model.num_kv_heads() == 0 ? heads : model.num_kv_heads();
  const int64_t ffn =
      model.ffn_hidden_size() == 0 ? 4 * model.hidden_size() : model.ffn_hidden_size();
  auto splits_over_tp = [&](int64_t tp) {
    return heads > 0 && heads % tp == 0 && kv_heads % tp == 0 && ffn % tp == 0;
  };

  spec::ParallelConfig base;
  base.set_num_gpus(gpus);
  base.set_global_batch_size(gbs);
  base.set_overlap_dp_comm(true);
  base.set_rank_order(spec::TP_DP_PP);
  base.set_attention(c.attention);

  for (int64_t tp : divisors(gpus)) {
    if (!allowed(c.tp, c.max_tp, tp)) continue;
    if (!splits_over_tp(tp)) continue;
    for (int64_t pp : divisors(gpus / tp)) {
      if (!allowed(c.pp, c.max_pp, pp)) continue;
      if (layers > 0 && layers % pp != 0) continue;  // pp x vpp must divide the layers
      for (int64_t cp : divisors(gpus / (tp * pp))) {
        if (!allowed(c.cp, c.max_cp, cp)) continue;
        // Each rank keeps at least kMinCpTokens of a sequence (unless --cp asks otherwise).
        if (!c.cp && cp > 1 && model.seq_length() / cp < kMinCpTokens) continue;
        const int64_t dp = gpus / (tp * pp * cp);
        if (c.dp && *c.dp != dp) continue;
        if (gbs % dp != 0) continue;
        spec::ParallelConfig split = base;
        split.set_tensor_parallel(tp);
        split.set_pipeline_parallel(pp);
        split.set_context_parallel(cp);
        split.set_data_parallel(dp);
        add_configs_of_split(split, model, hardware, c, out);
      }
    }
  }
  return out;
}

std::string config_label(const spec::ParallelConfig& c) {
  std::string s =
      "tp" + std::to_string(c.tensor_parallel()) + " pp" + std::to_string(c.pipeline_parallel()) +
      (c.context_parallel() > 1 ? " cp" + std::to_string(c.context_parallel()) : "") + " dp" +
      std::to_string(c.data_parallel()) + " mbs" + std::to_string(c.micro_batch_size()) + " vpp" +
      std::to_string(c.virtual_pipeline_stages()) + " " + spec::schedule_word(c.schedule());
  if (c.sequence_parallel()) s += " sp";
  s += std::string(" recompute=") + spec::recompute_word(c.recompute());
  s += " zero" + std::to_string(c.zero_stage());
  return s;
}

}  // namespace mpsim::sweep
