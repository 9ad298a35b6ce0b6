#include "simulator/graph/training_graph.h"

#include <algorithm>
#include <stdexcept>

#include "simulator/graph/rank_program.h"

namespace mpsim::graph {

OpGraph make_op_graph(std::vector<Op> ops, const std::vector<OpEdge>& edges,
                      const std::vector<EdgeDelay>& delays) {
  const std::vector<EdgeDelay> none(delays.empty() ? edges.size() : 0);
  if (!delays.empty() && delays.size() != edges.size())
    throw std::invalid_argument("make_op_graph: one delay per edge expected");
  const std::vector<EdgeDelay>& properties = delays.empty() ? none : delays;
  OpGraph g(boost::edges_are_unsorted_multi_pass, edges.begin(), edges.end(), properties.begin(),
            static_cast<OpVertex>(ops.size()));
  // The CSR graph keeps bundled vertex properties in this public vector (Boost marks it public
  // for portability); moving the ops in avoids copying every op a second time.
  g.m_vertex_properties = std::move(ops);
  return g;
}

int64_t estimate_ops(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                     const GraphOptions& options) {
  const int64_t dp = std::max<int64_t>(1, config.data_parallel());
  const int64_t mbs = std::max<int64_t>(1, config.micro_batch_size());
  const int64_t micro_batches = config.global_batch_size() / (mbs * dp);
  const int64_t pp = std::max<int64_t>(1, config.pipeline_parallel());
  const int64_t ranks = options.all_ranks ? config.num_gpus() : pp;
  // Ops per layer and micro-batch: 24 compute forward + backward, TP collectives, recompute.
  int64_t per_layer = 24;
  if (config.tensor_parallel() > 1) per_layer += config.sequence_parallel() ? 10 : 4;
  // Four ring exchanges (2t - 1 ops for 2) and two pipelined reduce-scatters (8 ops for 2).
  // Ring attention: cp blocks and cp - 1 steps, forward, backward (and recomputed).
  if (config.context_parallel() > 1) per_layer += 4 * (2 * config.context_parallel() - 2);
  if (config.tp_comm_overlap()) per_layer += 4 * (2 * config.tensor_parallel() - 3) + 12;
  if (config.recompute() == spec::RECOMPUTE_FULL) per_layer += 14;
  if (config.recompute() == spec::RECOMPUTE_SELECTIVE) per_layer += 1;
  if (config.zero_stage() >= 2) per_layer += 3;
  const int64_t layers_per_rank = (model.num_layers() + pp - 1) / pp;
  return ranks * micro_batches * (layers_per_rank * per_layer + 16);
}

std::vector<Stream> streams_to_show(const TrainingGraph& g, int32_t rank) {
  std::vector<bool> used(kNumStreams, false);
  for (OpVertex v = 0; v < boost::num_vertices(g.graph); ++v) {
    if (g.graph[v].rank == rank) used[static_cast<size_t>(g.graph[v].stream)] = true;
  }
  std::vector<Stream> out;
  for (int s = 0; s < kNumStreams; ++s) {
    if (s < static_cast<int>(Stream::kCpComm) || used[static_cast<size_t>(s)])
      out.push_back(static_cast<Stream>(s));
  }
  return out;
}

TrainingGraph build_training_graph(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                                   const GraphOptions& options) {
  return build_rank_programs(model, config, options);
}

}  // namespace mpsim::graph
