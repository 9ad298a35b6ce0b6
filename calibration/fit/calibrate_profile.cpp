// Fitting calibration measurements into a HardwareProfile; what is fitted, and how, is in
// calibrate_profile.h.
#include "profiler/calibrate/calibrate_profile.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>

#include "profiler/calibrate/grid_repair.h"
#include "simulator/cost/calibrated_cost.h"
#include "simulator/cost/calibrated_tables.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::profiler {
namespace {

// Bytes each memory op moves per byte of the bench's tensor B (calibration_bench.cu, and the
// graph's counts in simulator/graph/training_graph.cpp).
constexpr double kNormForwardBytes = 2;     // norm_bytes(false): read x, write y
constexpr double kNormBackwardBytes = 3;    // norm_bytes(true): read dy and x, write dx
constexpr double kElementwiseBytes = 2;     // bias_gelu_forward: read x, write y
constexpr double kAdamBytesPerParam = 30;   // the graph's kAdamBytesPerParam
constexpr double kMasterBytesPerParam = 4;  // B = fp32 master weights
// A memory op or collective cannot take longer on fewer bytes; a point slower than this factor
// times the fastest point at a larger size is a measurement artifact (the first collective after
// NCCL's set-up, still warming up) and is dropped. The factor leaves room for noise among the
// latency-bound small sizes, whose times are nearly equal.
constexpr double kArtifactRatio = 1.5;

// Tables written for other uses than the cost model, which lists them as ignored.
bool ignored_by_cost_model(std::string_view name) {
  return name == kInterferenceGemmTable || name == kSoftmaxTable;
}

// Shortest text that reads back as the same double.
std::string num(double x) {
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, result.ptr);
}

std::string fixed(double x, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return buf;
}

// x rounded to `digits` significant digits.
double significant(double x, int digits) {
  if (!(x > 0)) return x;
  const double scale = std::pow(10.0, digits - 1 - static_cast<int>(std::floor(std::log10(x))));
  return std::round(x * scale) / scale;
}

std::string join(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) text += (i ? separator : "") + items[i];
  return text;
}

std::string keys_text(const spec::CalibratedTable& table, const spec::CalibratedPoint& p) {
  std::string text;
  for (int d = 0; d < p.key_size() && d < table.key_names_size(); ++d) {
    text += (d ? ", " : "") + table.key_names(d) + "=" + num(p.key(d));
  }
  return text;
}

template <std::size_t N>
std::vector<std::string> names(const std::array<std::string_view, N>& keys) {
  return {keys.begin(), keys.end()};
}

// One table being built: its points and which databases they came from.
using Keys = std::vector<double>;

struct TableBuild {
  spec::CalibratedTable table;
  std::set<int64_t> sources;
  std::string what;          // what was measured and what the keys and seconds are
  std::set<Keys> listed;     // keys of points measured from the bench's point list
  std::set<Keys> artifacts;  // keys dropped as measurement artifacts (reported once)
};

// Tables whose points also go to `<table>.exact`: the ones the models' exact shapes are
// measured for (GEMMs by layout, attention, collectives).
bool has_exact_table(std::string_view name) {
  return name == cost::kGemmForwardTable || name == cost::kGemmDgradTable ||
         name == cost::kGemmWgradTable || name == cost::kAttentionForwardTable ||
         name == cost::kAttentionBackwardTable || name == cost::kAllReduceTable ||
         name == cost::kAllGatherTable || name == cost::kReduceScatterTable ||
         name == cost::kSendTable;
}

