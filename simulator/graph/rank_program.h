// The program of each simulated rank: the pipeline schedule's steps in order (each step's layer
// ops from layer_ops.h, or one folded block, see step_folder.h), the pipeline sends between
// stages, the DP gradient buckets, the tied-embedding all-reduce and the optimizer step; and the
// graph that joins the programs of every simulated rank (receivers wait for their senders).
// build_rank_programs() is what build_training_graph() runs; it expects a validated config and
// throws std::length_error past kMaxOps ops and std::logic_error if a pipeline send that some
// receiver waits for was never built (a schedule bug).
#pragma once

#include "simulator/graph/training_graph.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::graph {

TrainingGraph build_rank_programs(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                                  const GraphOptions& options);

}  // namespace mpsim::graph
