// Benchmark: one full simulation (graph build, costing, discrete-event run, summary) of GPT-3
// 175B on 1024 H100s, TP 8 x PP 16 x DP 8, micro-batch 1, global batch 1536, 1F1B. Goal: under
// one second on one core. Reports ops, events and events per second as counters. A second
// benchmark runs the same simulation with pipeline steps folded, as the sweep does.
#include <benchmark/benchmark.h>

#include "simulator/simulation/simulation.h"
#include "simulator/spec/spec_loader.h"

namespace {

void simulate_gpt3_175b(benchmark::State& state, bool fold_steps) {
  const auto model = mpsim::spec::load_model_spec("gpt3-175b");
  const auto hardware = mpsim::spec::load_hardware("h100-sxm");
  mpsim::spec::ParallelConfig config;
  config.set_num_gpus(1024);
  config.set_tensor_parallel(8);
  config.set_pipeline_parallel(16);
  config.set_micro_batch_size(1);
  config.set_global_batch_size(1536);
  config.set_schedule(mpsim::spec::ONE_F_ONE_B);
  config.set_overlap_dp_comm(true);
  config = mpsim::spec::validate_parallel_config(config, model, hardware);
  int64_t events = 0, ops = 0;
  double iteration = 0;
  for (auto _ : state) {
    mpsim::simulation::SimulateOptions options;
    options.fold_steps = fold_steps;
    const auto result = mpsim::simulation::simulate(model, hardware, config, options);
    events = result.events;
    ops = result.ops;
    iteration = result.iteration_time_s;
  }
  state.counters["ops"] = static_cast<double>(ops);
  state.counters["events"] = static_cast<double>(events);
  state.counters["events_per_s"] = benchmark::Counter(
      static_cast<double>(events), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["simulated_iteration_s"] = iteration;
}
void BM_SimulateGpt3_175B_1024Gpus(benchmark::State& state) { simulate_gpt3_175b(state, false); }
BENCHMARK(BM_SimulateGpt3_175B_1024Gpus)->Unit(benchmark::kMillisecond)->MinTime(3.0);

// The same simulation with pipeline steps folded (the sweep's mode): same iteration time.
void BM_SimulateGpt3_175B_1024Gpus_Folded(benchmark::State& state) {
  simulate_gpt3_175b(state, true);
}
BENCHMARK(BM_SimulateGpt3_175B_1024Gpus_Folded)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
