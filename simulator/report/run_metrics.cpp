#include "simulator/report/run_metrics.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/chrome_trace.h"
#include "common/intervals.h"
#include "simulator/graph/model_math.h"
#include "simulator/graph/op_name.h"
#include "simulator/memory/device_memory.h"

namespace mpsim::report {
namespace {

Breakdown breakdown_of(const graph::TrainingGraph& tg, const engine::EngineResult& er, int rank,
                       double iteration_s) {
  std::vector<common::Interval> compute, comm;
  const auto& g = tg.graph;
  for (graph::OpVertex v = 0; v < boost::num_vertices(g); ++v) {
    if (g[v].rank != rank) continue;
    (g[v].stream == graph::Stream::kCompute ? compute : comm)
        .push_back({er.start_s[v], er.end_s[v]});
  }
  const auto compute_union = common::merged(std::move(compute));
  const auto comm_union = common::merged(std::move(comm));
  Breakdown b;
  b.compute_s = common::total_length(compute_union);
  b.exposed_comm_s = common::difference_length(comm_union, compute_union);
  b.bubble_s = std::max(0.0, iteration_s - b.compute_s - b.exposed_comm_s);
  return b;
}

nlohmann::json op_args(const graph::Op& op) {
  nlohmann::json args;
  if (op.micro_batch >= 0) args["micro_batch"] = op.micro_batch;
  if (op.layer >= 0) args["layer"] = op.layer;
  if (op.kind == graph::OpKind::kGemm) {
    args["m"] = op.gemm.m;
    args["n"] = op.gemm.n;
    args["k"] = op.gemm.k;
  }
  if (op.kind == graph::OpKind::kAttention) {
    args["batch_x_heads"] = op.attn_batch_heads;
    args["seq"] = op.attn_seq;
    args["head_dim"] = op.attn_head_dim;
  }
  if (graph::is_communication(op.kind)) {
    args["bytes"] = op.bytes;
    args["group_size"] = op.group_size;
    args["group_nodes"] = op.group_nodes;
  } else {
    args["flops"] = op.flops;
    args["hbm_bytes"] = op.bytes;
  }
  return args;
}

void write_memory_counters(common::ChromeTraceWriter& writer, const graph::TrainingGraph& tg,
                           const engine::EngineResult& er, const std::vector<double>& state);

// The rank whose device bytes (memory/device_memory.h) peak highest.
void summarize_memory(const graph::TrainingGraph& tg, const engine::EngineResult& er,
                      const std::vector<double>& state, const spec::Hardware& hardware,
                      const spec::ParallelConfig& config, bool tied_embeddings, double headroom,
                      SimulationResult& result) {
  size_t peak_rank = 0;
  double peak = -1;
  for (size_t r = 0; r < tg.ranks.size(); ++r) {
    const double total = memory::device_bytes(hardware, config, tied_embeddings, tg.ranks[r].pp,
                                              state[r] + er.peak_bytes[r]);
    if (total > peak) {
      peak = total;
      peak_rank = r;
    }
  }
  const double tensors = state[peak_rank] + er.peak_bytes[peak_rank];
  result.peak_memory_bytes = static_cast<int64_t>(std::llround(peak));
  result.peak_memory_rank = tg.ranks[peak_rank].global_rank;
  result.peak_model_state_bytes = state[peak_rank];
  result.peak_activation_bytes = er.peak_bytes[peak_rank];
  result.peak_fragmentation_bytes = memory::fragmentation_bytes(hardware, tensors);
  result.peak_runtime_bytes =
      memory::runtime_memory(hardware, config, tied_embeddings, tg.ranks[peak_rank].pp).total();
  result.memory_headroom = headroom;
  result.memory_capacity_bytes = memory::usable_bytes(hardware, headroom);
  result.fits_memory = peak <= result.memory_capacity_bytes;
}

// Memory counters per rank: model state plus the timeline, one point whenever the level has
// moved by more than 0.5 % of the rank's peak since the last point (and at the peak itself), so
// the counter track stays small next to the slices.
void write_memory_counters(common::ChromeTraceWriter& writer, const graph::TrainingGraph& tg,
                           const engine::EngineResult& er, const std::vector<double>& state) {
  std::vector<std::vector<std::pair<double, double>>> changes(tg.ranks.size());
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const graph::Op& op = tg.graph[v];
    if (op.alloc_bytes != 0) changes[op.rank].push_back({er.start_s[v], op.alloc_bytes});
    if (op.free_bytes != 0) changes[op.rank].push_back({er.end_s[v], -op.free_bytes});
  }
  for (size_t r = 0; r < changes.size(); ++r) {
    auto& list = changes[r];
    std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second < b.second;
    });
    const int64_t pid = tg.ranks[r].global_rank;
    const double threshold = 0.005 * (state[r] + er.peak_bytes[r]);
    double level = state[r], last_written = -1;
    auto point = [&](double time) {
      writer.counter(pid, "memory", std::llround(time * 1e9) / 1e3, {{"GiB", level / (1 << 30)}});
      last_written = level;
    };
    point(0);
    for (const auto& [time, delta] : list) {
      level += delta;
      if (std::abs(level - last_written) > threshold || level >= state[r] + er.peak_bytes[r])
        point(time);
    }
  }
}

}  // namespace

