#include "simulator/folding/step_folding.h"

#include <algorithm>

#include "simulator/engine/engine.h"
#include "simulator/graph/training_graph.h"
#include "simulator/memory/memory_timeline.h"

namespace mpsim::folding {
namespace {

int64_t memo_key(const graph::StepKind& kind) {
  return (kind.forward ? 1 : 0) | (kind.first_stage ? 2 : 0) | (kind.last_stage ? 4 : 0) |
         (static_cast<int64_t>(kind.tp_nodes) << 3) | (static_cast<int64_t>(kind.cp_nodes) << 34);
}

}  // namespace

graph::FoldedStep StepFolding::fold(const graph::StepKind& kind,
                                    const std::function<graph::TrainingGraph()>& build_step) {
  const int64_t key = memo_key(kind);
  if (auto it = memo_.find(key); it != memo_.end()) return it->second;
  return memo_.emplace(key, evaluate(build_step())).first->second;
}

// The scratch graph holds one rank's ops only, so the engine runs them as they would run in the
// full graph with nothing else on the compute and TP streams.
graph::FoldedStep StepFolding::evaluate(graph::TrainingGraph scratch) const {
  graph::OpGraph& g = scratch.graph;
  const graph::OpVertex n = static_cast<graph::OpVertex>(boost::num_vertices(g));
  for (graph::OpVertex v = 0; v < n; ++v) {
    g[v].duration_s = cost_.op_seconds(g[v]);
    g[v].comm_interference = cost_.comm_interference(g[v]);
  }
  if (memory_) memory::annotate_memory(scratch, *memory_->first, memory_->second);
  const engine::EngineResult run = engine::run_engine(scratch);
  graph::FoldedStep out;
  out.seconds = run.makespan_s;
  // The block slows down beside the rank's other communication by the share of its time its
  // interfering ops ran free of the step's own TP communication: an op of alone-time d that ran
  // r seconds did (r - d) / f of its work beside that communication.
  double slowable = 0;
  for (graph::OpVertex v = 0; v < n; ++v) {
    out.flops += g[v].flops;
    if (!graph::is_communication(g[v].kind)) out.bytes += g[v].bytes;
    const double f = g[v].comm_interference;
    if (f <= 0) continue;
    const double beside = (run.end_s[v] - run.start_s[v] - g[v].duration_s) / f;
    slowable += f * std::max(0.0, g[v].duration_s - beside);
  }
  if (out.seconds > 0) out.comm_interference = slowable / out.seconds;
  if (n > 0) {
    const size_t rank = static_cast<size_t>(g[0].rank);
    out.alloc = run.peak_bytes[rank];
    out.free = run.peak_bytes[rank] - run.final_bytes[rank];
  }
  return out;
}

}  // namespace mpsim::folding
