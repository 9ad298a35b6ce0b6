// to_json() and to_table(): the two renderings of a SimulationResult (metrics defined in
// simulation_result.h). The JSON keys are a public contract (scripts, the sweep, validation
// reports); the config names match the `mpsim simulate` flag values.
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "simulator/report/simulation_result.h"
#include "simulator/spec/config_words.h"

namespace mpsim::report {
namespace {

using nlohmann::json;

constexpr const char* kMemoryNote = "not simulated";

// 0 and 1 both mean "not interleaved"; report 1 as the flag does.
int64_t vpp_of(const spec::ParallelConfig& c) {
  return std::max<int64_t>(1, c.virtual_pipeline_stages());
}

json config_json(const spec::ParallelConfig& c) {
  return {{"num_gpus", c.num_gpus()},
          {"tp", c.tensor_parallel()},
          {"pp", c.pipeline_parallel()},
          {"cp", std::max<int64_t>(1, c.context_parallel())},
          {"dp", c.data_parallel()},
          {"sp", c.sequence_parallel()},
          {"vpp", vpp_of(c)},
          {"micro_batch_size", c.micro_batch_size()},
          {"global_batch_size", c.global_batch_size()},
          {"schedule", spec::schedule_word(c.schedule())},
          {"recompute", spec::recompute_word(c.recompute())},
          {"attention", spec::attention_word(c.attention())},
          {"zero_stage", c.zero_stage()},
          {"overlap_dp_comm", c.overlap_dp_comm()},
          {"overlap_param_gather", c.overlap_param_gather()},
          {"tp_comm_overlap", c.tp_comm_overlap()},
          {"rank_order", spec::rank_order_word(c.rank_order())}};
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buffer[256];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buffer, sizeof buffer, fmt, args);
  va_end(args);
  return buffer;
}

// "123.456 ms  (42.0 %)": a breakdown part and its share of the iteration.
std::string part(double seconds, double iteration_s) {
  const double share = iteration_s > 0 ? 100.0 * seconds / iteration_s : 0.0;
  return format("%.3f ms  (%.1f %%)", seconds * 1e3, share);
}

}  // namespace

double memory_over_bytes(const SimulationResult& r) {
  return r.peak_memory_bytes ? static_cast<double>(*r.peak_memory_bytes) - r.memory_capacity_bytes
                             : 0;
}

namespace {

std::string memory_line(const SimulationResult& r) {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  const double peak = static_cast<double>(*r.peak_memory_bytes);
  std::string line = format(
      "%.2f GiB on rank %d (model state %.2f, activations %.2f, fragmentation %.2f, "
      "runtime %.2f) of %.2f GiB usable",
      peak / kGiB, r.peak_memory_rank, r.peak_model_state_bytes / kGiB,
      r.peak_activation_bytes / kGiB, r.peak_fragmentation_bytes / kGiB,
      r.peak_runtime_bytes / kGiB, r.memory_capacity_bytes / kGiB);
  if (r.memory_headroom > 0) line += format(" (%.0f %% headroom kept)", 100 * r.memory_headroom);
  return line + (r.fits_memory
                     ? ": fits"
                     : format(": DOES NOT FIT, %.2f GiB over", memory_over_bytes(r) / kGiB));
}

}  // namespace

json to_json(const SimulationResult& r) {
  json out = {
      {"iteration_time_s", r.iteration_time_s},
      {"tokens_per_s", r.tokens_per_s},
      {"model_tflops_per_gpu", r.model_tflops_per_gpu},
      {"mfu", r.mfu},
      {"hfu", r.hfu},
      {"peak_memory_bytes", nullptr},
      {"breakdown",
       {{"compute_s", r.breakdown.compute_s},
        {"exposed_comm_s", r.breakdown.exposed_comm_s},
        {"bubble_s", r.breakdown.bubble_s}}},
      {"slowest_rank", r.slowest_rank},
      {"config", config_json(r.config)},
      {"model", r.model_name},
      {"hardware", r.hardware_name},
      {"cost_model", r.cost_model},
      {"simulated_ranks", r.simulated_ranks},
      {"ops", r.ops},
      {"events", r.events},
      {"model_flops", r.model_flops},
      {"hardware_flops", r.hardware_flops},
      {"peak_flops_per_gpu", r.peak_flops_per_gpu},
  };
  if (r.peak_memory_bytes) {
    out["peak_memory_bytes"] = *r.peak_memory_bytes;
    out["memory"] = {{"capacity_bytes", r.memory_capacity_bytes},
                     {"fits", r.fits_memory},
                     {"peak_rank", r.peak_memory_rank},
                     {"model_state_bytes", r.peak_model_state_bytes},
                     {"activation_bytes", r.peak_activation_bytes},
                     {"fragmentation_bytes", r.peak_fragmentation_bytes},
                     {"runtime_bytes", r.peak_runtime_bytes},
                     {"headroom", r.memory_headroom}};
  } else {
    out["peak_memory_note"] = kMemoryNote;
  }
  return out;
}

