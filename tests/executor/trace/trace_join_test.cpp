// The executor's NVTX ranges join 1:1 with the simulator's graph: for two profiled 2-GPU runs of
// `mpsim train` committed under traces/executor/ (H200, 2026-11-26; commands in
// traces/executor/README.md), every op the simulator builds for a rank has a range of the same
// name in that rank's database, and every range named like an op is an op of the graph. Ranges
// that are not ops (iteration/, pipeline/, NCCL's own, the executor's start-up and statistics
// collectives) are told apart by the op-name grammar; the few op-named ranges the simulator does
// not model are listed here with the reason.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "profiler/store/trace_store.h"
#include "simulator/graph/op_name.h"
#include "simulator/graph/training_graph.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim {
namespace {

std::set<std::string> measured_op_names(const std::string& database, int rank) {
  const profiler::TraceReader reader(database);
  const profiler::RankTrace trace = reader.read_rank(rank);
  std::set<std::string> names;
  for (const auto& r : trace.records.nvtx)
    if (graph::parse_op_name(r.text)) names.insert(r.text);
  return names;
}

std::set<std::string> simulated_op_names(const spec::ParallelConfig& config, int rank) {
  const spec::ModelSpec model = spec::load_model_spec("models/gpt-bytes-tiny.textproto");
  const spec::ParallelConfig valid =
      spec::validate_parallel_config(config, model, spec::load_hardware("h100-sxm"));
  graph::GraphOptions options;
  options.all_ranks = true;
  const graph::TrainingGraph g = graph::build_training_graph(model, valid, options);
  std::set<std::string> names;
  for (graph::OpVertex v = 0; v < num_vertices(g.graph); ++v) {
    const graph::Op& op = g.graph[v];
    if (g.ranks[op.rank].global_rank == rank) names.insert(graph::op_name(op));
  }
  return names;
}

spec::ParallelConfig two_gpus(int tp, int pp, bool sp) {
  spec::ParallelConfig c;
  c.set_num_gpus(2);
  c.set_tensor_parallel(tp);
  c.set_pipeline_parallel(pp);
  c.set_data_parallel(1);
  c.set_micro_batch_size(2);
  c.set_global_batch_size(4);
  c.set_sequence_parallel(sp);
  c.set_schedule(spec::ONE_F_ONE_B);
  c.set_recompute(spec::RECOMPUTE_NONE);
  c.set_virtual_pipeline_stages(1);
  c.set_rank_order(spec::TP_DP_PP);
  c.set_attention(spec::ATTENTION_UNFUSED);  // the executor's attention core
  return c;
}

void expect_join(const std::string& database, const spec::ParallelConfig& config, int rank) {
  const std::set<std::string> measured = measured_op_names(database, rank);
  const std::set<std::string> simulated = simulated_op_names(config, rank);
  ASSERT_FALSE(simulated.empty());
  for (const std::string& name : simulated)
    EXPECT_TRUE(measured.count(name))
        << database << " rank " << rank << ": simulated op " << name << " has no measured range";
  for (const std::string& name : measured)
    EXPECT_TRUE(simulated.count(name)) << database << " rank " << rank << ": measured range "
                                       << name << " is not an op of the simulated graph";
}

TEST(TraceJoinTest, PipelineRunJoinsTheGraph) {
  for (int rank : {0, 1})
    expect_join("traces/executor/pp2.rank" + std::to_string(rank) + ".sqlite",
                two_gpus(1, 2, false), rank);
}

TEST(TraceJoinTest, TensorAndSequenceParallelRunJoinsTheGraph) {
  for (int rank : {0, 1})
    expect_join("traces/executor/tp2sp.rank" + std::to_string(rank) + ".sqlite",
                two_gpus(2, 1, true), rank);
}

}  // namespace
}  // namespace mpsim
