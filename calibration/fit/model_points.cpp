// The models' exact shapes as calibration_bench's point list; what is collected and how it is
// bounded is in model_points.h.
#include "calibration/fit/model_points.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "calibration/fit/op_points.h"
#include "common/text.h"
#include "simulator/cost/calibrated_cost.h"
#include "simulator/graph/model_math.h"
#include "simulator/graph/training_graph.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::calibration {
namespace {

// A bench measurement: its name head ("gemm.bf16/dgrad", "allreduce.nvlink") and keys.
using Point = std::pair<std::string, std::vector<int64_t>>;

std::string parameters_text(double parameters) { return common::printf_string("%.3g", parameters); }

// "gemm.bf16/dgrad/m=8192,n=4096,k=6144": the range name without "calib/".
std::string line_of(const Point& p) {
  static const std::map<std::string_view, std::vector<std::string_view>> kKeyNames = {
      {"gemm", {"m", "n", "k"}},
      {"attention", {"bh", "s", "d", "g"}},  // g: the fused core's only
      {"collective", {"g", "bytes"}}};
  const std::string_view family = p.first.starts_with("gemm.")        ? "gemm"
                                  : p.first.starts_with("attention.") ? "attention"
                                                                      : "collective";
  const std::vector<std::string_view>& names = kKeyNames.at(family);
  std::string text = p.first + "/";
  for (std::size_t i = 0; i < p.second.size(); ++i) {
    text += (i ? "," : "") + std::string(names[i]) + "=" + std::to_string(p.second[i]);
  }
  return text;
}

// One config of the file comment; its description names it in notes.
struct Layout {
  int64_t tp = 1, pp = 1, dp = 1, zero = 0;
  bool sp = false;
  std::string text() const {
    return "TP " + std::to_string(tp) + (sp ? " SP" : "") + " PP " + std::to_string(pp) + " DP " +
           std::to_string(dp) + (dp > 1 ? " ZeRO " + std::to_string(zero) : "");
  }
};

std::vector<Layout> layouts(int64_t gpus) {
  std::vector<Layout> out;
  for (int64_t tp = 1; tp <= gpus; ++tp) {
    for (const bool sp : {false, true}) {
      if (sp && tp == 1) continue;
      for (const int64_t pp : {1, 2}) {
        out.push_back({tp, pp, 1, 0, sp});
        if (gpus < 2) continue;
        for (const int64_t zero : {0, 1}) out.push_back({tp, pp, 2, zero, sp});
      }
    }
  }
  return out;
}

spec::ParallelConfig config_of(const Layout& l, int64_t mbs) {
  spec::ParallelConfig c;
  c.set_num_gpus(l.tp * l.pp * l.dp);
  c.set_tensor_parallel(l.tp);
  c.set_pipeline_parallel(l.pp);
  c.set_data_parallel(l.dp);
  c.set_sequence_parallel(l.sp);
  c.set_zero_stage(l.zero);
  c.set_micro_batch_size(mbs);
  c.set_global_batch_size(mbs * l.dp);
  // The unfused core's ops; the fused core's points are taken at the same shapes (Collector).
  c.set_attention(spec::ATTENTION_UNFUSED);
  return c;
}

// Collects the points of the ops, with what was left out.
class Collector {
 public:
  explicit Collector(const ModelPointsOptions& o) : o_(o) {}

