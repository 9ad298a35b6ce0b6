// Benchmark: one full simulation (graph build, costing, discrete-event run, summary) of GPT-3
// 175B on 1024 H100s, TP 8 x PP 16 x DP 8, micro-batch 1, global batch 1536, 1F1B. Goal: under
// one second on one core. Reports ops, events and events per second as counters.
#include <benchmark/benchmark.h>

#include "simulator/report/simulation.h"
#include "simulator/spec/spec_loader.h"

namespace {

void BM_SimulateGpt3_175B_1024Gpus(benchmark::State& state) {
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
    const auto result = mpsim::report::simulate(model, hardware, config);
    events = result.events;
    ops = result.ops;
    iteration = result.iteration_time_s;
  }
  state.counters["ops"] = static_cast<double>(ops);
  state.counters["events"] = static_cast<double>(events);
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["simulated_iteration_s"] = iteration;
}
BENCHMARK(BM_SimulateGpt3_175B_1024Gpus)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
