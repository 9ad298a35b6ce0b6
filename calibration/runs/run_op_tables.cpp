// See run_op_tables.h.
#include "calibration/runs/run_op_tables.h"

#include "calibration/fit/op_points.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::calibration {

std::vector<std::unordered_map<std::string, double>> measured_seconds_by_graph_rank(
    const graph::TrainingGraph& graph, const profiler::RunMeasurement& run) {
  std::vector<std::unordered_map<std::string, double>> out(graph.ranks.size());
  for (size_t r = 0; r < graph.ranks.size(); ++r)
    for (const profiler::RankRun& rank : run.ranks)
      if (rank.rank == graph.ranks[r].global_rank)
        for (size_t i = 0; i < rank.op_names.size(); ++i)
          out[r][rank.op_names[i]] = rank.op_seconds[i];
  return out;
}

std::vector<spec::CalibratedTable> op_tables_from_run(const profiler::RunMeasurement& run,
                                                      const RunConfig& config,
                                                      const std::string& source,
                                                      std::vector<std::string>* notes) {
  spec::ModelSpec model = config.model;
  model.set_dropout(0);  // the executor trains without dropout
  // Any profile validates a layout; the graph's shapes do not depend on the hardware.
  spec::ParallelConfig parallel;
  spec::ParallelConfig recorded = config.parallel;
  // Runs marked before the field existed ran the executor's only attention core: unfused.
  if (recorded.attention() == spec::ATTENTION_UNSPECIFIED)
    recorded.set_attention(spec::ATTENTION_UNFUSED);
  try {
    parallel = spec::validate_parallel_config(recorded, model, spec::load_hardware("h100-sxm"));
  } catch (const spec::FieldError& e) {
    throw spec::SpecError(source, 0, e.field(), e.message());
  }
  graph::GraphOptions options;
  options.all_ranks = true;
  const graph::TrainingGraph g = graph::build_training_graph(model, parallel, options);
  const std::string provenance =
      "learned from " + source + " (" + run.gpu + ", " + run.date + "): `" + run.command + "`";
  return calibration::learn_op_tables(g, measured_seconds_by_graph_rank(g, run), provenance, notes);
}

}  // namespace mpsim::calibration