  void add(const graph::Op& op) {
    const std::optional<ExactKey> key = exact_table_key(op);
    if (!key) return;
    const std::string base =
        key->table.substr(0, key->table.size() - cost::kExactTableSuffix.size());
    switch (op.kind) {
      case graph::OpKind::kGemm: {
        const int64_t m = op.gemm.m, n = op.gemm.n, k = op.gemm.k;
        // "gemm.bf16.dgrad" -> "gemm.bf16/dgrad"
        const std::string head = "gemm.bf16/" + base.substr(std::string_view("gemm.bf16.").size());
        const bool wgrad = base == cost::kGemmWgradTable;
        const int64_t bytes = 2 * m * k + 2 * n * k + (wgrad ? 4 : 2) * m * n;
        if (bytes > o_.max_gemm_bytes) {
          too_large_gemm_.insert({head, {m, n, k}});
          return;
        }
        if (gemm_.insert({head, {m, n, k}}).second) gemm_flop_ += 2.0 * m * n * k;
        // The layers' linears also in FP8 (Transformer Engine's recipe; the LM head stays bf16)
        // where cuBLASLt's FP8 GEMMs take the shape: sizes by 16.
        if (op.site == graph::Site::kLayer && m % 16 == 0 && n % 16 == 0 && k % 16 == 0) {
          const std::string fp8 = "gemm.fp8/" + base.substr(std::string_view("gemm.bf16.").size());
          if (gemm_.insert({fp8, {m, n, k}}).second) gemm_flop_ += 2.0 * m * n * k;
        }
        return;
      }
      case graph::OpKind::kAttention: {
        const int64_t bh = op.attn_batch_heads, s = op.attn_seq, d = op.attn_head_dim;
        // The fused core at the same shape (its graph differs only here): no s x s tensor, so
        // only the sequence bound applies, four times the unfused core's.
        const bool backward = base == cost::kAttentionBackwardTable;
        const std::string flash(backward ? cost::kFlashBackwardTable : cost::kFlashForwardTable);
        if (s <= 4 * o_.max_attention_seq &&
            attention_.insert({flash, {bh, s, d, int64_t{op.attn_group}}}).second)
          attention_flop_ += (backward ? 5.0 : 2.0) * bh * s * (s + 1) * d;
        if (s > o_.max_attention_seq) {
          long_attention_.insert({base, {bh, s, d}});
          return;
        }
        if (2 * bh * s * s > o_.max_attention_score_bytes) {
          large_attention_.insert({base, {bh, s, d}});
          return;
        }
        if (attention_.insert({base, {bh, s, d}}).second)
          attention_flop_ += (backward ? 8.0 : 4.0) * bh * s * s * d;
        return;
      }
      case graph::OpKind::kAllReduce:
      case graph::OpKind::kAllGather:
      case graph::OpKind::kReduceScatter:
      case graph::OpKind::kSend: {
        const int64_t g = op.group_size;
        if (g > o_.gpus) return;  // not measurable here (a bigger TP/DP than the local GPUs)
        // The bench's rounding: whole bf16 elements, equal shares over the group.
        const int64_t unit = 2 * g;
        const double exact = op.bytes;
        const int64_t bytes = std::max(
            unit, static_cast<int64_t>(std::floor(exact / static_cast<double>(unit))) * unit);
        if (static_cast<double>(bytes) != exact) rounded_.insert({base, {g, bytes}});
        if (collective_.insert({base, {g, bytes}}).second) collective_bytes_ += bytes;
        return;
      }
      default:
        return;  // memory-bound ops: not listed (model_points.h)
    }
  }

  void finish(ModelPoints& out) const {
    for (const Point& p : gemm_) out.gemm.push_back(line_of(p));
    for (const Point& p : attention_) out.attention.push_back(line_of(p));
    for (const Point& p : collective_) out.collective.push_back(line_of(p));
    out.gemm_flop = gemm_flop_;
    out.attention_flop = attention_flop_;
    out.collective_bytes = collective_bytes_;
    out.rounded = static_cast<int64_t>(rounded_.size());
    auto note = [&](const std::set<Point>& left_out, const std::string& why) {
      if (left_out.empty()) return;
      out.notes.push_back(std::to_string(left_out.size()) + " " + why + " left out (e.g. " +
                          line_of(*left_out.rbegin()) + ")");
    };
    note(too_large_gemm_,
         "GEMM shapes whose buffers exceed " + std::to_string(o_.max_gemm_bytes >> 20) + " MiB");
    note(long_attention_, "attention shapes with seq > " + std::to_string(o_.max_attention_seq));
    note(large_attention_, "attention shapes whose scores exceed " +
                               std::to_string(o_.max_attention_score_bytes >> 20) + " MiB");
    if (!rounded_.empty()) {
      out.notes.push_back(std::to_string(rounded_.size()) +
                          " collective sizes rounded down to the bench's whole bf16 elements in "
                          "equal shares (e.g. " +
                          line_of(*rounded_.begin()) + "): their ops miss the exact lookup");
    }
  }

