// Measurements into the points of each calibrated table: which table each measurement feeds,
// how its keys convert (the memory ops' bytes moved per byte of the bench's tensor), and what each
// table holds (its description, part of its provenance). See calibrate_profile.h.
#include <algorithm>
#include <cmath>

#include "calibration/fit/fit_state.h"
#include "common/text.h"

namespace mpsim::calibration::fit {
namespace {

// Adds one point to one table; whether it was added.
bool add_to(FitState& f, std::string_view name, const std::vector<std::string>& key_names,
            const std::vector<double>& keys, double seconds, const CalibrationMeasurement& m,
            std::string_view part) {
  if (!(seconds > 0) || !std::isfinite(seconds)) {
    f.report.notes.push_back(
        "range " + m.text + ": no " + (part.empty() ? "" : std::string(part) + " ") +
        "kernels were projected onto it; point dropped from " + std::string(name));
    return false;
  }
  auto [it, inserted] = f.builds.try_emplace(std::string(name));
  TableBuild& build = it->second;
  if (inserted) {
    build.table.set_op(std::string(name));
    for (const std::string& k : key_names) build.table.add_key_names(k);
    build.what = table_description(name);
  }
  // Two measurements at one key (a forward and a backward loss point can meet): the first
  // stays.
  for (const spec::CalibratedPoint& q : build.table.points()) {
    if (std::equal(q.key().begin(), q.key().end(), keys.begin(), keys.end())) {
      f.report.notes.push_back("range " + m.text + ": table " + std::string(name) +
                               " already has a point at " + keys_text(build.table, q) +
                               "; point dropped");
      return false;
    }
  }
  spec::CalibratedPoint* p = build.table.add_points();
  for (double k : keys) p->add_key(k);
  // Seven significant digits: below the kernel clock's resolution (1 ns over 5 repetitions)
  // for every time above 2 us, and short in the file.
  p->set_seconds(significant(seconds, 7));
  build.sources.insert(m.database);
  return true;
}

// Adds the point to table `name`, and to its exact table where it has one.
void add_point(FitState& f, std::string_view name, const std::vector<std::string>& key_names,
               const std::vector<double>& keys, double seconds, const CalibrationMeasurement& m,
               std::string_view part) {
  if (!add_to(f, name, key_names, keys, seconds, m, part)) return;
  if (f.info.listed_ranges.contains(m.text)) f.builds[std::string(name)].listed.insert(keys);
  if (has_exact_table(name))
    add_to(f, cost::exact_table_name(name), key_names, keys, seconds, m, part);
}

}  // namespace

// Tables whose points also go to `<table>.exact`: the ones the models' exact shapes are
// measured for (GEMMs by layout, attention, collectives).
bool has_exact_table(std::string_view name) {
  return name == cost::kGemmForwardTable || name == cost::kGemmDgradTable ||
         name == cost::kGemmWgradTable || name == cost::kGemmFp8ForwardTable ||
         name == cost::kGemmFp8DgradTable || name == cost::kGemmFp8WgradTable ||
         name == cost::kAttentionForwardTable || name == cost::kAttentionBackwardTable ||
         name == cost::kFlashForwardTable || name == cost::kFlashBackwardTable ||
         name == cost::kAllReduceTable || name == cost::kAllGatherTable ||
         name == cost::kReduceScatterTable || name == cost::kSendTable;
}

// The order tables are written in.
const std::vector<std::string_view>& table_order() {
  static const std::vector<std::string_view> kOrder = {cost::kGemmTable,
                                                       cost::kGemmForwardTable,
                                                       cost::kGemmDgradTable,
                                                       cost::kGemmWgradTable,
                                                       cost::kGemmFp8ForwardTable,
                                                       cost::kGemmFp8DgradTable,
                                                       cost::kGemmFp8WgradTable,
                                                       cost::kAttentionForwardTable,
                                                       cost::kAttentionBackwardTable,
                                                       cost::kFlashForwardTable,
                                                       cost::kFlashBackwardTable,
                                                       cost::kNormTable,
                                                       cost::kNormForwardTable,
                                                       cost::kNormBackwardTable,
                                                       cost::kElementwiseTable,
                                                       cost::kFp8CastTable,
                                                       cost::kLossTable,
                                                       cost::kOptimizerTable,
                                                       cost::kAllReduceTable,
                                                       cost::kAllGatherTable,
                                                       cost::kReduceScatterTable,
                                                       cost::kSendTable,
                                                       kSoftmaxTable,
                                                       kInterferenceGemmTable};
  return kOrder;
}

std::string table_description(std::string_view name) {
  const std::string common =
      "; seconds = issue slots (kernel time plus the launch gap before it, CUPTI) of the "
      "range's kernels per repetition";
  if (name.starts_with("gemm.fp8.")) {
    const std::string layout(name.substr(std::string_view("gemm.fp8.").size()));
    return "cuBLASLt FP8 GEMM through executor::Fp8Gemm (Transformer Engine's recipe: E4M3, the "
           "gradient E5M2; fp32 accumulation), " +
           layout + " layout; m, n, k as the bf16 tables" + common;
  }
  if (name.starts_with("gemm.bf16.")) {
    const std::string layout(name.substr(std::string_view("gemm.bf16.").size()));
    return "cuBLAS bf16 GEMM through executor::Gemm, " + layout +
           " layout; m, n, k are the GEMM's own sizes as the simulator's graph names its " +
           layout + " GEMMs" + common;
  }
  if (name.starts_with("attention.flash.")) {
    return std::string("cuDNN's fused causal attention through executor::FlashAttention, ") +
           (name == cost::kFlashBackwardTable ? "backward" : "forward") +
           ", batch_heads = micro-batch x query heads, group = query heads per key/value head "
           "(the queries packed, keys and values interleaved as the executor's rows)" +
           common;
  }
  if (name.starts_with("attention.")) {
    return std::string("the executor's attention core (batched GEMMs and causal softmax, ") +
           (name == cost::kAttentionBackwardTable ? "backward" : "forward") +
           "), batch_heads = micro-batch x heads" + common;
  }
  if (name == cost::kNormForwardTable) {
    return "LayerNorm forward (norm_forward kernels) on [rows, 4096] bf16; bytes = 2 x the "
           "tensor (the graph's forward norm bytes)" +
           common + " of those kernels";
  }
  if (name == cost::kNormBackwardTable) {
    return "LayerNorm backward (norm_backward kernels) on [rows, 4096] bf16; bytes = 3 x the "
           "tensor (the graph's backward norm bytes)" +
           common + " of those kernels";
  }
  if (name == cost::kNormTable) {
    return "LayerNorm on [rows, 4096] bf16, split by kernel: forward points at bytes = 2 x the "
           "tensor (norm_forward kernels), backward points at 3 x (norm_backward kernels)" +
           common + " of those kernels";
  }
  if (name == cost::kElementwiseTable) {
    return "bias_gelu_forward on [rows, 4096] bf16; bytes = 2 x the tensor (read and written "
           "once)" +
           common;
  }
  if (name == cost::kFp8CastTable) {
    return "quantize_fp8 (E4M3, with amax) on [rows, 4096] bf16 into its FP8 copy and its "
           "transpose; bytes = 2 x the bf16 tensor (read it, write two one-byte copies)" +
           common;
  }
  if (name == cost::kLossTable) {
    return "the executor's vocabulary-parallel cross-entropy on one GPU (TP = 1) over logits "
           "[tokens, vocab] bf16: forward points (cross_entropy_partial + cross_entropy_combine) "
           "at bytes = 2 tokens vocab + 4 tokens, backward points (cross_entropy_backward, in "
           "place) at bytes = 4 tokens vocab, the graph's Op::bytes of its forward and backward "
           "loss ops; the passes stream at different rates, so times may zigzag between forward "
           "and backward points" +
           common;
  }
  if (name == kSoftmaxTable) {
    return "the executor's causal_softmax_forward alone, in place on scores [bh, s, s] bf16 (the "
           "attention core's softmax); bytes = the scores tensor, 2 bh s^2 (the kernel reads the "
           "kept lower triangle and writes the whole tensor); not read by the cost model (the "
           "attention tables price the executor's softmax)" +
           common;
  }
  if (name == cost::kOptimizerTable) {
    return "adamw_step over P fp32 parameters with the bf16 copy; bytes = 30 P (the graph's "
           "kAdamBytesPerParam)" +
           common;
  }
  if (name == kInterferenceGemmTable) {
    return "the fwd GEMM m x n x k on GPU 0 while NCCL all-reduces run beside it on another "
           "stream; seconds = issue slots of the GEMM's (non-NCCL) kernels per repetition";
  }
  return "NCCL " + std::string(name.substr(0, name.find('.'))) +
         " inside one node (bf16, in place), group_size GPUs, bytes as nccl-tests counts them; "
         "seconds = issue slots of the NCCL kernels (CUPTI) per repetition on the group's GPU "
         "whose kernels took least (the others' also hold the wait for it)";
}

void add_measurement(FitState& f, const CalibrationMeasurement& m) {
  const std::vector<int64_t>& k = m.range.keys;
  const std::vector<double> keys(k.begin(), k.end());
  const PartTimes& s = m.seconds;
  switch (m.range.kind) {
    case MeasurementKind::kGemm:
      add_point(f, m.range.table, names(cost::kGemmKeys), keys, s.all, m, "");
      return;
    case MeasurementKind::kAttention:
      if (m.range.table.starts_with("attention.flash.")) {
        add_point(f, m.range.table, names(cost::kFlashKeys), keys, s.all, m, "");
      } else {
        add_point(f, m.range.table, names(cost::kAttentionKeys), keys, s.all, m, "");
      }
      return;
    case MeasurementKind::kMemory: {
      const double b = keys[0];
      const std::vector<std::string> bytes = names(cost::kMemoryKeys);
      if (m.range.table == cost::kNormTable) {
        if (!(s.norm_forward > 0) || !(s.norm_backward > 0)) {
          f.report.notes.push_back("range " + m.text +
                                   ": cannot split into norm_forward and norm_backward kernels; "
                                   "dropped from the memory.norm tables");
          return;
        }
        const double other = s.all - s.norm_forward - s.norm_backward;
        if (other > 1e-3 * s.all) {
          f.report.notes.push_back("range " + m.text + ": " + common::shortest(other) +
                                   " s per repetition of other kernels left out of the norm "
                                   "points");
        }
        add_point(f, cost::kNormForwardTable, bytes, {kNormForwardBytes * b}, s.norm_forward, m,
                  "norm_forward");
        add_point(f, cost::kNormBackwardTable, bytes, {kNormBackwardBytes * b}, s.norm_backward, m,
                  "norm_backward");
      } else if (m.range.table == cost::kElementwiseTable) {
        add_point(f, cost::kElementwiseTable, bytes, {kElementwiseBytes * b}, s.all, m, "");
      } else if (m.range.table == cost::kFp8CastTable) {
        add_point(f, cost::kFp8CastTable, bytes, {kFp8CastBytes * b}, s.all, m, "");
      } else if (m.range.table == cost::kLossTable) {
        // B is already the graph's loss bytes of the range's pass.
        add_point(f, cost::kLossTable, bytes, {b}, s.all, m, "");
        if (m.range.measurement == kLossForwardMeasurement) {
          ++f.loss_forward;
        } else {
          ++f.loss_backward;
        }
      } else if (m.range.table == kSoftmaxTable) {
        add_point(f, kSoftmaxTable, bytes, {b}, s.all, m, "");
      } else {  // optimizer: B / 4 parameters
        add_point(f, cost::kOptimizerTable, bytes, {kAdamBytesPerParam * b / kMasterBytesPerParam},
                  s.all, m, "");
      }
      return;
    }
    case MeasurementKind::kCollective:
      add_point(f, m.range.table, names(cost::kCollectiveKeys), keys, s.nccl, m, "NCCL");
      return;
    case MeasurementKind::kInterference: {
      add_point(f, kInterferenceGemmTable, names(cost::kGemmKeys), keys, s.compute, m, "GEMM");
      f.interference.push_back(&m);
      return;
    }
    case MeasurementKind::kMeta:  // versions, read into the sources
      return;
  }
}

}  // namespace mpsim::calibration::fit
