// simulate(): the simulator's front door. Builds the training graph for a validated config
// (folding pipeline steps on request, simulator/folding), prices every op with a cost model, sizes
// it with the memory timeline, runs the discrete-event engine and summarises the iteration in a
// report::SimulationResult, whose metrics simulator/report/simulation_result.h defines.
//
// simulate() throws std::length_error, before building anything, for a configuration of more
// than graph::kMaxOps ops (unless steps are folded), and std::runtime_error for a trace path it
// cannot write (before simulating); errors of the cost model and the engine propagate.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "simulator/cost/cost_model.h"
#include "simulator/engine/engine.h"
#include "simulator/graph/training_graph.h"
#include "simulator/memory/memory_model.h"
#include "simulator/report/simulation_result.h"
#include "simulator/spec/hardware.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::simulation {

using report::SimulationResult;

enum class RankScope {
  // One "representative rank" per pipeline stage: TP and DP peers run the same program at the
  // same time, so one rank stands for its stage (collectives are priced for the whole group).
  kRepresentative,
  kAllRanks,  // every GPU; for checking the representative shortcut
};

// The simulation itself, for callers that compare it op by op (`mpsim validate`): the priced
// graph, the engine's start and end of every op, and each simulated rank's model-state bytes.
struct SimulationDetail {
  graph::TrainingGraph graph;
  engine::EngineResult engine;
  std::vector<double> model_state_bytes;  // per simulated rank (index into graph.ranks)
};

struct SimulateOptions {
  RankScope scope = RankScope::kRepresentative;
  std::string trace_path;  // empty: no trace
  // Cost model; null means cost::make_cost_model(hardware, kAuto, model dtype): the calibrated
  // model when the profile carries measured tables, else the roofline model.
  std::shared_ptr<const cost::CostModel> cost_model;
  // Fold each pipeline step into one op (step folding, simulator/folding): the same iteration time
  // and peak memory for a fraction of the work; used by the sweep. The trace then shows steps, not
  // ops, and pipeline transfers that became edge delays count as bubble in the breakdown.
  bool fold_steps = false;
  // What the cross entropy keeps for the backward pass: Megatron-LM's fp32 logits by default;
  // `mpsim validate` simulates the reference executor's (memory_model.h).
  memory::LossMemory loss_memory = memory::LossMemory::kFp32Logits;
  // The fraction of the GPU's usable memory kept free when judging whether the run fits, in
  // [0, 1) (report::SimulationResult::fits_memory).
  double memory_headroom = 0;
  // When set, receives the graph, the engine result and the model state (moved, not copied).
  SimulationDetail* detail = nullptr;
};

SimulationResult simulate(const spec::ModelSpec& model, const spec::Hardware& hardware,
                          const spec::ParallelConfig& validated_config,
                          const SimulateOptions& options = {});

}  // namespace mpsim::simulation
