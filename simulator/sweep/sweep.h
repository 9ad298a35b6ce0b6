// run_sweep(): simulates a list of parallel configurations and ranks those that fit in memory.
//
// For each config, in order:
//   1. prune by the closed-form peak memory (memory::closed_form_peak_bytes) against the GPU's
//      HBM capacity, with the reason "model state exceeds memory" when weights, gradients and
//      optimizer state alone do not fit on the most loaded stage, else "activations exceed
//      memory";
//   2. simulate the rest (simulation::simulate) on a pool of threads pulling configs from a shared
//      index; results are stored by index, so nothing depends on thread timing;
//   3. drop those whose simulated peak_memory_bytes exceeds the capacity ("simulated peak exceeds
//      memory"); an unknown peak (std::nullopt) is kept;
//   4. rank by iteration time ascending, ties broken by config_key() (a total order on the swept
//      fields), so the ranking is the same for any thread count.
// A config the simulator refuses as too large (std::length_error) is counted under "too large to
// simulate". Any other exception from a worker stops the sweep and is rethrown by run_sweep()
// once every thread has joined. Configs must be in the form spec::validate_parallel_config()
// returns (as enumerate_configs() gives them).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "simulator/simulation/simulation.h"
#include "simulator/spec/hardware.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::sweep {

// Prune reasons, as they appear in SweepResult::pruned and in the outputs.
inline constexpr const char* kModelStateExceedsMemory = "model state exceeds memory";
inline constexpr const char* kActivationsExceedMemory = "activations exceed memory";
inline constexpr const char* kSimulatedPeakExceedsMemory = "simulated peak exceeds memory";
inline constexpr const char* kTooLargeToSimulate = "too large to simulate";

struct SweepOptions {
  int threads = 0;  // 0 = std::thread::hardware_concurrency()
  int top_k = 10;   // how many rows a caller shows; rows holds every fitting config regardless
  // The fraction of the GPU's usable memory kept free: configs must fit in the rest.
  double memory_headroom = 0;
  // Called after each simulation with (done, total simulations); from worker threads, one call at
  // a time (serialized by a mutex). May be empty.
  std::function<void(int64_t done, int64_t total)> progress;
};

struct SweepRow {
  spec::ParallelConfig config;
  report::SimulationResult result;
  // How to reproduce the row, filled by the caller that knows its command lines (`mpsim sweep`:
  // {"mpsim": the simulate flags, "megatron": Megatron-LM's flags or null, "framework": ...});
  // null leaves it out of the outputs.
  nlohmann::json command;
};

struct SweepResult {
  std::vector<SweepRow> rows;             // configs that fit, fastest first
  std::map<std::string, int64_t> pruned;  // reason -> count
  int64_t enumerated = 0;                 // configs given to run_sweep
  int64_t simulated = 0;                  // configs simulated (not pruned before simulating)
  double seconds = 0;                     // wall time of run_sweep
};

SweepResult run_sweep(const spec::ModelSpec& model, const spec::Hardware& hardware,
                      const std::vector<spec::ParallelConfig>& configs,
                      const SweepOptions& options = {});

// The ranking tie-break: tp, pp, dp, mbs, vpp, schedule, sp, recompute, zero.
using ConfigKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int, bool, int, int64_t>;
ConfigKey config_key(const spec::ParallelConfig& config);

}  // namespace mpsim::sweep