 private:
  const ModelPointsOptions& o_;
  std::set<Point> gemm_, attention_, collective_;
  std::set<Point> too_large_gemm_, long_attention_, large_attention_, rounded_;
  double gemm_flop_ = 0, attention_flop_ = 0, collective_bytes_ = 0;
};

}  // namespace

std::string ModelPoints::file_text() const {
  std::string names;
  for (const std::string& m : models) names += (names.empty() ? "" : ", ") + m;
  std::string text = "# calibration_bench --points: " + std::to_string(size()) +
                     " exact shapes of the simulator's graphs (calibration/fit/model_points.h)"
                     " for " +
                     names + "\n";
  for (const auto* lines : {&gemm, &attention, &collective}) {
    for (const std::string& line : *lines) text += line + "\n";
  }
  return text;
}

ModelPoints model_points(const std::vector<spec::ModelSpec>& models, const spec::Hardware& hardware,
                         const ModelPointsOptions& options) {
  if (options.gpus < 1 || options.micro_batch_sizes.empty()) {
    throw std::invalid_argument("model points: gpus = " + std::to_string(options.gpus) +
                                ", expected at least 1 GPU and a micro-batch size");
  }
  ModelPoints out;
  Collector collector(options);
  for (const spec::ModelSpec& model : models) {
    const double parameters =
        static_cast<double>(graph::model_parameters(graph::model_dims(model)));
    if (parameters < options.min_parameters || parameters > options.max_parameters) continue;
    out.models.push_back(model.name() + " (" + parameters_text(parameters) + " parameters)");
    // Refusals by message (the model's split constraints do not depend on the micro-batch):
    // the layouts refused, in order.
    std::vector<std::pair<std::string, std::vector<std::string>>> refused;
    for (const Layout& layout : layouts(options.gpus)) {
      for (const int64_t mbs : options.micro_batch_sizes) {
        spec::ParallelConfig config;
        try {
          config = spec::validate_parallel_config(config_of(layout, mbs), model, hardware);
        } catch (const spec::FieldError& e) {
          auto it = std::find_if(refused.begin(), refused.end(),
                                 [&](const auto& r) { return r.first == e.what(); });
          if (it == refused.end()) it = refused.insert(refused.end(), {e.what(), {}});
          it->second.push_back(layout.text());
          break;
        }
        graph::GraphOptions graph_options;
        graph_options.gpus_per_node =
            std::max<int64_t>(hardware.gpus_per_node, layout.tp * layout.pp * layout.dp);
        const graph::TrainingGraph g = graph::build_training_graph(model, config, graph_options);
        ++out.graphs;
        for (std::size_t v = 0; v < boost::num_vertices(g.graph); ++v) {
          collector.add(g.graph[static_cast<graph::OpVertex>(v)]);
        }
      }
    }
    for (const auto& [message, which] : refused) {
      out.notes.push_back(model.name() + ": " + std::to_string(which.size()) +
                          (which.size() == 1 ? " layout" : " layouts") + " left out (e.g. " +
                          which.front() + "): " + message);
    }
  }
  if (out.models.empty()) {
    throw std::invalid_argument("model points: none of the " + std::to_string(models.size()) +
                                " models has between " + parameters_text(options.min_parameters) +
                                " and " + parameters_text(options.max_parameters) + " parameters");
  }
  collector.finish(out);
  return out;
}

}  // namespace mpsim::calibration
