// Op times learned from profiled executor runs, for `mpsim calibrate --from run.sqlite` and the
// leave-one-out prediction of `mpsim validate`: a run's measured op times
// (profiler/analyze/run_measurement.h) joined by op name with the simulator's graph of the same
// configuration, every GPU simulated, and turned into exact-shape tables
// (profiler/calibrate/op_points.h).
//
// Failure: train_request_from_command throws spec::SpecError naming `source` when the command is
// not an `mpsim train` command line or its flags do not parse (the flag named); the others
// propagate the graph's and op_points' errors.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "profiler/analyze/run_measurement.h"
#include "simulator/graph/training_graph.h"
#include "simulator/spec/hardware_profile.pb.h"
#include "tools/mpsim/train_args.h"

namespace mpsim::cli {

// The measured op seconds of `run` per simulated rank of `graph` (index into graph.ranks).
std::vector<std::unordered_map<std::string, double>> measured_seconds_by_graph_rank(
    const graph::TrainingGraph& graph, const profiler::RunMeasurement& run);

// The flags of a profiled command line "<path>/mpsim train --model ... --log ..." (as the
// profiler stores it), parsed as `mpsim train` parses them.
TrainRequest train_request_from_command(const std::string& command, const std::string& source);

// The exact-shape tables one run teaches: its configuration rebuilt from its command line,
// validated against `hardware_for_validation`, simulated with every GPU as a graph (dropout 0, as
// the executor trains), and joined with the run's op times.
std::vector<spec::CalibratedTable> op_tables_from_run(const profiler::RunMeasurement& run,
                                                      const std::string& source,
                                                      std::vector<std::string>* notes);

}  // namespace mpsim::cli
