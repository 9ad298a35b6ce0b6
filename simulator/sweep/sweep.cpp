// run_sweep(); see sweep.h.
#include "simulator/sweep/sweep.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "simulator/cost/cost_model.h"
#include "simulator/graph/model_math.h"
#include "simulator/memory/device_memory.h"
#include "simulator/memory/memory_model.h"

namespace mpsim::sweep {
namespace {

// The one place the sweep calls the simulator, so a faster mode can be swapped in here. The cost
// model is built once per sweep (a calibrated one fits its tables when built) and shared by the
// workers: op_seconds is const and stateless.
report::SimulationResult simulate_one(const spec::ModelSpec& model, const spec::Hardware& hardware,
                                      const spec::ParallelConfig& config,
                                      const std::shared_ptr<const cost::CostModel>& cost_model,
                                      double memory_headroom) {
  simulation::SimulateOptions options;
  options.fold_steps = true;  // the same iteration time and peak memory, far fewer ops
  options.cost_model = cost_model;
  options.memory_headroom = memory_headroom;
  return simulation::simulate(model, hardware, config, options);
}

// Why a config does not fit by the closed forms, or nullopt when it does: each stage's tensors
// as the GPU holds them (memory/device_memory.h) against `capacity`.
std::optional<const char*> closed_form_misfit(const graph::ModelDims& dims, bool tied_embeddings,
                                              const spec::Hardware& hardware,
                                              const spec::ParallelConfig& config, double capacity) {
  bool over = false;
  for (int64_t stage = 0; stage < config.pipeline_parallel(); ++stage) {
    const memory::RankMemory m = memory::closed_form_memory(dims, config, stage);
    auto device = [&](double tensors) {
      return memory::device_bytes(hardware, config, tied_embeddings, stage, tensors);
    };
    if (device(m.model_state.total()) > capacity) return kModelStateExceedsMemory;
    if (device(m.total()) > capacity) over = true;
  }
  return over ? std::optional<const char*>(kActivationsExceedMemory) : std::nullopt;
}

// What happened to one simulated config.
struct Outcome {
  std::optional<report::SimulationResult> result;
  const char* dropped = nullptr;  // a prune reason, when the config was dropped
};

// Simulates configs[todo[k]] for every k on a pool of threads; each worker claims the next index
// and writes only its own slot. The cost model is the one simulate() would pick
// (cost::make_cost_model), built once. The first exception other than std::length_error (too
// large to simulate) stops the pool and is rethrown.
std::vector<Outcome> simulate_all(const spec::ModelSpec& model, const spec::Hardware& hardware,
                                  const std::vector<spec::ParallelConfig>& configs,
                                  const std::vector<size_t>& todo, const SweepOptions& options) {
  const double capacity = memory::usable_bytes(hardware, options.memory_headroom);
  const std::shared_ptr<const cost::CostModel> cost_model =
      todo.empty()
          ? nullptr
          : cost::make_cost_model(hardware, cost::CollectiveAlgorithm::kAuto, model.dtype());
  std::vector<Outcome> outcomes(todo.size());
  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr failure;
  std::mutex mutex;  // guards failure and serializes progress calls
  const int64_t total = static_cast<int64_t>(todo.size());
  auto worker = [&] {
    for (size_t k = next++; k < todo.size() && !failed; k = next++) {
      Outcome& o = outcomes[k];
      try {
        o.result =
            simulate_one(model, hardware, configs[todo[k]], cost_model, options.memory_headroom);
        if (capacity > 0 && o.result->peak_memory_bytes && !o.result->fits_memory)
          o.dropped = kSimulatedPeakExceedsMemory;
      } catch (const std::length_error&) {
        o.dropped = kTooLargeToSimulate;
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!failure) failure = std::current_exception();
        failed = true;
        return;
      }
      const int64_t n = ++done;
      if (options.progress) {
        std::lock_guard<std::mutex> lock(mutex);
        options.progress(n, total);
      }
    }
  };
  int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(1, std::min<int>(threads, static_cast<int>(std::max<size_t>(todo.size(), 1))));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();  // the calling thread works too
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  return outcomes;
}

}  // namespace

ConfigKey config_key(const spec::ParallelConfig& c) {
  return {c.tensor_parallel(),   c.pipeline_parallel(),           c.data_parallel(),
          c.micro_batch_size(),  c.virtual_pipeline_stages(),     static_cast<int>(c.schedule()),
          c.sequence_parallel(), static_cast<int>(c.recompute()), c.zero_stage()};
}

SweepResult run_sweep(const spec::ModelSpec& model, const spec::Hardware& hardware,
                      const std::vector<spec::ParallelConfig>& configs,
                      const SweepOptions& options) {
  const auto start = std::chrono::steady_clock::now();
#if defined(__GLIBC__)
  // Thousands of simulations allocate and free graphs of similar size; keeping freed memory in
  // the process instead of returning it to the kernel each time saves a third of the run.
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
#endif
  SweepResult out;
  out.enumerated = static_cast<int64_t>(configs.size());
  const double capacity = memory::usable_bytes(hardware, options.memory_headroom);
  const graph::ModelDims dims = graph::model_dims(model);

  // 1. Prune by the closed forms (cheap: done here, in order).
  std::vector<size_t> todo;
  for (size_t i = 0; i < configs.size(); ++i) {
    if (capacity > 0) {
      if (auto reason =
              closed_form_misfit(dims, model.tied_embeddings(), hardware, configs[i], capacity)) {
        ++out.pruned[*reason];
        continue;
      }
    }
    todo.push_back(i);
  }
  out.simulated = static_cast<int64_t>(todo.size());

  // 2. Simulate on a pool.
  std::vector<Outcome> outcomes = simulate_all(model, hardware, configs, todo, options);

  // 3. Keep those that fit; 4. rank.
  for (size_t k = 0; k < todo.size(); ++k) {
    Outcome& o = outcomes[k];
    if (o.dropped) {
      ++out.pruned[o.dropped];
      continue;
    }
    out.rows.push_back({configs[todo[k]], std::move(*o.result)});
  }
  std::sort(out.rows.begin(), out.rows.end(), [](const SweepRow& a, const SweepRow& b) {
    if (a.result.iteration_time_s != b.result.iteration_time_s) {
      return a.result.iteration_time_s < b.result.iteration_time_s;
    }
    return config_key(a.config) < config_key(b.config);
  });
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace mpsim::sweep