std::string to_table(const SimulationResult& r) {
  const spec::ParallelConfig& c = r.config;
  const double t = r.iteration_time_s;
  std::vector<std::pair<std::string, std::string>> rows = {
      {"model", r.model_name},
      {"hardware", r.hardware_name},
      {"cost model", r.cost_model},
      {"gpus", c.context_parallel() > 1 ? format("%lld = TP %lld x CP %lld x PP %lld x DP %lld",
                                                 static_cast<long long>(c.num_gpus()),
                                                 static_cast<long long>(c.tensor_parallel()),
                                                 static_cast<long long>(c.context_parallel()),
                                                 static_cast<long long>(c.pipeline_parallel()),
                                                 static_cast<long long>(c.data_parallel()))
                                        : format("%lld = TP %lld x PP %lld x DP %lld",
                                                 static_cast<long long>(c.num_gpus()),
                                                 static_cast<long long>(c.tensor_parallel()),
                                                 static_cast<long long>(c.pipeline_parallel()),
                                                 static_cast<long long>(c.data_parallel()))},
      {"batch",
       format("micro %lld, global %lld sequences", static_cast<long long>(c.micro_batch_size()),
              static_cast<long long>(c.global_batch_size()))},
      {"schedule", format("%s, vpp %lld", spec::schedule_word(c.schedule()),
                          static_cast<long long>(vpp_of(c)))},
      {"options",
       format("sp %s%s, recompute %s, attention %s, zero %lld, dp overlap %s%s, rank order %s",
              c.sequence_parallel() ? "on" : "off",
              c.tp_comm_overlap() ? " (TP comm overlapped)" : "",
              spec::recompute_word(c.recompute()), spec::attention_word(c.attention()),
              static_cast<long long>(c.zero_stage()), c.overlap_dp_comm() ? "on" : "off",
              c.overlap_param_gather() ? " (and parameter gather)" : "",
              spec::rank_order_word(c.rank_order()))},
      {"", ""},
      {"iteration time", format("%.3f ms", t * 1e3)},
      {"throughput", format("%.0f tokens/s", r.tokens_per_s)},
      {"model TFLOP/s per GPU", format("%.1f TFLOP/s", r.model_tflops_per_gpu)},
      {"MFU", format("%.1f %% of %.1f TFLOP/s peak", 100.0 * r.mfu, r.peak_flops_per_gpu / 1e12)},
      {"HFU", format("%.1f %%", 100.0 * r.hfu)},
      {"peak memory", r.peak_memory_bytes ? memory_line(r) : std::string("n/a: ") + kMemoryNote},
      {format("breakdown, rank %d", r.slowest_rank), ""},
      {"  compute", part(r.breakdown.compute_s, t)},
      {"  exposed communication", part(r.breakdown.exposed_comm_s, t)},
      {"  bubble", part(r.breakdown.bubble_s, t)},
      {"", ""},
      {"simulated",
       format("%lld ranks, %lld ops, %lld events", static_cast<long long>(r.simulated_ranks),
              static_cast<long long>(r.ops), static_cast<long long>(r.events))},
  };
  size_t width = 0;
  for (const auto& row : rows) width = std::max(width, row.first.size());
  std::string out;
  for (const auto& [label, value] : rows) {
    std::string line = label;
    if (!value.empty()) line += std::string(width + 2 - label.size(), ' ') + value;
    out += line + "\n";
  }
  return out;
}

}  // namespace mpsim::report
