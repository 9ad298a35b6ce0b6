// Where one global rank sits in a parallel configuration: its TP, DP and PP coordinates, the
// global ranks of its groups, and the layers of each of its model chunks. The mapping from
// coordinates to global ranks is the simulator's (graph::global_rank: Megatron-LM's TP innermost,
// then DP, then PP by default), so a rank of a measured run and of a simulated run are the same
// GPU.
//
// make_rank_layout() throws std::invalid_argument when the configuration does not split the model
// (layers not divisible by pp * vpp, ranks != tp * pp * dp, rank out of range).
#pragma once

#include <cstdint>
#include <vector>

#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::executor {

struct RankLayout {
  int world = 1, rank = 0;
  int tp = 1, pp = 1, dp = 1, chunks = 1;  // chunks: model chunks per pipeline rank (vpp)
  int tp_rank = 0, pp_rank = 0, dp_rank = 0;
  int64_t layers_per_chunk = 0;
  std::vector<int> tp_group, dp_group, pp_group;  // global ranks, in group-index order
  // Ranks holding a copy of tied word embeddings (first and last pipeline stage); empty when
  // the embeddings are untied or pp == 1.
  std::vector<int> embedding_group;

  int virtual_stage(int chunk) const { return chunk * pp + pp_rank; }
  int64_t first_layer(int chunk) const { return virtual_stage(chunk) * layers_per_chunk; }
  bool first_virtual_stage(int chunk) const { return virtual_stage(chunk) == 0; }
  bool last_virtual_stage(int chunk) const { return virtual_stage(chunk) == pp * chunks - 1; }
  bool holds_embedding() const { return pp_rank == 0; }
  bool holds_head() const { return pp_rank == pp - 1; }
};

RankLayout make_rank_layout(const spec::ParallelConfig& config, int64_t layers,
                            bool tied_embeddings, int rank);

}  // namespace mpsim::executor
