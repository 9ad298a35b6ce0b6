#include "simulator/simulation/simulation.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "common/chrome_trace.h"
#include "simulator/engine/engine.h"
#include "simulator/folding/step_folding.h"
#include "simulator/graph/training_graph.h"
#include "simulator/memory/memory_timeline.h"
#include "simulator/report/run_metrics.h"

namespace mpsim::simulation {
namespace {

// Prices every op and sets its memory; folded steps carry both already.
void annotate(graph::TrainingGraph& tg, const spec::ParallelConfig& config,
              const cost::CostModel& cost_model, memory::LossMemory loss) {
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    graph::Op& op = tg.graph[v];
    if (op.kind == graph::OpKind::kStepBlock) continue;
    op.duration_s = cost_model.op_seconds(op);
    op.comm_interference = cost_model.comm_interference(op);
  }
  memory::annotate_memory(tg, config, loss);
}

}  // namespace

SimulationResult simulate(const spec::ModelSpec& model, const spec::Hardware& hardware,
                          const spec::ParallelConfig& config, const SimulateOptions& options) {
  graph::GraphOptions graph_options;
  graph_options.all_ranks = options.scope == RankScope::kAllRanks;
  graph_options.gpus_per_node = hardware.gpus_per_node;
  std::shared_ptr<const cost::CostModel> cost_model = options.cost_model;
  if (!cost_model) {
    // The calibrated model where the profile carries measured tables, else the roofline.
    cost_model = cost::make_cost_model(hardware, cost::CollectiveAlgorithm::kAuto, model.dtype());
  }
  folding::StepFolding folding(*cost_model, config, options.loss_memory);
  if (options.fold_steps) graph_options.fold = &folding;
  const int64_t estimate = graph::estimate_ops(model, config, graph_options);
  if (!options.fold_steps && estimate > graph::kMaxOps) {
    throw std::length_error(
        "configuration too large to simulate: about " + std::to_string(estimate) + " ops, limit " +
        std::to_string(graph::kMaxOps) + "; use fewer micro-batches or one rank per stage");
  }
  // Open the trace first so that an unwritable path fails before the work is done.
  std::unique_ptr<common::ChromeTraceWriter> trace;
  if (!options.trace_path.empty())
    trace = std::make_unique<common::ChromeTraceWriter>(options.trace_path, 0);
  graph::TrainingGraph tg = graph::build_training_graph(model, config, graph_options);

  annotate(tg, config, *cost_model, options.loss_memory);
  const engine::EngineResult er = engine::run_engine(tg);

  const std::vector<double> model_state = memory::model_state_bytes_per_rank(tg, config);
  const SimulationResult result =
      report::summarize_run(tg, er, model_state, model, hardware, config, cost_model->describe(),
                            options.memory_headroom);
  if (trace) report::write_simulation_trace(*trace, tg, er, model_state, result);
  if (options.detail) {
    options.detail->graph = std::move(tg);
    options.detail->engine = er;
    options.detail->model_state_bytes = model_state;
  }
  return result;
}

}  // namespace mpsim::simulation
