// simulate(): the simulator's front door. Builds the training graph for a validated config,
// prices every op with a cost model, runs the discrete-event engine and summarises the
// iteration. Metrics are defined once, here:
//   iteration_time_s      makespan of one iteration (first op start to last op end, any rank)
//   tokens_per_s          global_batch * seq_length / iteration_time_s
//   model_tflops_per_gpu  model FLOPs per iteration (model_math.h) / iteration_time_s / num_gpus
//   mfu                   model FLOP/s per GPU / the GPU's dense peak for the model's dtype
//   hfu                   as mfu with the recomputed forward FLOPs added
//   breakdown (for the slowest rank: the one whose compute stream is busiest; ties -> lowest index)
//     compute_s           time its compute stream is busy
//     exposed_comm_s      time some communication stream is busy while compute is idle
//     bubble_s            the rest of the iteration: nothing running (pipeline fill/drain, waits)
//   so compute_s + exposed_comm_s + bubble_s = iteration_time_s.
//   peak_memory_bytes     max over ranks of model state + the activation peak of the timeline
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "simulator/cost/cost_model.h"
#include "simulator/engine/engine.h"
#include "simulator/graph/training_graph.h"
#include "simulator/memory/memory_model.h"
#include "simulator/spec/hardware.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::report {

enum class RankScope {
  kRepresentative,  // one rank per pipeline stage (TP and DP peers are symmetric)
  kAllRanks,        // every GPU; for checking the representative shortcut
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
  // Fold each pipeline step into one op (graph::StepFolding): the same iteration time and peak
  // memory for a fraction of the work; used by the sweep. The trace then shows steps, not ops,
  // and pipeline transfers that became edge delays count as bubble in the breakdown.
  bool fold_steps = false;
  // What the cross entropy keeps for the backward pass: Megatron-LM's fp32 logits by default;
  // `mpsim validate` simulates the reference executor's (memory_model.h).
  memory::LossMemory loss_memory = memory::LossMemory::kFp32Logits;
  // When set, receives the graph, the engine result and the model state (moved, not copied).
  SimulationDetail* detail = nullptr;
};

struct Breakdown {
  double compute_s = 0;
  double exposed_comm_s = 0;
  double bubble_s = 0;
};

struct SimulationResult {
  double iteration_time_s = 0;
  double tokens_per_s = 0;
  double model_flops = 0;     // per iteration
  double hardware_flops = 0;  // per iteration, recompute included
  double model_tflops_per_gpu = 0;
  double mfu = 0;
  double hfu = 0;
  double peak_flops_per_gpu = 0;  // the peak mfu divides by
  Breakdown breakdown;
  int slowest_rank = 0;  // global rank id
  int64_t simulated_ranks = 0;
  int64_t ops = 0;
  int64_t events = 0;
  // Peak memory: the largest, over simulated ranks, of model state (weights, gradients,
  // optimizer state by ZeRO stage) plus the activation peak of the engine's memory timeline
  // (simulator/memory). nullopt only for results built by hand.
  std::optional<int64_t> peak_memory_bytes;
  int peak_memory_rank = 0;           // global rank holding the peak
  double peak_model_state_bytes = 0;  // on that rank
  double peak_activation_bytes = 0;   // on that rank, at its peak
  double memory_capacity_bytes = 0;   // the GPU's HBM
  bool fits_memory = true;            // peak_memory_bytes <= memory_capacity_bytes
  spec::ParallelConfig config;
  std::string model_name, hardware_name, cost_model;
};

SimulationResult simulate(const spec::ModelSpec& model, const spec::Hardware& hardware,
                          const spec::ParallelConfig& validated_config,
                          const SimulateOptions& options = {});

nlohmann::json to_json(const SimulationResult& result);
std::string to_table(const SimulationResult& result);

}  // namespace mpsim::report