SimulationResult summarize_run(const graph::TrainingGraph& tg, const engine::EngineResult& er,
                               const std::vector<double>& model_state, const spec::ModelSpec& model,
                               const spec::Hardware& hardware, const spec::ParallelConfig& config,
                               const std::string& cost_model, double memory_headroom) {
  SimulationResult result;
  result.config = config;
  result.model_name = model.name();
  result.hardware_name = hardware.name;
  result.cost_model = cost_model;
  result.simulated_ranks = static_cast<int64_t>(tg.ranks.size());
  result.ops = static_cast<int64_t>(boost::num_vertices(tg.graph));
  result.events = er.events;
  result.iteration_time_s = er.makespan_s;

  const graph::ModelDims& d = tg.dims;
  const int64_t sequences = config.global_batch_size();
  result.model_flops = graph::model_flops_per_iteration(d, sequences);
  double recomputed = 0;
  if (config.recompute() == spec::RECOMPUTE_FULL) {
    recomputed = static_cast<double>(sequences) * d.layers * graph::layer_forward_flops(d);
  } else if (config.recompute() == spec::RECOMPUTE_SELECTIVE) {
    recomputed = static_cast<double>(sequences) * d.layers * graph::attention_core_forward_flops(d);
  }
  result.hardware_flops = result.model_flops + recomputed;
  result.peak_flops_per_gpu = hardware.peak_flops(model.dtype());
  if (result.iteration_time_s > 0) {
    const double gpus = static_cast<double>(config.num_gpus());
    result.tokens_per_s = static_cast<double>(sequences) * d.seq / result.iteration_time_s;
    const double model_rate = result.model_flops / result.iteration_time_s / gpus;
    result.model_tflops_per_gpu = model_rate / 1e12;
    if (result.peak_flops_per_gpu > 0) {
      result.mfu = model_rate / result.peak_flops_per_gpu;
      result.hfu =
          result.hardware_flops / result.iteration_time_s / gpus / result.peak_flops_per_gpu;
    }
  }

  // Slowest rank: the busiest compute stream (ties: the lowest simulated index).
  std::vector<double> busy(tg.ranks.size(), 0.0);
  for (graph::OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    const graph::Op& op = tg.graph[v];
    if (op.stream == graph::Stream::kCompute) busy[op.rank] += er.end_s[v] - er.start_s[v];
  }
  const int slowest = static_cast<int>(std::max_element(busy.begin(), busy.end()) - busy.begin());
  result.slowest_rank = tg.ranks[slowest].global_rank;
  result.breakdown = breakdown_of(tg, er, slowest, result.iteration_time_s);

  summarize_memory(tg, er, model_state, hardware, config, model.tied_embeddings(), memory_headroom,
                   result);
  return result;
}

void write_simulation_trace(common::ChromeTraceWriter& writer, const graph::TrainingGraph& tg,
                            const engine::EngineResult& er, const std::vector<double>& model_state,
                            const SimulationResult& result) {
  for (size_t r = 0; r < tg.ranks.size(); ++r) {
    const graph::RankCoord& c = tg.ranks[r];
    writer.process_name(c.global_rank, "rank " + std::to_string(c.global_rank) + " (tp " +
                                           std::to_string(c.tp) + ", dp " + std::to_string(c.dp) +
                                           ", pp " + std::to_string(c.pp) + ")");
    writer.process_sort_index(c.global_rank, c.global_rank);
    for (graph::Stream stream : graph::streams_to_show(tg, static_cast<int32_t>(r))) {
      const int s = static_cast<int>(stream);
      writer.thread_name(c.global_rank, s, std::string(to_string(stream)));
      writer.thread_sort_index(c.global_rank, s, s);
    }
  }
  const auto& g = tg.graph;
  for (graph::OpVertex v = 0; v < boost::num_vertices(g); ++v) {
    const graph::Op& op = g[v];
    // Start and end are rounded to whole nanoseconds before taking the duration, so slices that
    // touch on a stream never overlap in the file.
    const int64_t start_ns = std::llround(er.start_s[v] * 1e9);
    const int64_t end_ns = std::llround(er.end_s[v] * 1e9);
    writer.complete(tg.ranks[op.rank].global_rank, static_cast<int>(op.stream), graph::op_name(op),
                    std::string(to_string(op.kind)), start_ns / 1e3, (end_ns - start_ns) / 1e3,
                    op_args(op));
  }
  write_memory_counters(writer, tg, er, model_state);
  writer.distributed_info({{"backend", "nccl"},
                           {"rank", tg.ranks.front().global_rank},
                           {"world_size", result.config.num_gpus()},
                           {"simulated", true}});
  writer.metadata("mpsim", to_json(result));
  writer.finish();
}

}  // namespace mpsim::report
