// Benchmark: the full sweep of GPT-3 175B on 1024 H100s at global batch 1536: enumerate every
// valid configuration, prune by the closed-form memory, simulate every remaining one (folded
// steps, all cores), rank. Goal: under 10 seconds on the 2-core development machine.
// Counters: configurations enumerated and simulated, and simulated configurations per second.
#include <benchmark/benchmark.h>

#include "simulator/spec/spec_loader.h"
#include "simulator/sweep/config_space.h"
#include "simulator/sweep/sweep.h"

namespace {

void BM_SweepGpt3_175B_1024Gpus(benchmark::State& state) {
  const auto model = mpsim::spec::load_model_spec("gpt3-175b");
  const auto hardware = mpsim::spec::load_hardware("h100-sxm");
  int64_t enumerated = 0, simulated = 0;
  for (auto _ : state) {
    const auto configs = mpsim::sweep::enumerate_configs(model, hardware, 1024, 1536, {});
    const auto result = mpsim::sweep::run_sweep(model, hardware, configs, {});
    enumerated = result.enumerated;
    simulated = result.simulated;
    benchmark::DoNotOptimize(result.rows.data());
  }
  state.counters["enumerated"] = static_cast<double>(enumerated);
  state.counters["simulated"] = static_cast<double>(simulated);
  state.counters["simulated_per_s"] = benchmark::Counter(
      static_cast<double>(simulated), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SweepGpt3_175B_1024Gpus)->Unit(benchmark::kSecond)->Iterations(3)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
