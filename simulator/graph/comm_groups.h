// CommGroups: who communicates with whom in one training graph. It places simulated ranks on
// GPUs and nodes (global_rank() under the config's rank order, gpus_per_node), says how many
// nodes each rank's TP and DP groups span, and links the ops of one collective across simulated
// ranks (Op::collective), so the engine starts them together.
//
// Linking rule: the k-th collective a rank issues in a group (TP, DP, tied-embedding) is the
// k-th collective of every other member of the same group, since group members run the same
// program. A collective gets an id only when at least two of its members are simulated: with
// representative ranks (one per pipeline stage, the default) TP and DP collectives have one
// simulated member and no id; the tied-embedding all-reduce between the first and last stage
// always has two. Ops of other groups (none, pipeline) are left as they are. Nothing here throws.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "simulator/graph/op.h"
#include "simulator/graph/training_graph.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::graph {

class CommGroups {
 public:
  // `all_ranks` and `gpus_per_node` as in GraphOptions; `config` must outlive this object.
  CommGroups(const spec::ParallelConfig& config, bool all_ranks, int64_t gpus_per_node);

  // The simulated ranks: every GPU (pp, then dp, then tp order) or one per pipeline stage
  // (tp = dp = 0). With context parallelism the dp coordinate indexes the DP x CP ranks, CP
  // innermost (Megatron's tp-cp-dp-pp order): they hold the same weights, reduce gradients
  // together, and the CP group of a rank is its block of cp consecutive dp indices.
  std::vector<RankCoord> simulated_ranks() const;

  RankCoord coord(int32_t tp, int32_t dp, int32_t pp) const;
  int32_t node_of(int32_t tp, int32_t dp, int32_t pp) const;
  int32_t tp_nodes(const RankCoord& c) const;  // distinct nodes of c's TP group
  int32_t dp_nodes(const RankCoord& c) const;  // ... and of its DP group
  int32_t cp_nodes(const RankCoord& c) const;  // ... and of its CP group
  // Nodes (1 or 2) spanned by the ranks of c's TP and DP index on pipeline stages a and b.
  int32_t stage_pair_nodes(const RankCoord& c, int32_t stage_a, int32_t stage_b) const;

  // Starts the program of a new rank: collective sequence numbers count from 0 again.
  void begin_rank(const RankCoord& c);
  // Sets op.collective for a collective issued by the current rank (see the linking rule).
  void link(Op& op);
  int32_t num_collectives() const { return static_cast<int32_t>(collectives_.size()); }

 private:
  const spec::ParallelConfig& config_;
  bool all_ranks_ = false;
  int64_t gpus_per_node_ = 8;
  int64_t t_ = 1, p_ = 1, dp_ = 1;
  RankCoord current_;
  std::array<int64_t, 6> sequence_{};                  // per Group, for the current rank
  std::unordered_map<uint64_t, int32_t> collectives_;  // (group, group index, sequence) -> id
};

}  // namespace mpsim::graph