// The order tables are written in.
const std::vector<std::string_view>& table_order() {
  static const std::vector<std::string_view> kOrder = {cost::kGemmTable,
                                                       cost::kGemmForwardTable,
                                                       cost::kGemmDgradTable,
                                                       cost::kGemmWgradTable,
                                                       cost::kAttentionForwardTable,
                                                       cost::kAttentionBackwardTable,
                                                       cost::kNormTable,
                                                       cost::kNormForwardTable,
                                                       cost::kNormBackwardTable,
                                                       cost::kElementwiseTable,
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
  if (name.starts_with("gemm.bf16.")) {
    const std::string layout(name.substr(std::string_view("gemm.bf16.").size()));
    return "cuBLAS bf16 GEMM through executor::Gemm, " + layout +
           " layout; m, n, k are the GEMM's own sizes as the simulator's graph names its " +
           layout + " GEMMs" + common;
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

class Fit {
 public:
  Fit(const CalibrationData& data, const spec::HardwareProfile& base, const CalibrationInfo& info,
      CalibrationReport& report)
      : data_(data), base_(base), info_(info), report_(report) {
    base_hw_ = spec::to_hardware(base, "base profile '" + base.name() + "'");
  }

  spec::HardwareProfile run() {
    for (const CalibrationMeasurement& m : data_.measurements) add_measurement(m);
    std::vector<spec::CalibratedTable> tables;
    for (std::string_view name : table_order()) {
      // Made below from the tables they combine.
      if (name == cost::kGemmTable || name == cost::kNormTable) continue;
      auto it = builds_.find(std::string(name));
      if (it == builds_.end()) continue;
      if (auto table = finish(it->second)) tables.push_back(std::move(*table));
      // Its exact table right after it (written even where the grid table is not).
      auto exact = builds_.find(cost::exact_table_name(name));
      if (exact == builds_.end()) continue;
      if (auto table = finish_exact(exact->second, it->second)) tables.push_back(std::move(*table));
    }
    for (auto& [name, build] : builds_) {
      if (name.ends_with(cost::kExactTableSuffix)) continue;  // placed with their base
      if (std::find(table_order().begin(), table_order().end(), name) == table_order().end()) {
        throw std::logic_error("calibration: table " + name + " has no place in the order");
      }
    }
    if (tables.empty()) {
      throw CalibrationError("no calibrated table could be built from " + sources_text() +
                             (report_.notes.empty() ? "" : ": " + join(report_.notes, "; ")));
    }
    // gemm.bf16: the fwd table, the default for GEMMs of any layout without their own table.
    for (std::size_t i = 0; i < tables.size(); ++i) {
      if (tables[i].op() != cost::kGemmForwardTable) continue;
      spec::CalibratedTable copy = tables[i];
      copy.set_op(std::string(cost::kGemmTable));
      copy.set_provenance(
          "a copy of gemm.bf16.fwd, the default for GEMMs of a layout without its "
          "own table; " +
          tables[i].provenance());
      tables.insert(tables.begin() + static_cast<std::ptrdiff_t>(i), std::move(copy));
      break;
    }
    add_merged_norm_table(tables);

    spec::HardwareProfile profile = base_;
    profile.set_name(info_.profile_name.empty() ? base_.name() + "-measured" : info_.profile_name);
    if (profile.calibrated_size() > 0) {
      report_.notes.push_back("the base profile's " + std::to_string(profile.calibrated_size()) +
                              " calibrated table(s) are replaced");
      profile.clear_calibrated();
    }
    for (spec::CalibratedTable& t : tables) *profile.add_calibrated() = std::move(t);
    std::vector<std::string> replaced = fit_efficiencies(profile);
    fit_nvlink(profile, replaced);
    std::vector<std::string> table_names;
    for (const spec::CalibratedTable& t : profile.calibrated()) table_names.push_back(t.op());
    profile.set_provenance(
        "calibrated " + (info_.date.empty() ? today_utc() : info_.date) +
        (info_.command.empty() ? "" : " by `" + info_.command + "`") + " from measurements on " +
        sources_text() + ": tables " + join(table_names) +
        (replaced.empty() ? "" : "; fitted from them: " + join(replaced)) +
        ". Compute peaks, HBM bandwidth and capacity, kernel launch overhead, gemm_half_dim and "
        "the network remain the base profile's datasheet or assumed values (base '" +
        base_.name() + "': " + base_.provenance() + ")");

    // The whole profile must convert and be accepted by the cost model.
    try {
      const spec::Hardware hw = spec::to_hardware(profile, "calibrated profile");
      cost::make_calibrated_cost_model(hw);
    } catch (const std::exception& e) {
      throw CalibrationError(std::string("internal error: the calibrated profile is refused: ") +
                             e.what());
    }
    return profile;
  }

 private:
  // "1 x NVIDIA H100 80GB HBM3 (host vm) on 2026-11-26, traces/calibration/h100.rank0.sqlite"
  std::string source_text(int64_t index) const {
    const CalibrationSource& s = data_.sources.at(static_cast<std::size_t>(index));
    return s.gpu_summary() + (s.hostname.empty() ? "" : " (host " + s.hostname + ")") + " on " +
           s.date + ", database " + s.path +
           (s.command.empty() ? "" : ", profiled command `" + s.command + "`") + ", " +
           versions_text(s.versions);
  }
  std::string sources_text() const {
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < data_.sources.size(); ++i) {
      parts.push_back(source_text(static_cast<int64_t>(i)));
    }
    return join(parts, "; ");
  }
  // "1 x NVIDIA H100 80GB HBM3 2026-11-26 (traces/calibration/h100.rank0.sqlite)", for sources.
  std::string measured_on(const std::set<int64_t>& indices) const {
    std::vector<std::string> parts;
    for (int64_t i : indices) {
      const CalibrationSource& s = data_.sources.at(static_cast<std::size_t>(i));
      parts.push_back(s.gpu_summary() + " " + s.date + " (" + s.path + ") with " +
                      versions_text(s.versions));
    }
    return "measured on " + join(parts, " and ");
  }

  // Adds the point to table `name`, and to its exact table where it has one.
  void add_point(std::string_view name, const std::vector<std::string>& key_names,
                 const std::vector<double>& keys, double seconds, const CalibrationMeasurement& m,
                 std::string_view part) {
    if (!add_to(name, key_names, keys, seconds, m, part)) return;
    if (info_.listed_ranges.contains(m.text)) builds_[std::string(name)].listed.insert(keys);
    if (has_exact_table(name))
      add_to(cost::exact_table_name(name), key_names, keys, seconds, m, part);
  }

  // Adds one point to one table; whether it was added.
  bool add_to(std::string_view name, const std::vector<std::string>& key_names,
              const std::vector<double>& keys, double seconds, const CalibrationMeasurement& m,
              std::string_view part) {
    if (!(seconds > 0) || !std::isfinite(seconds)) {
      report_.notes.push_back(
          "range " + m.text + ": no " + (part.empty() ? "" : std::string(part) + " ") +
          "kernels were projected onto it; point dropped from " + std::string(name));
      return false;
    }
    auto [it, inserted] = builds_.try_emplace(std::string(name));
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
        report_.notes.push_back("range " + m.text + ": table " + std::string(name) +
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

  void add_measurement(const CalibrationMeasurement& m) {
    const std::vector<int64_t>& k = m.range.keys;
    const std::vector<double> keys(k.begin(), k.end());
    const PartTimes& s = m.seconds;
    switch (m.range.kind) {
      case MeasurementKind::kGemm:
        add_point(m.range.table, names(cost::kGemmKeys), keys, s.all, m, "");
        return;
      case MeasurementKind::kAttention:
        add_point(m.range.table, names(cost::kAttentionKeys), keys, s.all, m, "");
        return;
      case MeasurementKind::kMemory: {
        const double b = keys[0];
        const std::vector<std::string> bytes = names(cost::kMemoryKeys);
        if (m.range.table == cost::kNormTable) {
          if (!(s.norm_forward > 0) || !(s.norm_backward > 0)) {
            report_.notes.push_back("range " + m.text +
                                    ": cannot split into norm_forward and norm_backward kernels; "
                                    "dropped from the memory.norm tables");
            return;
          }
          const double other = s.all - s.norm_forward - s.norm_backward;
          if (other > 1e-3 * s.all) {
            report_.notes.push_back("range " + m.text + ": " + num(other) +
                                    " s per repetition of other kernels left out of the norm "
                                    "points");
          }
          add_point(cost::kNormForwardTable, bytes, {kNormForwardBytes * b}, s.norm_forward, m,
                    "norm_forward");
          add_point(cost::kNormBackwardTable, bytes, {kNormBackwardBytes * b}, s.norm_backward, m,
                    "norm_backward");
        } else if (m.range.table == cost::kElementwiseTable) {
          add_point(cost::kElementwiseTable, bytes, {kElementwiseBytes * b}, s.all, m, "");
        } else if (m.range.table == cost::kLossTable) {
          // B is already the graph's loss bytes of the range's pass.
          add_point(cost::kLossTable, bytes, {b}, s.all, m, "");
          if (m.range.measurement == kLossForwardMeasurement) {
            ++loss_forward_;
          } else {
            ++loss_backward_;
          }
        } else if (m.range.table == kSoftmaxTable) {
          add_point(kSoftmaxTable, bytes, {b}, s.all, m, "");
        } else {  // optimizer: B / 4 parameters
          add_point(cost::kOptimizerTable, bytes, {kAdamBytesPerParam * b / kMasterBytesPerParam},
                    s.all, m, "");
        }
        return;
      }
      case MeasurementKind::kCollective:
        add_point(m.range.table, names(cost::kCollectiveKeys), keys, s.nccl, m, "NCCL");
        return;
      case MeasurementKind::kInterference: {
        add_point(kInterferenceGemmTable, names(cost::kGemmKeys), keys, s.compute, m, "GEMM");
        interference_.push_back(&m);
        return;
      }
      case MeasurementKind::kMeta:  // versions, read into the sources
        return;
    }
  }

  // Sorts, repairs and checks one table; nullopt (with notes) when it cannot be written.
  std::optional<spec::CalibratedTable> finish(TableBuild& build) {
    spec::CalibratedTable& table = build.table;
    const std::string name = table.op();  // a copy: the table is replaced below
    keep_grid_axes(build);
    sort_points(table);
    const bool collective = table.key_names_size() == 2 && table.key_names(0) == "group_size";
    if (collective || table.key_names_size() == 1) build.artifacts = drop_artifacts(table, {});
    if (collective) {
      drop_thin_groups(table);
    } else if (name != kInterferenceGemmTable) {
      for (const std::string& dropped : complete_grid(table)) {
        report_.notes.push_back("table " + name + ": grid incomplete, dropped " + dropped);
      }
      for (int d = 0; d < table.key_names_size() && table.points_size() > 0; ++d) {
        std::set<double> values;
        for (const auto& p : table.points()) values.insert(p.key(d));
        if (values.size() < 2) {
          report_.notes.push_back("table " + name + ": key " + table.key_names(d) +
                                  " has a single measured value (" + num(*values.begin()) +
                                  "); table not written");
          return std::nullopt;
        }
      }
    }
    if (table.points_size() == 0) {
      report_.notes.push_back("table " + name + ": no points left; not written");
      return std::nullopt;
    }
    if (!ignored_by_cost_model(name) && !accepted_by_cost_model(table)) return std::nullopt;
    std::string provenance = build.what + "; " + std::to_string(table.points_size()) +
                             (table.points_size() == 1 ? " point " : " points ") +
                             measured_on(build.sources);
    if (name == kInterferenceGemmTable) provenance += interference_detail();
    if (name == cost::kLossTable) {
      provenance += "; ranges measured: " + std::to_string(loss_forward_) + " forward, " +
                    std::to_string(loss_backward_) + " backward";
    }
    table.set_provenance(provenance);
    return table;
  }

  // The cost model's own checks (key names, grid, fits) on `table` alone; a refusal is noted.
  bool accepted_by_cost_model(const spec::CalibratedTable& table) {
    spec::Hardware hw = base_hw_;
    hw.calibrated = {table};
    try {
      cost::make_calibrated_cost_model(hw);
      return true;
    } catch (const std::invalid_argument& e) {
      report_.notes.push_back(std::string(e.what()) + "; table not written");
      return false;
    }
  }

  // An exact table: every point of its base table's measurements, sorted, a collective's
  // artifacts dropped (those dropped from the base table already reported there); nullopt (with
  // a note) when the cost model refuses it.
  std::optional<spec::CalibratedTable> finish_exact(TableBuild& build, const TableBuild& base) {
    spec::CalibratedTable& table = build.table;
    sort_points(table);
    if (table.key_names_size() == 2 && table.key_names(0) == "group_size")
      drop_artifacts(table, base.artifacts);
    if (!accepted_by_cost_model(table)) return std::nullopt;
    const std::string base_name = base.table.op();
    table.set_provenance(
        "the measured points of " + base_name +
        " at their exact keys (its grid's, and those of "
        "the bench's --points list where it had one: the models' exact shapes), for the cost "
        "model's exact lookup ahead of the grid; " +
        table_description(base_name) + "; " + std::to_string(table.points_size()) +
        (table.points_size() == 1 ? " point " : " points ") + measured_on(build.sources));
    return table;
  }

  // Points measured from the point list whose keys are not all on the grid's axes (the values
  // of the table's unlisted points) leave the grid table: they are in the exact table.
  void keep_grid_axes(TableBuild& build) {
    if (build.listed.empty()) return;
    spec::CalibratedTable& table = build.table;
    std::vector<std::set<double>> axes(static_cast<std::size_t>(table.key_names_size()));
    for (const auto& p : table.points()) {
      if (build.listed.contains(Keys(p.key().begin(), p.key().end()))) continue;
      for (int d = 0; d < p.key_size() && d < table.key_names_size(); ++d)
        axes[static_cast<std::size_t>(d)].insert(p.key(d));
    }
    spec::CalibratedTable kept = table;
    kept.clear_points();
    int off_grid = 0;
    for (const auto& p : table.points()) {
      bool on_axes = true;
      for (int d = 0; d < p.key_size() && d < table.key_names_size(); ++d)
        on_axes = on_axes && axes[static_cast<std::size_t>(d)].contains(p.key(d));
      if (on_axes) {
        *kept.add_points() = p;
      } else {
        ++off_grid;
      }
    }
    if (off_grid > 0) {
      report_.notes.push_back("table " + table.op() + ": " + std::to_string(off_grid) + " of " +
                              std::to_string(build.listed.size()) +
                              " points of the point list lie off the grid's axes; in " +
                              cost::exact_table_name(table.op()) + " only");
    }
    table = std::move(kept);
  }

  static void sort_points(spec::CalibratedTable& table) {
    auto& points = *table.mutable_points();
    std::sort(points.begin(), points.end(),
              [](const spec::CalibratedPoint& a, const spec::CalibratedPoint& b) {
                return std::lexicographical_compare(a.key().begin(), a.key().end(), b.key().begin(),
                                                    b.key().end());
              });
  }

  // memory.norm: the points of memory.norm.fwd and memory.norm.bwd together, before them.
  void add_merged_norm_table(std::vector<spec::CalibratedTable>& tables) {
    auto at = [&](std::string_view name) {
      return std::find_if(tables.begin(), tables.end(),
                          [&](const spec::CalibratedTable& t) { return t.op() == name; });
    };
    const auto forward = at(cost::kNormForwardTable);
    const auto backward = at(cost::kNormBackwardTable);
    if (forward == tables.end() || backward == tables.end()) return;
    spec::CalibratedTable merged = *forward;
    merged.set_op(std::string(cost::kNormTable));
    for (const auto& p : backward->points()) *merged.add_points() = p;
    auto& points = *merged.mutable_points();
    std::sort(points.begin(), points.end(),
              [](const spec::CalibratedPoint& a, const spec::CalibratedPoint& b) {
                return a.key(0) < b.key(0);
              });
    spec::Hardware hw = base_hw_;
    hw.calibrated = {merged};
    try {
      cost::make_calibrated_cost_model(hw);
    } catch (const std::invalid_argument& e) {
      report_.notes.push_back(std::string(e.what()) + "; table not written");
      return;
    }
    merged.set_provenance(
        "the points of memory.norm.fwd (bytes = 2 x the tensor) and "
        "memory.norm.bwd (bytes = 3 x the tensor) together, for a model that "
        "prices norms by bytes alone; the two kernels stream at different "
        "rates, so the times zigzag between forward and backward points. " +
        forward->provenance());
    tables.insert(forward, std::move(merged));
  }

  // Drops the points of a bytes-keyed table (per group size for a collective) that are slower
  // than kArtifactRatio times a point at a larger size.
  // Returns the keys dropped; notes each, except those in `reported`.
  std::set<Keys> drop_artifacts(spec::CalibratedTable& table, const std::set<Keys>& reported) {
    std::set<Keys> dropped;
    const int bytes_key = table.key_names_size() - 1;
    spec::CalibratedTable kept = table;
    kept.clear_points();
    // Points are sorted by (group,) bytes: walk each group from the largest size down.
    std::vector<bool> keep(static_cast<std::size_t>(table.points_size()), true);
    double fastest_larger = 0;
    for (int i = table.points_size() - 1; i >= 0; --i) {
      const spec::CalibratedPoint& p = table.points(i);
      const bool new_group =
          i == table.points_size() - 1 || (bytes_key > 0 && table.points(i + 1).key(0) != p.key(0));
      if (new_group) fastest_larger = 0;
      if (fastest_larger > 0 && p.seconds() > kArtifactRatio * fastest_larger) {
        keep[static_cast<std::size_t>(i)] = false;
        Keys keys(p.key().begin(), p.key().end());
        const bool known = reported.contains(keys);
        dropped.insert(std::move(keys));
        if (!known)
          report_.notes.push_back("table " + table.op() + ": point " + keys_text(table, p) +
                                  " dropped: " + num(p.seconds()) + " s, more than " +
                                  num(kArtifactRatio) + " x the " + num(fastest_larger) +
                                  " s of a larger size (a measurement artifact)");
      }
      fastest_larger = fastest_larger > 0 ? std::min(fastest_larger, p.seconds()) : p.seconds();
    }
    for (int i = 0; i < table.points_size(); ++i) {
      if (keep[static_cast<std::size_t>(i)]) *kept.add_points() = table.points(i);
    }
    table = std::move(kept);
    return dropped;
  }

  // A collective's group with fewer than 2 sizes cannot be interpolated: its points go.
  void drop_thin_groups(spec::CalibratedTable& table) {
    std::map<double, std::set<double>> sizes;
    for (const auto& p : table.points()) sizes[p.key(0)].insert(p.key(1));
    spec::CalibratedTable kept = table;
    kept.clear_points();
    for (const auto& p : table.points()) {
      if (sizes[p.key(0)].size() >= 2) *kept.add_points() = p;
    }
    for (const auto& [group, bytes] : sizes) {
      if (bytes.size() < 2) {
        report_.notes.push_back("table " + table.op() + ": group_size " + num(group) +
                                " has a single measured size; its point dropped");
      }
    }
    table = std::move(kept);
  }

  // The interference measurement against the same GEMM alone, measured right before it.
  std::string interference_detail() const {
    std::string text;
    for (const CalibrationMeasurement* m : interference_) {
      const std::vector<int64_t>& k = m->range.keys;
      const std::string alone_text = "calib/gemm.bf16/fwd/m=" + std::to_string(k[0]) +
                                     ",n=" + std::to_string(k[1]) + ",k=" + std::to_string(k[2]);
      const auto alone =
          std::find_if(data_.measurements.begin(), data_.measurements.end(),
                       [&](const CalibrationMeasurement& a) { return a.text == alone_text; });
      for (const RangeInstance& with : m->instances) {
        text += "; " + keys_text_of(k) + ": " + fixed(with.nccl_kernels_per_repetition, 1) +
                " all-reduce kernels per repetition beside the GEMM";
        if (alone == data_.measurements.end()) continue;
        const RangeInstance* before = nullptr;
        for (const RangeInstance& a : alone->instances) {
          if (a.database == with.database && a.rank == with.rank && a.start_ns < with.start_ns &&
              a.seconds.all > 0 && (before == nullptr || a.start_ns > before->start_ns)) {
            before = &a;
          }
        }
        if (before == nullptr) continue;
        text += ", the GEMM alone right before " + num(significant(before->seconds.all, 7)) +
                " s, so x" + fixed(with.seconds.compute / before->seconds.all, 3) +
                " with the all-reduces";
      }
    }
    return text;
  }
  static std::string keys_text_of(const std::vector<int64_t>& k) {
    return "m=" + std::to_string(k[0]) + ", n=" + std::to_string(k[1]) +
           ", k=" + std::to_string(k[2]);
  }

  const spec::CalibratedTable* find(const spec::HardwareProfile& profile,
                                    std::string_view name) const {
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
  bool set_fraction(spec::Quantity* q, const std::string& field, const Best& best, double reference,
                    const std::string& rate_text, const std::string& reference_text) {
    if (!(best.value > 0)) return false;
    const double fraction = significant(best.value / reference, 4);
    if (fraction > 1) {
      report_.notes.push_back(field + ": the best measurement (" + rate_text + ", " + best.where +
                              ") exceeds " + reference_text + "; the base's value is kept");
      return false;
    }
    report_.fitted.push_back(field + " = " + num(fraction) + " (base " + num(q->value()) + " " +
                             q->unit() + ")");
    q->set_value(fraction);
    q->set_unit("fraction");
    q->set_source(measured_on(best.sources) + ": best " + rate_text + " (" + best.where +
                  ") over " + reference_text);
    return true;
  }

  Best best_throughput(const spec::HardwareProfile& profile,
                       const std::vector<std::string_view>& tables, cost::WorkFunction work) {
    Best best;
    for (std::string_view name : tables) {
      const spec::CalibratedTable* t = find(profile, name);
      if (t == nullptr) continue;
      for (const auto& p : t->points()) {
        const std::vector<double> keys(p.key().begin(), p.key().end());
        const double rate = work(keys) / p.seconds();
        if (rate > best.value) {
          best.value = rate;
          best.where = std::string(name) + " " + keys_text(*t, p);
        }
      }
      for (const CalibrationMeasurement& m : data_.measurements) {
        if (m.range.table == name) best.sources.insert(m.database);
      }
    }
    return best;
  }

  std::vector<std::string> fit_efficiencies(spec::HardwareProfile& profile) {
    std::vector<std::string> replaced;
    const double peak = base_hw_.peak_bf16_flops;
    const std::string peak_text = fixed(peak / 1e12, 1) + " TFLOP/s dense bf16 peak";
    spec::KernelEfficiency* e = profile.mutable_efficiency();
    const Best gemm = best_throughput(
        profile, {cost::kGemmForwardTable, cost::kGemmDgradTable, cost::kGemmWgradTable},
        cost::gemm_flops);
    if (set_fraction(e->mutable_gemm_max(), "efficiency.gemm_max", gemm, peak,
                     "GEMM " + fixed(gemm.value / 1e12, 1) + " TFLOP/s", "the " + peak_text)) {
      replaced.emplace_back("efficiency.gemm_max");
    }
    Best attention =
        best_throughput(profile, {cost::kAttentionForwardTable}, cost::attention_forward_flops);
    const Best backward =
        best_throughput(profile, {cost::kAttentionBackwardTable}, cost::attention_backward_flops);
    if (backward.value > attention.value) attention = backward;
    if (set_fraction(e->mutable_attention_max(), "efficiency.attention_max", attention, peak,
                     "attention " + fixed(attention.value / 1e12, 1) +
                         " TFLOP/s (4 bh s^2 d forward, twice that backward)",
                     "the " + peak_text)) {
      replaced.emplace_back("efficiency.attention_max");
    }
    // Streaming bandwidth: the largest element-wise size (points are sorted), whose traffic is
    // far above the L2 cache (50 MB on H100); smaller sizes are partly served from it.
    Best memory;
    if (const spec::CalibratedTable* t = find(profile, cost::kElementwiseTable)) {
      const spec::CalibratedPoint& p = t->points(t->points_size() - 1);
      memory.value = p.key(0) / p.seconds();
      memory.where = std::string(cost::kElementwiseTable) + " " + keys_text(*t, p) +
                     ", the largest size measured";
      for (const CalibrationMeasurement& m : data_.measurements) {
        if (m.range.table == cost::kElementwiseTable) memory.sources.insert(m.database);
      }
    }
    if (set_fraction(e->mutable_memory_bound(), "efficiency.memory_bound", memory,
                     base_hw_.hbm_bytes_per_s,
                     "element-wise streaming bandwidth " + fixed(memory.value / 1e9, 1) + " GB/s",
                     "the " + fixed(base_hw_.hbm_bytes_per_s / 1e9, 0) + " GB/s HBM bandwidth")) {
      replaced.emplace_back("efficiency.memory_bound");
    }
    return replaced;
  }

  // node.nvlink_bandwidth and nvlink_latency from the 2-GPU all-reduce, where measured; the
  // fields set are added to `replaced`.
  void fit_nvlink(spec::HardwareProfile& profile, std::vector<std::string>& replaced) {
    const spec::CalibratedTable* t = find(profile, cost::kAllReduceTable);
    if (t == nullptr) return;
    constexpr double n = 2;
    std::vector<cost::SizeTime> samples;
    for (const auto& p : t->points()) {
      if (p.key(0) == n) samples.push_back({p.key(1), p.seconds()});
    }
    if (samples.size() < 2) return;
    cost::AlphaBeta fit;
    try {
      fit = cost::fit_alpha_beta(samples, "allreduce.nvlink (group_size 2)");
    } catch (const std::invalid_argument& e) {
      report_.notes.push_back(std::string(e.what()) + "; node.nvlink_* kept from the base");
      return;
    }
    const double bus = fit.beta_bytes_per_s * 2 * (n - 1) / n;
    const double step = fit.alpha_s / (2 * (n - 1));
    std::set<int64_t> sources;
    for (const CalibrationMeasurement& m : data_.measurements) {
      if (m.range.table == cost::kAllReduceTable && m.range.keys[0] == 2) {
        sources.insert(m.database);
      }
    }
    const std::string how =
        measured_on(sources) +
        ": alpha-beta fit t(S) = alpha + S/beta of the 2-GPU NCCL "
        "all-reduce over " +
        std::to_string(samples.size()) + " sizes " + num(samples.front().bytes) + " to " +
        num(samples.back().bytes) + " bytes (weighted by 1/t^2, rms relative residual " +
        fixed(100 * fit.rms_relative_residual, 1) + " %): alpha = " + fixed(fit.alpha_s * 1e6, 2) +
        " us, beta = " + fixed(fit.beta_bytes_per_s / 1e9, 1) + " GB/s";
    spec::NodeSpec* node = profile.mutable_node();
    report_.fitted.push_back("node.nvlink_bandwidth = " + fixed(bus / 1e9, 1) + " GB/s (base " +
                             num(node->nvlink_bandwidth().value()) + " " +
                             node->nvlink_bandwidth().unit() + ")");
    node->mutable_nvlink_bandwidth()->set_value(significant(bus / 1e9, 4));
    node->mutable_nvlink_bandwidth()->set_unit("GB/s");
    node->mutable_nvlink_bandwidth()->set_source(
        how + "; bus bandwidth = beta x 2(n-1)/n with n = 2 (nccl-tests' busBw)");
    replaced.emplace_back("node.nvlink_bandwidth");
    if (step > 0) {
      report_.fitted.push_back("node.nvlink_latency = " + fixed(step * 1e6, 2) + " us (base " +
                               num(node->nvlink_latency().value()) + " " +
                               node->nvlink_latency().unit() + ")");
      node->mutable_nvlink_latency()->set_value(significant(step * 1e6, 3));
      node->mutable_nvlink_latency()->set_unit("us");
      node->mutable_nvlink_latency()->set_source(
          how +
          "; per-step latency = alpha / (2(n-1)) with n = 2 (the ring all-reduce's "
          "2(n-1) steps)");
      replaced.emplace_back("node.nvlink_latency");
    } else {
      report_.notes.push_back(
          "node.nvlink_latency: the all-reduce fit's alpha is 0 (latency "
          "below the data's resolution); the base's value is kept");
    }
  }

  const CalibrationData& data_;
  const spec::HardwareProfile& base_;
  const CalibrationInfo& info_;
  CalibrationReport& report_;
  spec::Hardware base_hw_;
  std::map<std::string, TableBuild> builds_;
  std::vector<const CalibrationMeasurement*> interference_;
  int loss_forward_ = 0, loss_backward_ = 0;  // memory.loss ranges by pass
};

}  // namespace

spec::HardwareProfile calibrate_profile(const CalibrationData& data,
                                        const spec::HardwareProfile& base,
                                        const CalibrationInfo& info, CalibrationReport* report) {
  CalibrationReport local;
  CalibrationReport& out = report ? *report : local;
  out.notes.insert(out.notes.end(), data.notes.begin(), data.notes.end());
  for (const CalibrationSource& source : data.sources) {
    out.sources.push_back(source.path + ": " + source.gpu_summary() +
                          (source.hostname.empty() ? "" : " (host " + source.hostname + ")") +
                          ", recorded " + source.date +
                          (source.command.empty() ? "" : " by `" + source.command + "`") + "; " +
                          versions_text(source.versions));
  }
  return Fit(data, base, info, out).run();
}

spec::HardwareProfile calibrate_from_traces(const std::vector<std::string>& databases,
                                            const spec::HardwareProfile& base,
                                            const CalibrationInfo& info,
                                            CalibrationReport* report) {
  if (databases.empty()) throw CalibrationError("no database to calibrate from");
  return calibrate_profile(read_calibration_data(databases), base, info, report);
}

std::string today_utc() { return utc_date(int64_t{std::time(nullptr)} * 1000000000); }

}  // namespace mpsim::profiler
