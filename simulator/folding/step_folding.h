// StepFolding: the step folder (graph::StepFolder, see simulator/graph/step_folder.h) that the
// simulator uses. Step folding replaces every foldable pipeline step of the training graph by one
// op carrying the step's duration and memory profile, so a sweep simulates a few ops per step
// instead of every kernel; iteration time and peak memory stay exactly those of the full graph.
//
// To fold a kind of step the first time it is met, StepFolding prices the step's scratch graph
// with the cost model, sizes it with the memory timeline (simulator/memory) when asked to, and
// runs it on the discrete-event engine (simulator/engine), the same engine that later runs the
// folded graph: the block's duration is the scratch run's makespan, its allocation the scratch
// rank's memory peak and its release that peak less what the step keeps. Each kind is folded
// once (a memo); pipeline sends are priced by the cost model. Errors of the cost model and the
// engine propagate; nothing else throws.
//
// Depends on cost, memory and engine; the graph layer only sees the StepFolder interface.
#pragma once

#include <map>
#include <optional>
#include <utility>

#include "simulator/cost/cost_model.h"
#include "simulator/graph/step_folder.h"
#include "simulator/memory/memory_model.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::folding {

class StepFolding final : public graph::StepFolder {
 public:
  // Prices steps with `cost` and gives them no memory (alloc = free = 0).
  explicit StepFolding(const cost::CostModel& cost) : cost_(cost) {}
  // Prices steps with `cost` and sizes them as memory::annotate_memory does for `config` (the
  // config the graph is built from) with attention scores stored and the loss keeping `loss`.
  StepFolding(const cost::CostModel& cost, const spec::ParallelConfig& config,
              memory::LossMemory loss)
      : cost_(cost), memory_({&config, loss}) {}

  graph::FoldedStep fold(const graph::StepKind& kind,
                         const std::function<graph::TrainingGraph()>& build_step) override;
  double send_seconds(const graph::Op& send) override { return cost_.op_seconds(send); }

 private:
  graph::FoldedStep evaluate(graph::TrainingGraph scratch) const;

  const cost::CostModel& cost_;
  std::optional<std::pair<const spec::ParallelConfig*, memory::LossMemory>> memory_;
  std::map<int64_t, graph::FoldedStep> memo_;  // by step kind
};

}  // namespace mpsim::folding
