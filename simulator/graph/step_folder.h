// StepFolder: what the graph builder asks of step folding (GraphOptions::fold).
//
// Step folding makes simulation fast enough for sweeps: instead of every op of every pipeline
// step, the graph gets one OpKind::kStepBlock op per step, carrying the step's duration and
// memory profile. The graph layer decides which steps may fold and builds the ops of one step
// into a scratch graph on request; a StepFolder, which lives above the cost, memory and engine
// layers (simulator/folding), prices, sizes and times that scratch graph. Which steps fold:
// every forward step, and every backward step whose gradients no other stream waits on (under
// DP the last micro-batch's backward, and every backward under ZeRO-2, keep their ops); ZeRO-3
// with DP > 1 and GraphOptions::all_ranks disable folding. This is exact when nothing but the
// step shares the compute and TP streams while it runs, which holds with one simulated rank per
// pipeline stage (a "representative rank": TP and DP peers run the same program at the same time,
// so one rank stands for its stage).
//
// Pipeline sends: a rank's sends in one direction become edge delays (EdgeDelay, priced with
// send_seconds) when no send can be longer than the shortest step that produces one; then no
// send ever waits for the previous one on its stream, so the delay is exact. The breakdown then
// counts those transfers as bubble rather than as exposed communication. Otherwise sends stay ops.
#pragma once

#include <cstdint>
#include <functional>

#include "simulator/graph/op.h"

namespace mpsim::graph {

struct TrainingGraph;

// What fixes a pipeline step's ops: two steps of one kind have the same ops (up to layer and
// micro-batch numbers), hence the same timeline and memory profile.
struct StepKind {
  bool forward = true;
  bool first_stage = false;  // the first virtual stage (holds the embedding)
  bool last_stage = false;   // the last virtual stage (holds the head and loss)
  int32_t tp_nodes = 1;      // nodes the rank's TP group spans
  int32_t cp_nodes = 1;      // ... and its CP group
  bool operator==(const StepKind&) const = default;
};

// One folded step: what its kStepBlock op carries.
struct FoldedStep {
  double seconds = 0;  // from the step's first op start to its last op end
  double alloc = 0;    // bytes allocated at the block's start: the step's memory peak
  double free = 0;     // bytes returned at its end (alloc minus what the step keeps)
  double flops = 0;    // the step's compute FLOPs
  double bytes = 0;    // the step's compute HBM bytes
  // How much longer the block takes beside the rank's other communication (Op::comm_interference).
  double comm_interference = 0;
};

class StepFolder {
 public:
  virtual ~StepFolder() = default;
  // The folded form of a step of `kind`. `build_step` returns that step's compute and TP ops on
  // one rank, alone in a scratch graph (its ranks those of the graph being built, its durations
  // and memory unset); a folder calls it when it has not folded this kind before.
  virtual FoldedStep fold(const StepKind& kind,
                          const std::function<TrainingGraph()>& build_step) = 0;
  // Seconds of a pipeline send (OpKind::kSend), for sends that become edge delays.
  virtual double send_seconds(const Op& send) = 0;
};

}  // namespace mpsim::graph
