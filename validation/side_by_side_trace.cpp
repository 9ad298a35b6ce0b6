#include "validation/side_by_side_trace.h"

#include <cmath>
#include <map>

#include "common/chrome_trace.h"
#include "simulator/graph/op_name.h"

namespace mpsim::validation {
namespace {

double us(double seconds) { return std::llround(seconds * 1e9) / 1e3; }

nlohmann::json kinds_json(const CategorySeconds& seconds) {
  nlohmann::json out;
  for (int k = 0; k < kNumCategories; ++k)
    out[std::string(category_key(static_cast<OpCategory>(k)))] = seconds[k];
  return out;
}

}  // namespace

void write_side_by_side_trace(const std::string& path, const ConfigComparison& c,
                              const profiler::RunMeasurement& measured,
                              const simulation::SimulationDetail& detail) {
  common::ChromeTraceWriter writer(path, 0);
  const int32_t rank = c.compared_rank;
  const std::string suffix = "rank " + std::to_string(rank);
  writer.process_name(0, "measured " + suffix);
  writer.process_sort_index(0, 0);
  writer.process_name(1, "simulated " + suffix);
  writer.process_sort_index(1, 1);

  // Measured: one track per CUDA stream; kernels named by their op.
  const profiler::RankRun* run = nullptr;
  for (const profiler::RankRun& r : measured.ranks)
    if (r.rank == rank) run = &r;
  if (run) {
    const std::vector<TimedWork> work = measured_work(measured, *run, detail);
    std::map<uint32_t, int64_t> tracks;
    for (const profiler::MeasuredKernel& k : run->timeline) tracks.emplace(k.stream, 0);
    int64_t index = 0;
    for (auto& [stream, tid] : tracks) {
      tid = index++;
      writer.thread_name(0, tid, "CUDA stream " + std::to_string(stream));
      writer.thread_sort_index(0, tid, tid);
    }
    for (size_t i = 0; i < run->timeline.size(); ++i) {
      const profiler::MeasuredKernel& k = run->timeline[i];
      const std::string name = k.op >= 0 ? run->op_names[static_cast<size_t>(k.op)] : "(no op)";
      const double start = us(k.start_s);
      writer.complete(0, tracks[k.stream], name, std::string(category_key(work[i].category)), start,
                      us(k.end_s) - start, nlohmann::json{{"nccl", k.nccl}});
    }
  }

  // Simulated: one track per stream of the rank.
  const int32_t graph_rank = graph_rank_of(detail, rank);
  for (graph::Stream stream : graph::streams_to_show(detail.graph, graph_rank)) {
    const int s = static_cast<int>(stream);
    writer.thread_name(1, s, std::string(graph::to_string(stream)));
    writer.thread_sort_index(1, s, s);
  }
  const auto& g = detail.graph.graph;
  for (graph::OpVertex v = 0; v < boost::num_vertices(g); ++v) {
    const graph::Op& op = g[v];
    if (op.rank != graph_rank) continue;
    const double start = us(detail.engine.start_s[v]);
    writer.complete(1, static_cast<int>(op.stream), graph::op_name(op),
                    std::string(category_key(category_of(op))), start,
                    us(detail.engine.end_s[v]) - start);
  }
  writer.distributed_info(
      {{"backend", "nccl"}, {"rank", rank}, {"world_size", c.config.num_gpus()}});
  writer.metadata("mpsim_validation", {{"config", c.name},
                                       {"flags", c.flags},
                                       {"measured_iteration_s", c.measured_iteration_s},
                                       {"predicted_iteration_s", c.predicted_iteration_s},
                                       {"measured_kinds_s", kinds_json(c.measured)},
                                       {"predicted_kinds_s", kinds_json(c.predicted)}});
  writer.finish();
}

}  // namespace mpsim::validation
