// The metrics of a finished simulation (simulation_result.h defines them) and its Chrome trace.
// summarize_run() reads the priced graph, the engine's timeline and each simulated rank's model
// state (memory::model_state_bytes_per_rank); write_simulation_trace() writes every op as a slice
// (pid: global rank, tid: stream), memory counters per rank and the result under "mpsim", then
// finishes the file. Trace I/O errors are ChromeTraceWriter's (std::runtime_error); nothing else
// throws.
#pragma once

#include <string>
#include <vector>

#include "common/chrome_trace.h"
#include "simulator/engine/engine.h"
#include "simulator/graph/training_graph.h"
#include "simulator/report/simulation_result.h"
#include "simulator/spec/hardware.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::report {

// `model_state`: per simulated rank; `cost_model`: CostModel::describe() of the model that priced
// the graph; `memory_headroom`: the fraction of usable memory kept free when judging the fit.
SimulationResult summarize_run(const graph::TrainingGraph& tg, const engine::EngineResult& er,
                               const std::vector<double>& model_state, const spec::ModelSpec& model,
                               const spec::Hardware& hardware, const spec::ParallelConfig& config,
                               const std::string& cost_model, double memory_headroom = 0);

void write_simulation_trace(common::ChromeTraceWriter& writer, const graph::TrainingGraph& tg,
                            const engine::EngineResult& er, const std::vector<double>& model_state,
                            const SimulationResult& result);

}  // namespace mpsim::report
