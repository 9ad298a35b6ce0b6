// The training-iteration graph: every op of one iteration on the simulated ranks, as a
// Boost.Graph bidirectional adjacency list whose vertices are Ops and whose edges are
// dependencies ("target may start only after source ends").
//
// Program order: vertices are added in the order each rank issues them, so for any (rank,
// stream) the vertex index order is the stream's run order; edges are only needed across
// streams and ranks. Ops of one collective on several simulated ranks share `Op::collective`.
//
// What is built, per rank, following Megatron-LM:
//   forward/backward of every (micro-batch, chunk) in the pipeline schedule's order; in each
//   layer the norms, QKV / output / MLP GEMMs (backward: data- and weight-gradient GEMMs apart),
//   attention core, activation, residual + dropout, rotary where the model has it; embedding on
//   the first virtual stage, final norm, LM head and vocab-parallel loss on the last;
//   TP communication: all-reduce after attention and MLP (forward) and at the inputs of the
//   column-parallel linears (backward, overlapped with the weight-gradient GEMM); with sequence
//   parallelism all-gather / reduce-scatter instead, plus the backward re-gather of inputs;
//   pipeline sends of activations and gradients (on their own streams);
//   recomputation before each layer's backward (full: the layer's forward; selective: the
//   attention core);
//   DP gradient reduction in buckets (all-reduce; reduce-scatter + all-gather with ZeRO >= 1),
//   launched when the last micro-batch has produced a bucket's gradients if overlap is on, else
//   after the backward pass; ZeRO-2/3 reduce-scatter every micro-batch, ZeRO-3 gathers weights
//   before each layer's forward and backward; tied-embedding gradient all-reduce between first
//   and last stage; the optimizer step.
//
// Where it is built: layer_ops.h (the ops of one layer, the embedding and the head, over the
// op emitter of op_emitter.h), rank_program.h (each rank's schedule walk, pipeline sends, DP
// buckets and optimizer step) and comm_groups.h (group membership, node spans, rank placement,
// collective linking).
//
// build_training_graph() expects a config returned by spec::validate_parallel_config and throws
// std::length_error if the graph would exceed kMaxOps.
#pragma once

#include <boost/graph/compressed_sparse_row_graph.hpp>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "simulator/graph/model_math.h"
#include "simulator/graph/op.h"
#include "simulator/graph/step_folder.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::graph {

inline constexpr int64_t kMaxOps = 40'000'000;  // fits OpVertex

// A compressed sparse row graph: built once from the op and edge lists, then read-only in its
// structure (op fields stay writable), compact and fast to walk in both directions.
// An edge's delay: the target may start `seconds` after the source ends (0 for a plain
// dependency). Folded graphs use it for pipeline transfers (see step_folder.h).
struct EdgeDelay {
  double seconds = 0;
};
using OpGraph = boost::compressed_sparse_row_graph<boost::bidirectionalS, Op, EdgeDelay,
                                                   boost::no_property, uint32_t, uint32_t>;
using OpVertex = uint32_t;
using OpEdge = std::pair<OpVertex, OpVertex>;  // (source, target): target waits for source
inline constexpr OpVertex kNoOp = std::numeric_limits<OpVertex>::max();

// Vertex i of the result is ops[i]; edges may come in any order and repeat. `delays` is empty
// (no delays) or holds one delay per edge.
OpGraph make_op_graph(std::vector<Op> ops, const std::vector<OpEdge>& edges,
                      const std::vector<EdgeDelay>& delays = {});

struct RankCoord {
  int32_t global_rank = 0;
  int32_t tp = 0, dp = 0, pp = 0;
  int32_t node = 0;
};

struct GraphOptions {
  // false: one rank per pipeline stage (TP and DP peers do the same work at the same time);
  // true: every GPU.
  bool all_ranks = false;
  int64_t gpus_per_node = 8;
  // Step folding (step_folder.h): each foldable pipeline step becomes one op, priced by `fold`;
  // null: every op in the graph.
  StepFolder* fold = nullptr;
};

struct TrainingGraph {
  OpGraph graph;
  std::vector<RankCoord> ranks;  // simulated ranks; Op::rank indexes this
  int32_t num_collectives = 0;
  int64_t micro_batches = 0;  // per pipeline (global batch / (micro-batch * DP))
  int64_t padded_vocab = 0;
  ModelDims dims;
};

// Global rank of (tp, dp, pp) under the config's rank order.
int32_t global_rank(const spec::ParallelConfig& config, int32_t tp, int32_t dp, int32_t pp);

// Rough op count before building, for refusing absurd configurations early.
int64_t estimate_ops(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                     const GraphOptions& options);

// The streams a trace of `rank` shows: the compute, TP, DP and two pipeline streams always (a
// trace's usual layout), the CP and host streams where the rank uses them.
std::vector<Stream> streams_to_show(const TrainingGraph& graph, int32_t rank);

TrainingGraph build_training_graph(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                                   const GraphOptions& options);

}  // namespace mpsim::graph
