// The numbers of the base profile replaced by fitted ones: kernel efficiencies from the best
// measured GEMM, attention and streaming rates, and the NVLink bandwidth and latency from the
// alpha-beta fit of the 2-GPU all-reduce. See calibrate_profile.h.
#include <algorithm>
#include <cmath>

#include "calibration/fit/fit_state.h"
#include "common/text.h"
#include "simulator/cost/calibrated_tables.h"
#include "simulator/cost/collective_traits.h"

namespace mpsim::calibration::fit {
namespace {

const spec::CalibratedTable* find_table(const spec::HardwareProfile& profile,
                                        std::string_view name) {
  for (const auto& t : profile.calibrated()) {
    if (t.op() == name) return &t;
  }
  return nullptr;
}

// Sets a fraction Quantity from the best of `candidates` (value, description, sources) over
// `reference`; returns whether it was set.
struct Best {
  double value = 0;  // the measured rate
  std::string where;
  std::set<int64_t> sources;
};
bool set_fraction(FitState& f, spec::Quantity* q, const std::string& field, const Best& best,
                  double reference, const std::string& rate_text,
                  const std::string& reference_text) {
  if (!(best.value > 0)) return false;
  const double fraction = significant(best.value / reference, 4);
  if (fraction > 1) {
    f.report.notes.push_back(field + ": the best measurement (" + rate_text + ", " + best.where +
                             ") exceeds " + reference_text + "; the base's value is kept");
    return false;
  }
  f.report.fitted.push_back(field + " = " + common::shortest(fraction) + " (base " +
                            common::shortest(q->value()) + " " + q->unit() + ")");
  q->set_value(fraction);
  q->set_unit("fraction");
  q->set_source(measured_on(f, best.sources) + ": best " + rate_text + " (" + best.where +
                ") over " + reference_text);
  return true;
}

Best best_throughput(FitState& f, const spec::HardwareProfile& profile,
                     const std::vector<std::string_view>& tables, cost::WorkFunction work) {
  Best best;
  for (std::string_view name : tables) {
    const spec::CalibratedTable* t = find_table(profile, name);
    if (t == nullptr) continue;
    for (const auto& p : t->points()) {
      const std::vector<double> keys(p.key().begin(), p.key().end());
      const double rate = work(keys) / p.seconds();
      if (rate > best.value) {
        best.value = rate;
        best.where = std::string(name) + " " + keys_text(*t, p);
      }
    }
    for (const CalibrationMeasurement& m : f.data.measurements) {
      if (m.range.table == name) best.sources.insert(m.database);
    }
  }
  return best;
}

// efficiency.comm_interference: the mean slowdown of the interference GEMM beside NCCL
// all-reduces over the same GEMM alone right before it, less one.
void fit_interference(FitState& f, spec::KernelEfficiency& e, std::vector<std::string>& replaced) {
  double sum = 0;
  int count = 0;
  std::set<int64_t> sources;
  std::string where;
  for (const InterferencePair& pair : interference_pairs(f)) {
    if (pair.alone == nullptr || !(pair.with->seconds.compute > 0)) continue;
    sum += pair.slowdown();
    ++count;
    sources.insert(pair.with->database);
    const std::vector<int64_t>& k = pair.measurement->range.keys;
    where = std::to_string(k[0]) + "x" + std::to_string(k[1]) + "x" + std::to_string(k[2]);
  }
  if (count == 0) return;
  const double fraction = std::max(0.0, significant(sum / count - 1, 3));
  spec::Quantity* q = e.mutable_comm_interference();
  f.report.fitted.push_back("efficiency.comm_interference = " + common::shortest(fraction) +
                            (e.has_comm_interference()
                                 ? " (base " + common::shortest(q->value()) + " " + q->unit() + ")"
                                 : std::string(" (base: none)")));
  q->set_value(fraction);
  q->set_unit("fraction");
  q->set_source(measured_on(f, sources) + ": the bf16 GEMM " + where + " (" +
                std::string(kInterferenceGemmTable) + ") beside NCCL all-reduces on another " +
                "stream took x" + common::fixed(sum / count, 3) + " its time alone right before (" +
                std::to_string(count) + (count == 1 ? " pair" : " pairs") + ")");
  replaced.emplace_back("efficiency.comm_interference");
}

}  // namespace

std::vector<std::string> fit_efficiencies(FitState& f, spec::HardwareProfile& profile) {
  std::vector<std::string> replaced;
  const double peak = f.base_hw.peak_bf16_flops;
  const std::string peak_text = common::fixed(peak / 1e12, 1) + " TFLOP/s dense bf16 peak";
  spec::KernelEfficiency* e = profile.mutable_efficiency();
  const Best gemm = best_throughput(
      f, profile, {cost::kGemmForwardTable, cost::kGemmDgradTable, cost::kGemmWgradTable},
      cost::gemm_flops);
  const double base_gemm_max = e->gemm_max().value();
  if (set_fraction(f, e->mutable_gemm_max(), "efficiency.gemm_max", gemm, peak,
                   "GEMM " + common::fixed(gemm.value / 1e12, 1) + " TFLOP/s",
                   "the " + peak_text)) {
    replaced.emplace_back("efficiency.gemm_max");
    // Without FP8 measurements the FP8 GEMMs keep the base's ratio to the bf16 ones.
    const bool fp8_measured = find_table(profile, cost::kGemmFp8ForwardTable) != nullptr ||
                              find_table(profile, cost::kGemmFp8DgradTable) != nullptr ||
                              find_table(profile, cost::kGemmFp8WgradTable) != nullptr;
    if (!fp8_measured && e->has_gemm_max_fp8() && base_gemm_max > 0) {
      spec::Quantity* q = e->mutable_gemm_max_fp8();
      const double ratio = q->value() / base_gemm_max;
      q->set_value(significant(e->gemm_max().value() * ratio, 3));
      q->set_source("the fitted gemm_max " + common::shortest(e->gemm_max().value()) + " x " +
                    common::shortest(significant(ratio, 3)) +
                    ", the base profile's FP8-to-bf16 ratio (" + q->source() + ")");
      f.report.fitted.push_back("efficiency.gemm_max_fp8 = " + common::shortest(q->value()) +
                                " (gemm_max x the base's ratio)");
      replaced.emplace_back("efficiency.gemm_max_fp8");
    }
  }
  const Best fp8 = best_throughput(
      f, profile, {cost::kGemmFp8ForwardTable, cost::kGemmFp8DgradTable, cost::kGemmFp8WgradTable},
      cost::gemm_flops);
  if (f.base_hw.peak_fp8_flops > 0 &&
      set_fraction(
          f, e->mutable_gemm_max_fp8(), "efficiency.gemm_max_fp8", fp8, f.base_hw.peak_fp8_flops,
          "FP8 GEMM " + common::fixed(fp8.value / 1e12, 1) + " TFLOP/s",
          "the " + common::fixed(f.base_hw.peak_fp8_flops / 1e12, 1) + " TFLOP/s dense FP8 peak")) {
    replaced.emplace_back("efficiency.gemm_max_fp8");
  }
  Best attention =
      best_throughput(f, profile, {cost::kAttentionForwardTable}, cost::attention_forward_flops);
  const Best backward =
      best_throughput(f, profile, {cost::kAttentionBackwardTable}, cost::attention_backward_flops);
  if (backward.value > attention.value) attention = backward;
  if (set_fraction(f, e->mutable_attention_max(), "efficiency.attention_max", attention, peak,
                   "attention " + common::fixed(attention.value / 1e12, 1) +
                       " TFLOP/s (4 bh s^2 d forward, twice that backward)",
                   "the " + peak_text)) {
    replaced.emplace_back("efficiency.attention_max");
  }
  Best flash = best_throughput(f, profile, {cost::kFlashForwardTable}, cost::flash_forward_flops);
  const Best flash_backward =
      best_throughput(f, profile, {cost::kFlashBackwardTable}, cost::flash_backward_flops);
  if (flash_backward.value > flash.value) flash = flash_backward;
  if (set_fraction(f, e->mutable_flash_attention_max(), "efficiency.flash_attention_max", flash,
                   peak,
                   "flash attention " + common::fixed(flash.value / 1e12, 1) +
                       " TFLOP/s (2 bh s (s + 1) d forward, 2.5 times that backward)",
                   "the " + peak_text)) {
    replaced.emplace_back("efficiency.flash_attention_max");
  }
  // Streaming bandwidth: the largest element-wise size (points are sorted), whose traffic is
  // far above the L2 cache (50 MB on H100); smaller sizes are partly served from it.
  Best memory;
  if (const spec::CalibratedTable* t = find_table(profile, cost::kElementwiseTable)) {
    const spec::CalibratedPoint& p = t->points(t->points_size() - 1);
    memory.value = p.key(0) / p.seconds();
    memory.where = std::string(cost::kElementwiseTable) + " " + keys_text(*t, p) +
                   ", the largest size measured";
    for (const CalibrationMeasurement& m : f.data.measurements) {
      if (m.range.table == cost::kElementwiseTable) memory.sources.insert(m.database);
    }
  }
  if (set_fraction(
          f, e->mutable_memory_bound(), "efficiency.memory_bound", memory,
          f.base_hw.hbm_bytes_per_s,
          "element-wise streaming bandwidth " + common::fixed(memory.value / 1e9, 1) + " GB/s",
          "the " + common::fixed(f.base_hw.hbm_bytes_per_s / 1e9, 0) + " GB/s HBM bandwidth")) {
    replaced.emplace_back("efficiency.memory_bound");
  }
  fit_interference(f, *e, replaced);
  return replaced;
}

// node.nvlink_bandwidth and nvlink_latency from the 2-GPU all-reduce, where measured; the
// fields set are added to `replaced`.
void fit_nvlink(FitState& f, spec::HardwareProfile& profile, std::vector<std::string>& replaced) {
  const spec::CalibratedTable* t = find_table(profile, cost::kAllReduceTable);
  if (t == nullptr) return;
  constexpr int n = 2;
  std::vector<cost::SizeTime> samples;
  for (const auto& p : t->points()) {
    if (p.key(0) == n) samples.push_back({p.key(1), p.seconds()});
  }
  if (samples.size() < 2) return;
  cost::AlphaBeta fit;
  try {
    fit = cost::fit_alpha_beta(samples, "allreduce.nvlink (group_size 2)");
  } catch (const std::invalid_argument& e) {
    f.report.notes.push_back(std::string(e.what()) + "; node.nvlink_* kept from the base");
    return;
  }
  // The ring all-reduce's traits: share(n) = 2(n-1)/n (nccl-tests' bus-bandwidth factor) and
  // steps(n) = 2(n-1); at n = 2 they are 1 and 2, exact in floating point.
  const cost::CollectiveTraits& all_reduce = cost::collective_traits(graph::OpKind::kAllReduce);
  const double bus = fit.beta_bytes_per_s * all_reduce.share(n);
  const double step = fit.alpha_s / all_reduce.steps(n);
  std::set<int64_t> sources;
  for (const CalibrationMeasurement& m : f.data.measurements) {
    if (m.range.table == cost::kAllReduceTable && m.range.keys[0] == 2) {
      sources.insert(m.database);
    }
  }
  const std::string how = measured_on(f, sources) +
                          ": alpha-beta fit t(S) = alpha + S/beta of the 2-GPU NCCL "
                          "all-reduce over " +
                          std::to_string(samples.size()) + " sizes " +
                          common::shortest(samples.front().bytes) + " to " +
                          common::shortest(samples.back().bytes) +
                          " bytes (weighted by 1/t^2, rms relative residual " +
                          common::fixed(100 * fit.rms_relative_residual, 1) +
                          " %): alpha = " + common::fixed(fit.alpha_s * 1e6, 2) +
                          " us, beta = " + common::fixed(fit.beta_bytes_per_s / 1e9, 1) + " GB/s";
  spec::NodeSpec* node = profile.mutable_node();
  f.report.fitted.push_back("node.nvlink_bandwidth = " + common::fixed(bus / 1e9, 1) +
                            " GB/s (base " + common::shortest(node->nvlink_bandwidth().value()) +
                            " " + node->nvlink_bandwidth().unit() + ")");
  node->mutable_nvlink_bandwidth()->set_value(significant(bus / 1e9, 4));
  node->mutable_nvlink_bandwidth()->set_unit("GB/s");
  node->mutable_nvlink_bandwidth()->set_source(
      how + "; bus bandwidth = beta x 2(n-1)/n with n = 2 (nccl-tests' busBw)");
  replaced.emplace_back("node.nvlink_bandwidth");
  if (step > 0) {
    f.report.fitted.push_back("node.nvlink_latency = " + common::fixed(step * 1e6, 2) +
                              " us (base " + common::shortest(node->nvlink_latency().value()) +
                              " " + node->nvlink_latency().unit() + ")");
    node->mutable_nvlink_latency()->set_value(significant(step * 1e6, 3));
    node->mutable_nvlink_latency()->set_unit("us");
    node->mutable_nvlink_latency()->set_source(
        how +
        "; per-step latency = alpha / (2(n-1)) with n = 2 (the ring all-reduce's "
        "2(n-1) steps)");
    replaced.emplace_back("node.nvlink_latency");
  } else {
    f.report.notes.push_back(
        "node.nvlink_latency: the all-reduce fit's alpha is 0 (latency "
        "below the data's resolution); the base's value is kept");
  }
}

}  // namespace mpsim::calibration::fit
