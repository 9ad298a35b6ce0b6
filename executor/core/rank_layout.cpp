// Rank coordinates and groups; see rank_layout.h.
#include "executor/core/rank_layout.h"

#include <stdexcept>
#include <string>

#include "simulator/graph/training_graph.h"

namespace mpsim::executor {

RankLayout make_rank_layout(const spec::ParallelConfig& config, int64_t layers,
                            bool tied_embeddings, int rank) {
  RankLayout l;
  l.tp = static_cast<int>(config.tensor_parallel());
  l.pp = static_cast<int>(config.pipeline_parallel());
  l.dp = static_cast<int>(config.data_parallel());
  l.chunks = static_cast<int>(std::max<int64_t>(1, config.virtual_pipeline_stages()));
  l.world = static_cast<int>(config.num_gpus());
  l.rank = rank;
  if (l.tp < 1 || l.pp < 1 || l.dp < 1 || l.tp * l.pp * l.dp != l.world) {
    throw std::invalid_argument(
        "tp (" + std::to_string(l.tp) + ") x pp (" + std::to_string(l.pp) + ") x dp (" +
        std::to_string(l.dp) + ") must equal the number of GPUs (" + std::to_string(l.world) + ")");
  }
  if (rank < 0 || rank >= l.world) {
    throw std::invalid_argument("rank " + std::to_string(rank) + " outside 0.." +
                                std::to_string(l.world - 1));
  }
  if (layers % (static_cast<int64_t>(l.pp) * l.chunks) != 0) {
    throw std::invalid_argument(std::to_string(layers) + " layers do not split into pp (" +
                                std::to_string(l.pp) + ") x vpp (" + std::to_string(l.chunks) +
                                ") equal chunks");
  }
  l.layers_per_chunk = layers / (static_cast<int64_t>(l.pp) * l.chunks);
  bool found = false;
  for (int p = 0; p < l.pp && !found; ++p)
    for (int d = 0; d < l.dp && !found; ++d)
      for (int t = 0; t < l.tp && !found; ++t)
        if (graph::global_rank(config, t, d, p) == rank) {
          l.tp_rank = t, l.dp_rank = d, l.pp_rank = p;
          found = true;
        }
  for (int t = 0; t < l.tp; ++t)
    l.tp_group.push_back(graph::global_rank(config, t, l.dp_rank, l.pp_rank));
  for (int d = 0; d < l.dp; ++d)
    l.dp_group.push_back(graph::global_rank(config, l.tp_rank, d, l.pp_rank));
  for (int p = 0; p < l.pp; ++p)
    l.pp_group.push_back(graph::global_rank(config, l.tp_rank, l.dp_rank, p));
  if (tied_embeddings && l.pp > 1) l.embedding_group = {l.pp_group.front(), l.pp_group.back()};
  return l;
}

}  // namespace mpsim::executor
