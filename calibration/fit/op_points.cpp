// Learning exact-shape tables from per-op measured times (op_points.h).
#include "calibration/fit/op_points.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/median.h"
#include "simulator/cost/calibrated_cost.h"
#include "simulator/graph/op_name.h"

namespace mpsim::calibration {
namespace {

using graph::Op;
using graph::OpKind;
using Keys = std::vector<double>;

}  // namespace

// The table is the cost model's own choice for the op (cost::op_table_name: GEMMs by layout,
// attention and norms by pass); the keys are the op's shape as that table keys it, where the
// graph gives it one.
std::optional<ExactKey> exact_table_key(const Op& op) {
  const std::string_view base = cost::op_table_name(op);
  if (base.empty()) return std::nullopt;
  switch (op.kind) {
    case OpKind::kGemm:
      if (op.gemm.m <= 0 || op.gemm.n <= 0 || op.gemm.k <= 0) return std::nullopt;
      return ExactKey{cost::exact_table_name(base),
                      {static_cast<double>(op.gemm.m), static_cast<double>(op.gemm.n),
                       static_cast<double>(op.gemm.k)}};
    case OpKind::kAttention:
      if (op.attn_batch_heads <= 0 || op.attn_seq <= 0 || op.attn_head_dim <= 0) {
        return std::nullopt;
      }
      if (op.label == graph::OpLabel::kAttnFlash) {
        return ExactKey{
            cost::exact_table_name(base),
            {static_cast<double>(op.attn_batch_heads), static_cast<double>(op.attn_seq),
             static_cast<double>(op.attn_head_dim), static_cast<double>(op.attn_group)}};
      }
      return ExactKey{cost::exact_table_name(base),
                      {static_cast<double>(op.attn_batch_heads), static_cast<double>(op.attn_seq),
                       static_cast<double>(op.attn_head_dim)}};
    case OpKind::kNorm:
    case OpKind::kElementwise:
    case OpKind::kLoss:
    case OpKind::kOptimizer:
      if (!(op.bytes > 0 && std::isfinite(op.bytes))) return std::nullopt;
      return ExactKey{cost::exact_table_name(base), {op.bytes}};
    case OpKind::kAllReduce:
    case OpKind::kAllGather:
    case OpKind::kReduceScatter:
    case OpKind::kSend:
      if (op.group_nodes != 1 || op.group_size < 2 || !(op.bytes > 0 && std::isfinite(op.bytes))) {
        return std::nullopt;
      }
      return ExactKey{cost::exact_table_name(base), {static_cast<double>(op.group_size), op.bytes}};
    case OpKind::kStepBlock:
    case OpKind::kHostTransfer:
    case OpKind::kHostOptimizer:
      break;
  }
  return std::nullopt;
}

namespace {

std::span<const std::string_view> key_names_of(std::string_view exact_table) {
  if (exact_table.starts_with("gemm.")) return cost::kGemmKeys;
  if (exact_table.starts_with("attention.flash.")) return cost::kFlashKeys;
  if (exact_table.starts_with("attention.")) return cost::kAttentionKeys;
  if (exact_table.starts_with("memory.")) return cost::kMemoryKeys;
  return cost::kCollectiveKeys;
}

// "1 point", "3 points".
std::string count(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

Keys keys_of(const spec::CalibratedPoint& p) { return Keys(p.key().begin(), p.key().end()); }

}  // namespace

std::vector<spec::CalibratedTable> learn_op_tables(
    const graph::TrainingGraph& graph,
    const std::vector<std::unordered_map<std::string, double>>& seconds_by_rank,
    const std::string& provenance, std::vector<std::string>* notes) {
  const auto& g = graph.graph;
  if (seconds_by_rank.size() != graph.ranks.size()) {
    throw std::invalid_argument("learn_op_tables: " + std::to_string(seconds_by_rank.size()) +
                                " ranks of measured op times, expected one per graph rank (" +
                                std::to_string(graph.ranks.size()) + ")");
  }
  // table -> key -> instance times; table -> ops joined
  std::map<std::string, std::map<Keys, std::vector<double>>> samples;
  std::map<std::string, std::size_t> ops_per_table;
  struct Collective {
    ExactKey key;
    double fastest;
  };
  std::map<int32_t, Collective> collectives;  // by Op::collective: the fastest member
  std::vector<std::unordered_set<std::string>> graph_names(graph.ranks.size());
  std::size_t considered = 0, measured = 0, across_nodes = 0, no_table = 0;
  std::string first_missing;
  for (graph::OpVertex v = 0; v < boost::num_vertices(g); ++v) {
    const Op& op = g[v];
    if (op.kind == OpKind::kStepBlock) continue;
    ++considered;
    const std::string name = graph::op_name(op);
    if (notes != nullptr) graph_names[static_cast<std::size_t>(op.rank)].insert(name);
    const auto& times = seconds_by_rank[static_cast<std::size_t>(op.rank)];
    const auto it = times.find(name);
    if (it == times.end() || !(it->second > 0 && std::isfinite(it->second))) {
      if (first_missing.empty()) first_missing = "rank " + std::to_string(op.rank) + ": " + name;
      continue;
    }
    ++measured;
    std::optional<ExactKey> key = exact_table_key(op);
    if (!key) {
      ++(graph::is_communication(op.kind) && op.group_nodes != 1 ? across_nodes : no_table);
      continue;
    }
    ++ops_per_table[key->table];
    if (op.collective >= 0) {
      auto [c, inserted] = collectives.try_emplace(op.collective, Collective{*key, it->second});
      if (!inserted) c->second.fastest = std::min(c->second.fastest, it->second);
      continue;
    }
    samples[key->table][key->keys].push_back(it->second);
  }
  for (const auto& [id, c] : collectives) samples[c.key.table][c.key.keys].push_back(c.fastest);

  std::vector<spec::CalibratedTable> tables;
  for (const auto& [name, by_key] : samples) {
    spec::CalibratedTable& table = tables.emplace_back();
    table.set_op(name);
    for (std::string_view key : key_names_of(name)) table.add_key_names(std::string(key));
    for (const auto& [keys, instances] : by_key) {
      spec::CalibratedPoint* p = table.add_points();
      for (double k : keys) p->add_key(k);
      p->set_seconds(common::median(instances));
    }
    const bool collective = key_names_of(name).size() == cost::kCollectiveKeys.size();
    table.set_provenance(provenance + (provenance.empty() ? "" : "; ") +
                         "profiled op times joined to the graph by op name, each point the "
                         "median over the ops of its shape" +
                         (collective ? " (a collective: its fastest member)" : ""));
  }

  if (notes != nullptr) {
    std::string line = "joined " + std::to_string(measured) + " of " + std::to_string(considered) +
                       " graph ops by name; " + std::to_string(considered - measured) +
                       " without a measurement";
    if (!first_missing.empty()) line += " (e.g. " + first_missing + ")";
    notes->push_back(line);
    std::size_t unmatched = 0;
    std::string first_unmatched;
    for (std::size_t r = 0; r < seconds_by_rank.size(); ++r) {
      for (const auto& [name, seconds] : seconds_by_rank[r]) {
        if (graph_names[r].contains(name)) continue;
        ++unmatched;
        std::string where = "rank " + std::to_string(r) + ": " + name;
        if (first_unmatched.empty() || where < first_unmatched) first_unmatched = std::move(where);
      }
    }
    if (unmatched > 0) {
      notes->push_back(count(unmatched, "measured name") + " matching no graph op (e.g. " +
                       first_unmatched + ")");
    }
    if (across_nodes > 0) {
      notes->push_back(std::to_string(across_nodes) +
                       " measured collectives span nodes: no exact table (the cost model prices "
                       "them by the network)");
    }
    if (no_table > 0) {
      notes->push_back(std::to_string(no_table) +
                       " measured ops have no exact table (no shape or bytes, or nothing moved)");
    }
    for (const spec::CalibratedTable& t : tables) {
      notes->push_back(t.op() + ": " + count(static_cast<std::size_t>(t.points_size()), "point") +
                       " from " + count(ops_per_table[t.op()], "op"));
    }
  }
  return tables;
}

void merge_exact_tables(spec::HardwareProfile* profile,
                        const std::vector<spec::CalibratedTable>& tables) {
  for (const spec::CalibratedTable& incoming : tables) {
    if (!std::string_view(incoming.op()).ends_with(cost::kExactTableSuffix) ||
        incoming.op().size() == cost::kExactTableSuffix.size()) {
      throw std::invalid_argument("merge_exact_tables: table " + incoming.op() +
                                  " is not an exact table, expected a name <base>" +
                                  std::string(cost::kExactTableSuffix));
    }
    spec::CalibratedTable* target = nullptr;
    for (spec::CalibratedTable& t : *profile->mutable_calibrated()) {
      if (t.op() == incoming.op()) target = &t;
    }
    if (target == nullptr) {
      *profile->add_calibrated() = incoming;
      continue;
    }
    if (!std::equal(target->key_names().begin(), target->key_names().end(),
                    incoming.key_names().begin(), incoming.key_names().end())) {
      auto list = [](const spec::CalibratedTable& t) {
        std::string text;
        for (int i = 0; i < t.key_names_size(); ++i) text += (i ? ", " : "") + t.key_names(i);
        return text;
      };
      throw std::invalid_argument("merge_exact_tables: table " + incoming.op() + ": key_names (" +
                                  list(incoming) + ") differ from the profile's (" + list(*target) +
                                  ")");
    }
    std::map<Keys, double> points;
    for (const spec::CalibratedPoint& p : target->points()) points.emplace(keys_of(p), p.seconds());
    for (const spec::CalibratedPoint& p : incoming.points()) {
      auto [it, inserted] = points.emplace(keys_of(p), p.seconds());
      if (!inserted) it->second = (it->second + p.seconds()) / 2;
    }
    target->clear_points();
    for (const auto& [keys, seconds] : points) {
      spec::CalibratedPoint* p = target->add_points();
      for (double k : keys) p->add_key(k);
      p->set_seconds(seconds);
    }
    if (!incoming.provenance().empty() && incoming.provenance() != target->provenance()) {
      target->set_provenance(target->provenance().empty()
                                 ? incoming.provenance()
                                 : target->provenance() + "; " + incoming.provenance());
    }
  }
}

}  // namespace mpsim::calibration
