// The state of one calibration fit (calibrate_profile.h), shared by the files that fit it:
// fit_points.cpp (measurements into the points of each table), fit_tables.cpp (each table sorted,
// repaired, checked and its exact table), fit_numbers.cpp (efficiencies and the NVLink alpha-beta
// fit) and calibrate_profile.cpp (assembly and provenance). Internal to calibration/fit.
//
// Failure: as calibrate_profile.h says; the helpers here add notes to the report rather than
// throw, except where a function says otherwise.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "calibration/fit/calibrate_profile.h"
#include "simulator/cost/calibrated_cost.h"
#include "simulator/spec/hardware.h"

namespace mpsim::calibration::fit {

// Bytes each memory op moves per byte of the bench's tensor B (calibration/bench/memory_bench.cu,
// and the graph's counts in simulator/graph/training_graph.cpp).
constexpr double kNormForwardBytes = 2;   // norm_bytes(false): read x, write y
constexpr double kNormBackwardBytes = 3;  // norm_bytes(true): read dy and x, write dx
constexpr double kElementwiseBytes = 2;   // bias_gelu_forward: read x, write y
constexpr double kFp8CastBytes =
    2;  // quantize_fp8: read x (bf16), write its FP8 copy and transpose
constexpr double kAdamBytesPerParam = 30;   // the graph's kAdamBytesPerParam
constexpr double kMasterBytesPerParam = 4;  // B = fp32 master weights
// A memory op or collective cannot take longer on fewer bytes; a point slower than this factor
// times the fastest point at a larger size is a measurement artifact (the first collective after
// NCCL's set-up, still warming up) and is dropped. The factor leaves room for noise among the
// latency-bound small sizes, whose times are nearly equal.
constexpr double kArtifactRatio = 1.5;

// Tables written for other uses than the cost model, which lists them as ignored.
bool ignored_by_cost_model(std::string_view name);
// x rounded to `digits` significant digits (the numbers written into the profile; their text
// comes from common/text.h).
double significant(double x, int digits);
std::string keys_text(const spec::CalibratedTable& table, const spec::CalibratedPoint& p);
template <std::size_t N>
std::vector<std::string> names(const std::array<std::string_view, N>& keys) {
  return {keys.begin(), keys.end()};
}

// One table being built: its points and which databases they came from.
using Keys = std::vector<double>;

struct TableBuild {
  spec::CalibratedTable table;
  std::set<int64_t> sources;
  std::string what;          // what was measured and what the keys and seconds are
  std::set<Keys> listed;     // keys of points measured from the bench's point list
  std::set<Keys> artifacts;  // keys dropped as measurement artifacts (reported once)
};

// What one fit reads and builds.
struct FitState {
  const CalibrationData& data;
  const spec::HardwareProfile& base;
  const CalibrationInfo& info;
  CalibrationReport& report;
  spec::Hardware base_hw;
  std::map<std::string, TableBuild> builds;
  std::vector<const CalibrationMeasurement*> interference;
  int loss_forward = 0, loss_backward = 0;  // memory.loss ranges by pass
};

// ---- fit_points.cpp: measurements into table points ---------------------------------------------
// Tables whose points also go to `<table>.exact`: the ones the models' exact shapes are
// measured for (GEMMs by layout, attention, collectives).
bool has_exact_table(std::string_view name);
// The order tables are written in.
const std::vector<std::string_view>& table_order();
// What a table holds: what was measured, what its keys and seconds are.
std::string table_description(std::string_view name);
// Adds the measurement's points to the tables it feeds (each kind converts its keys).
void add_measurement(FitState& f, const CalibrationMeasurement& m);

// ---- fit_tables.cpp: tables sorted, repaired and checked ----------------------------------------
// Sorts, repairs and checks one table; nullopt (with notes) when it cannot be written.
std::optional<spec::CalibratedTable> finish(FitState& f, TableBuild& build);
// An exact table: every point of its base table's measurements, sorted, a collective's
// artifacts dropped (those dropped from the base table already reported there); nullopt (with
// a note) when the cost model refuses it.
std::optional<spec::CalibratedTable> finish_exact(FitState& f, TableBuild& build,
                                                  const TableBuild& base);
// memory.norm: the points of memory.norm.fwd and memory.norm.bwd together, before them.
void add_merged_norm_table(FitState& f, std::vector<spec::CalibratedTable>& tables);
// One instance of the interference GEMM (measured beside all-reduces) and the same GEMM measured
// alone right before it on the same rank (nullptr when it was not).
struct InterferencePair {
  const CalibrationMeasurement* measurement;
  const RangeInstance* with;
  const RangeInstance* alone;
  // How many times longer the GEMM's kernels took beside the all-reduces (alone set).
  double slowdown() const { return with->seconds.compute / alone->seconds.all; }
};
std::vector<InterferencePair> interference_pairs(FitState& f);
// "measured on 1 x NVIDIA H100 80GB HBM3 2026-11-26 (traces/...) with <versions>", for sources.
std::string measured_on(FitState& f, const std::set<int64_t>& indices);

// ---- fit_numbers.cpp: numbers of the base replaced by fitted ones -------------------------------
// efficiency.gemm_max, attention_max and memory_bound from the best measured rates, and
// comm_interference from the interference GEMM against the same GEMM alone; the fields set are
// returned.
std::vector<std::string> fit_efficiencies(FitState& f, spec::HardwareProfile& profile);
// node.nvlink_bandwidth and nvlink_latency from the 2-GPU all-reduce, where measured; the
// fields set are added to `replaced`.
void fit_nvlink(FitState& f, spec::HardwareProfile& profile, std::vector<std::string>& replaced);

}  // namespace mpsim::calibration::fit
