// run_sweep(): ranking order and its independence of the thread count, pruning by the closed
// forms against the memory model, and the bookkeeping of counts and progress.
#include "simulator/sweep/sweep.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "simulator/graph/model_math.h"
#include "simulator/memory/memory_model.h"
#include "simulator/spec/spec_loader.h"
#include "simulator/sweep/config_space.h"
#include "tests/test_models.h"

namespace mpsim::sweep {
namespace {

spec::ModelSpec toy() { return testing::gpt(8, 256, 8, 128, 1000); }

const spec::Hardware& h100() {
  static const spec::Hardware hw = spec::load_hardware("h100-sxm");
  return hw;
}

// h100 with `bytes` usable and nothing held besides the tensors, so that the closed forms alone
// decide what fits.
spec::Hardware tensors_only(double bytes) {
  spec::Hardware hw = h100();
  hw.usable_memory_bytes = hw.hbm_capacity_bytes = bytes;
  hw.cuda_context_bytes = hw.library_workspace_bytes = hw.nccl_communicator_bytes = 0;
  hw.allocator_fragmentation = 0;
  return hw;
}

// A few hundred configs of the toy model: enough to exercise threads, quick to simulate.
std::vector<spec::ParallelConfig> small_space() {
  Constraints c;
  c.recompute = spec::RECOMPUTE_NONE;
  c.max_mbs = 4;
  return enumerate_configs(toy(), h100(), 8, 16, c);
}

int64_t pruned_total(const SweepResult& r) {
  int64_t n = 0;
  for (const auto& [reason, count] : r.pruned) n += count;
  return n;
}

TEST(Sweep, RankingIsSortedAndIndependentOfThreads) {
  const auto configs = small_space();
  ASSERT_GT(configs.size(), 20u);
  SweepOptions one, three;
  one.threads = 1;
  three.threads = 3;
  const SweepResult a = run_sweep(toy(), h100(), configs, one);
  const SweepResult b = run_sweep(toy(), h100(), configs, three);
  ASSERT_EQ(a.rows.size(), b.rows.size());
  ASSERT_FALSE(a.rows.empty());
  for (size_t i = 0; i < a.rows.size(); ++i) {
    EXPECT_EQ(a.rows[i].config.SerializeAsString(), b.rows[i].config.SerializeAsString()) << i;
    EXPECT_EQ(a.rows[i].result.iteration_time_s, b.rows[i].result.iteration_time_s) << i;
    EXPECT_EQ(a.rows[i].config.SerializeAsString(), a.rows[i].result.config.SerializeAsString());
  }
  for (size_t i = 1; i < a.rows.size(); ++i) {
    const auto& prev = a.rows[i - 1];
    const auto& cur = a.rows[i];
    EXPECT_TRUE(prev.result.iteration_time_s < cur.result.iteration_time_s ||
                (prev.result.iteration_time_s == cur.result.iteration_time_s &&
                 config_key(prev.config) < config_key(cur.config)))
        << "rows " << i - 1 << " and " << i << " out of order";
  }
  EXPECT_EQ(a.pruned, b.pruned);
  EXPECT_EQ(a.enumerated, static_cast<int64_t>(configs.size()));
  EXPECT_EQ(a.enumerated, static_cast<int64_t>(a.rows.size()) + pruned_total(a));
}

// Flash attention keeps no s x s scores: at a capacity that splits the unfused space, every layout
// the unfused core fits also fits with flash, and some only fit with flash.
TEST(Sweep, FlashAttentionFitsWhatTheUnfusedCoreFitsAndMore) {
  Constraints flash_space;
  flash_space.recompute = spec::RECOMPUTE_NONE;
  flash_space.max_mbs = 4;
  Constraints unfused_space = flash_space;
  unfused_space.attention = spec::ATTENTION_UNFUSED;
  const auto flash = enumerate_configs(toy(), h100(), 8, 16, flash_space);
  const auto unfused = enumerate_configs(toy(), h100(), 8, 16, unfused_space);
  ASSERT_EQ(flash.size(), unfused.size());
  const graph::ModelDims dims = graph::model_dims(toy());
  double lo = 1e300, hi = 0;
  for (const auto& c : unfused) {
    lo = std::min(lo, memory::closed_form_peak_bytes(dims, c));
    hi = std::max(hi, memory::closed_form_peak_bytes(dims, c));
  }
  const spec::Hardware small = tensors_only((lo + hi) / 2);
  auto kept = [&](const std::vector<spec::ParallelConfig>& configs) {
    std::set<std::string> labels;
    for (const SweepRow& row : run_sweep(toy(), small, configs, {}).rows)
      labels.insert(config_label(row.config));
    return labels;
  };
  const std::set<std::string> with_flash = kept(flash), with_unfused = kept(unfused);
  for (const std::string& label : with_unfused) EXPECT_EQ(with_flash.count(label), 1u) << label;
  EXPECT_GT(with_flash.size(), with_unfused.size());
}

TEST(Sweep, PrunesExactlyTheConfigsThatDoNotFit) {
  const auto configs = small_space();
  const graph::ModelDims dims = graph::model_dims(toy());
  // A capacity between the smallest and the largest closed-form peak splits the space.
  double lo = 1e300, hi = 0;
  for (const auto& c : configs) {
    const double peak = memory::closed_form_peak_bytes(dims, c);
    lo = std::min(lo, peak);
    hi = std::max(hi, peak);
  }
  ASSERT_LT(lo, hi);
  const spec::Hardware small = tensors_only((lo + hi) / 2);
  const SweepResult r = run_sweep(toy(), small, configs, {});
  std::set<std::string> kept;
  for (const SweepRow& row : r.rows) {
    kept.insert(row.config.SerializeAsString());
    EXPECT_LE(memory::closed_form_peak_bytes(dims, row.config), small.hbm_capacity_bytes);
    if (row.result.peak_memory_bytes) {
      EXPECT_LE(static_cast<double>(*row.result.peak_memory_bytes), small.hbm_capacity_bytes);
    }
  }
  int64_t over = 0;
  for (const auto& c : configs) {
    if (kept.count(c.SerializeAsString())) continue;
    const double peak = memory::closed_form_peak_bytes(dims, c);
    if (peak > small.hbm_capacity_bytes) ++over;
  }
  int64_t closed_form_pruned = 0;
  for (const char* reason : {kModelStateExceedsMemory, kActivationsExceedMemory}) {
    auto it = r.pruned.find(reason);
    if (it != r.pruned.end()) closed_form_pruned += it->second;
  }
  EXPECT_GT(closed_form_pruned, 0);
  EXPECT_EQ(closed_form_pruned, over);
  EXPECT_EQ(r.simulated, r.enumerated - closed_form_pruned);
  // Pruned configs really exceed memory: simulated op by op (no folding), their timeline peaks
  // are over the capacity too.
  int64_t checked = 0;
  for (const auto& c : configs) {
    if (kept.count(c.SerializeAsString())) continue;
    const report::SimulationResult simulated = simulation::simulate(toy(), small, c);
    ASSERT_TRUE(simulated.peak_memory_bytes.has_value());
    EXPECT_GT(static_cast<double>(*simulated.peak_memory_bytes), small.hbm_capacity_bytes)
        << config_label(c);
    EXPECT_FALSE(simulated.fits_memory);
    ++checked;
  }
  EXPECT_EQ(checked, over);
}

// What the GPU holds besides the tensors counts: at a capacity just above a config's tensors it
// fits with no overheads, and not with the runtime and fragmentation; a headroom does the same.
TEST(Sweep, RuntimeMemoryFragmentationAndHeadroomCount) {
  Constraints one;
  one.tp = 2, one.pp = 2, one.mbs = 1, one.sp = false, one.zero = 0, one.vpp = 1;
  one.schedule = spec::ONE_F_ONE_B, one.recompute = spec::RECOMPUTE_NONE;
  const auto configs = enumerate_configs(toy(), h100(), 8, 16, one);
  ASSERT_EQ(configs.size(), 1u);
  const double tensors = memory::closed_form_peak_bytes(graph::model_dims(toy()), configs[0]);
  spec::Hardware hw = tensors_only(tensors * 1.01);
  EXPECT_EQ(run_sweep(toy(), hw, configs, {}).rows.size(), 1u);
  SweepOptions headroom;
  headroom.memory_headroom = 0.02;
  EXPECT_EQ(run_sweep(toy(), hw, configs, headroom).rows.size(), 0u);
  hw.allocator_fragmentation = 0.02;
  EXPECT_EQ(run_sweep(toy(), hw, configs, {}).rows.size(), 0u);
  hw.allocator_fragmentation = 0;
  hw.cuda_context_bytes = 0.02 * tensors;
  const SweepResult r = run_sweep(toy(), hw, configs, {});
  EXPECT_EQ(r.rows.size(), 0u);
  EXPECT_EQ(r.pruned.at(kActivationsExceedMemory), 1);
}

TEST(Sweep, ModelStateReasonWhenNothingFits) {
  const spec::Hardware tiny = tensors_only(1024);  // smaller than any model state
  const auto configs = small_space();
  const SweepResult r = run_sweep(toy(), tiny, configs, {});
  EXPECT_TRUE(r.rows.empty());
  EXPECT_EQ(r.simulated, 0);
  ASSERT_EQ(r.pruned.size(), 1u);
  EXPECT_EQ(r.pruned.at(kModelStateExceedsMemory), static_cast<int64_t>(configs.size()));
}

TEST(Sweep, ProgressCountsEverySimulation) {
  Constraints c;
  c.recompute = spec::RECOMPUTE_NONE;
  c.zero = 0;
  c.tp = 2;
  const auto configs = enumerate_configs(toy(), h100(), 8, 16, c);
  int64_t calls = 0, last = 0, total_seen = -1;
  SweepOptions options;
  options.threads = 2;
  options.progress = [&](int64_t done, int64_t total) {
    ++calls;
    last = std::max(last, done);
    total_seen = total;
  };
  const SweepResult r = run_sweep(toy(), h100(), configs, options);
  EXPECT_EQ(calls, r.simulated);
  EXPECT_EQ(last, r.simulated);
  EXPECT_EQ(total_seen, r.simulated);
}

TEST(Sweep, EmptyInput) {
  const SweepResult r = run_sweep(toy(), h100(), {}, {});
  EXPECT_EQ(r.enumerated, 0);
  EXPECT_EQ(r.simulated, 0);
  EXPECT_TRUE(r.rows.empty());
  EXPECT_TRUE(r.pruned.empty());
}

}  // namespace
}  // namespace mpsim::sweep
