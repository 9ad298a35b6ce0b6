// SimulationResult: what one simulation of one training iteration reports, and its two renderings
// (to_json(), to_table(), in result_format.cpp). simulate() (simulator/simulation/simulation.h)
// fills it. Metrics are defined once, here:
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
// run_metrics.h computes them from a finished run. Nothing here throws.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::report {

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
  // Peak memory as the GPU sees it (simulator/memory/device_memory.h), on the rank where that is
  // highest: model state (weights, gradients, optimizer state by ZeRO stage) plus the
  // activation peak of the engine's memory timeline, the allocator's fragmentation over those
  // tensors, and the runtime (CUDA context, library workspace, NCCL communicators). nullopt only
  // for results built by hand.
  std::optional<int64_t> peak_memory_bytes;
  int peak_memory_rank = 0;             // global rank holding the peak
  double peak_model_state_bytes = 0;    // on that rank
  double peak_activation_bytes = 0;     // on that rank, at its peak
  double peak_fragmentation_bytes = 0;  // the allocator's reserve above those tensors
  double peak_runtime_bytes = 0;        // context, library workspace, NCCL on that rank
  double memory_capacity_bytes = 0;     // usable memory less the headroom asked for
  double memory_headroom = 0;           // the fraction of usable memory kept free
  bool fits_memory = true;              // peak_memory_bytes <= memory_capacity_bytes
  spec::ParallelConfig config;
  std::string model_name, hardware_name, cost_model;
};

nlohmann::json to_json(const SimulationResult& result);
std::string to_table(const SimulationResult& result);
// By how much the peak exceeds the usable memory (negative when it fits; 0 without a peak).
double memory_over_bytes(const SimulationResult& result);

}  // namespace mpsim::report
