// See run_op_tables.h.
#include "tools/mpsim/run_op_tables.h"

#include <sstream>

#include "profiler/calibrate/op_points.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::cli {

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

TrainRequest train_request_from_command(const std::string& command, const std::string& source) {
  std::istringstream in(command);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  size_t at = 0;
  while (at < words.size() && words[at] != "train") ++at;
  if (at == words.size())
    throw spec::SpecError(source, 0, "command",
                          "'" + command +
                              "' is not an `mpsim train` run; expected a database "
                              "recorded by `mpsim profile -- mpsim train ...`");
  try {
    return parse_train_args({words.begin() + static_cast<long>(at) + 1, words.end()});
  } catch (const spec::FlagError& e) {
    throw spec::SpecError(source, 0, "command", e.what());
  }
}

std::vector<spec::CalibratedTable> op_tables_from_run(const profiler::RunMeasurement& run,
                                                      const std::string& source,
                                                      std::vector<std::string>* notes) {
  const TrainRequest request = train_request_from_command(run.command, source);
  spec::ModelSpec model = spec::load_model_spec(request.model);
  model.set_dropout(0);  // the executor trains without dropout
  // Any profile validates a layout; the graph's shapes do not depend on the hardware.
  const spec::ParallelConfig config = spec::validate_parallel_config(
      request.options.config, model, spec::load_hardware("h100-sxm"));
  graph::GraphOptions options;
  options.all_ranks = true;
  const graph::TrainingGraph g = graph::build_training_graph(model, config, options);
  const std::string provenance =
      "learned from " + source + " (" + run.gpu + ", " + run.date + "): `" + run.command + "`";
  return profiler::learn_op_tables(g, measured_seconds_by_graph_rank(g, run), provenance, notes);
}

}  // namespace mpsim::cli
