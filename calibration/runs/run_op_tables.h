// Op times learned from profiled executor runs, for `mpsim calibrate --from run.sqlite` and the
// leave-one-out prediction of `mpsim validate`: a run's measured op times
// (profiler/analyze/run_measurement.h) joined by op name with the simulator's graph of the same
// configuration, every GPU simulated, and turned into exact-shape tables
// (calibration/fit/op_points.h). "Exact tables" are tables looked up by the exact key of an op
// (its shape) ahead of any grid (simulator/cost/calibrated_cost.h).
//
// Failure: op_tables_from_run throws spec::SpecError naming `source` and the refused field
// ("run.sqlite: tensor_parallel: ...") when the configuration does not validate, and propagates
// the graph's and op_points' errors.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "calibration/runs/run_config.h"
#include "profiler/analyze/run_measurement.h"
#include "simulator/graph/training_graph.h"
#include "simulator/spec/hardware_profile.pb.h"

namespace mpsim::calibration {

// The measured op seconds of `run` per simulated rank of `graph` (index into graph.ranks).
std::vector<std::unordered_map<std::string, double>> measured_seconds_by_graph_rank(
    const graph::TrainingGraph& graph, const profiler::RunMeasurement& run);

// The exact-shape tables one run teaches: its configuration (from its run mark, or rebuilt from
// its command line for a database without one), validated against a datasheet profile, simulated
// with every GPU as a graph (dropout 0, as the executor trains), and joined with the run's op
// times. The tables' provenance names `source` and the run's command line.
std::vector<spec::CalibratedTable> op_tables_from_run(const profiler::RunMeasurement& run,
                                                      const RunConfig& config,
                                                      const std::string& source,
                                                      std::vector<std::string>* notes);

}  // namespace mpsim::calibration
