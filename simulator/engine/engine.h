// The discrete-event engine. It runs a TrainingGraph whose ops already carry durations.
//
// One contract for every resource: a stream (one per rank and Stream kind) runs its ops one at a
// time in program order (vertex order). The op at the head of a stream starts when the stream is
// idle and every predecessor in the graph has ended (plus the edge's delay, if it has one).
// An op that belongs to a collective
// (Op::collective >= 0) holds its stream from the moment it is ready and starts, on every member
// at once, when the last member is ready; all members end together. Events are processed in
// (time, sequence) order, so a simulation is deterministic: same graph, same event log.
//
// Interference: a compute op with Op::comm_interference f > 0 runs (1 + f) times slower for the
// part of it that overlaps communication ops of its rank (any op on a communication stream that
// has started and not ended); its end is re-planned each time communication starts or stops.
//
// Memory: each op's alloc_bytes are taken when it starts and its free_bytes returned when it ends;
// the engine records each rank's peak (the memory timeline of simulator/memory).
//
// run_engine() throws std::logic_error if ops remain that can never start (a dependency cycle or
// a collective whose members wait on each other), naming one of them.
#pragma once

#include <cstdint>
#include <vector>

#include "simulator/graph/training_graph.h"

namespace mpsim::engine {

struct EngineResult {
  std::vector<double> start_s;  // per vertex
  std::vector<double> end_s;    // per vertex
  double makespan_s = 0;
  int64_t events = 0;  // op starts plus op ends processed
  // Per simulated rank: the highest sum of Op::alloc_bytes - Op::free_bytes reached, applying
  // allocations at op starts and frees at op ends in event order (bytes above the rank's base).
  std::vector<double> peak_bytes;
  std::vector<double> final_bytes;  // what is still allocated when the iteration ends
};

EngineResult run_engine(const graph::TrainingGraph& graph);

}  // namespace mpsim::engine
