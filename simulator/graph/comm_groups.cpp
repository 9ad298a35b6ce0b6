#include "simulator/graph/comm_groups.h"

#include <algorithm>
#include <set>

namespace mpsim::graph {

CommGroups::CommGroups(const spec::ParallelConfig& config, bool all_ranks, int64_t gpus_per_node)
    : config_(config),
      all_ranks_(all_ranks),
      gpus_per_node_(gpus_per_node),
      t_(config.tensor_parallel()),
      p_(config.pipeline_parallel()),
      dp_(config.data_parallel() * std::max<int64_t>(1, config.context_parallel())) {}

std::vector<RankCoord> CommGroups::simulated_ranks() const {
  std::vector<RankCoord> ranks;
  if (all_ranks_) {
    for (int32_t pp = 0; pp < p_; ++pp)
      for (int32_t dp = 0; dp < dp_; ++dp)
        for (int32_t tp = 0; tp < t_; ++tp) ranks.push_back(coord(tp, dp, pp));
  } else {
    for (int32_t pp = 0; pp < p_; ++pp) ranks.push_back(coord(0, 0, pp));
  }
  return ranks;
}

RankCoord CommGroups::coord(int32_t tp, int32_t dp, int32_t pp) const {
  RankCoord c;
  c.tp = tp;
  c.dp = dp;
  c.pp = pp;
  c.global_rank = global_rank(config_, tp, dp, pp);
  c.node = static_cast<int32_t>(c.global_rank / gpus_per_node_);
  return c;
}

int32_t CommGroups::node_of(int32_t tp, int32_t dp, int32_t pp) const {
  return static_cast<int32_t>(global_rank(config_, tp, dp, pp) / gpus_per_node_);
}

int32_t CommGroups::tp_nodes(const RankCoord& c) const {
  std::set<int32_t> nodes;
  for (int32_t i = 0; i < t_; ++i) nodes.insert(node_of(i, c.dp, c.pp));
  return static_cast<int32_t>(nodes.size());
}

int32_t CommGroups::dp_nodes(const RankCoord& c) const {
  std::set<int32_t> nodes;
  for (int32_t i = 0; i < dp_; ++i) nodes.insert(node_of(c.tp, i, c.pp));
  return static_cast<int32_t>(nodes.size());
}

int32_t CommGroups::cp_nodes(const RankCoord& c) const {
  const int64_t cp = std::max<int64_t>(1, config_.context_parallel());
  std::set<int32_t> nodes;
  for (int64_t i = 0; i < cp; ++i)
    nodes.insert(node_of(c.tp, static_cast<int32_t>(c.dp / cp * cp + i), c.pp));
  return static_cast<int32_t>(nodes.size());
}

int32_t CommGroups::stage_pair_nodes(const RankCoord& c, int32_t stage_a, int32_t stage_b) const {
  return node_of(c.tp, c.dp, stage_a) == node_of(c.tp, c.dp, stage_b) ? 1 : 2;
}

void CommGroups::begin_rank(const RankCoord& c) {
  current_ = c;
  sequence_.fill(0);
}

void CommGroups::link(Op& op) {
  int64_t group_index = 0;
  int64_t members_simulated = 1;
  const RankCoord& c = current_;
  switch (op.group) {
    case Group::kTp:
      group_index = c.dp * p_ + c.pp;
      members_simulated = all_ranks_ ? t_ : 1;
      break;
    case Group::kDp:
      group_index = c.tp * p_ + c.pp;
      members_simulated = all_ranks_ ? dp_ : 1;
      break;
    case Group::kEmbedding:
      group_index = c.tp * dp_ + c.dp;
      members_simulated = 2;
      break;
    default:
      return;
  }
  const uint64_t sequence = static_cast<uint64_t>(sequence_[static_cast<int>(op.group)]++);
  if (members_simulated < 2) return;
  const uint64_t key = (static_cast<uint64_t>(op.group) << 60) |
                       (static_cast<uint64_t>(group_index) << 36) | sequence;
  auto [it, inserted] = collectives_.try_emplace(key, static_cast<int32_t>(collectives_.size()));
  op.collective = it->second;
}

int32_t global_rank(const spec::ParallelConfig& config, int32_t tp, int32_t dp, int32_t pp) {
  const int64_t t = config.tensor_parallel();
  // The CP group sits between TP and DP (Megatron's order tp-cp-dp-pp): `dp` indexes the DP x CP
  // ranks, CP innermost, which hold the same weights.
  const int64_t d = config.data_parallel() * std::max<int64_t>(1, config.context_parallel());
  const int64_t p = config.pipeline_parallel();
  if (config.rank_order() == spec::TP_PP_DP) return static_cast<int32_t>(tp + t * (pp + p * dp));
  return static_cast<int32_t>(tp + t * (dp + d * pp));
}

}  // namespace mpsim::graph
