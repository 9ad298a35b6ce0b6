// Fitting calibration measurements (calibration_measurements.h) into a HardwareProfile: the base
// profile (a datasheet profile, e.g. hw_profiles/h100-sxm.textproto) with measured tables added
// and the efficiency and NVLink numbers that the measurements define replaced by fitted values,
// each with its source. What `mpsim calibrate` writes.
//
// Tables (names and keys as simulator/cost/calibrated_cost.h declares them; seconds per
// repetition as calibration_measurements.h defines them; B = the bench's key):
//   gemm.bf16.fwd, gemm.bf16.dgrad, gemm.bf16.wgrad (m, n, k)   every kernel of the range
//   gemm.bf16 (m, n, k)               a copy of gemm.bf16.fwd: the default for every layout
//   attention.fwd.bf16, attention.bwd.bf16 (batch_heads, seq, head_dim)   every kernel
//   attention.flash.fwd.bf16, attention.flash.bwd.bf16 (batch_heads, seq, head_dim, group)
//                                     every kernel of cuDNN's fused core
//   memory.norm.fwd (bytes = 2B)      the norm_forward kernels (the graph's norm_bytes(fwd))
//   memory.norm.bwd (bytes = 3B)      the norm_backward kernels (norm_bytes(bwd))
//   memory.norm (bytes)               the points of both, for a model that prices norms by bytes
//                                     alone (the cost model prefers the two above, by pass)
//   memory.elementwise (bytes = 2B)   bias_gelu_forward reads and writes the tensor once
//   memory.optimizer (bytes = 30·B/4) adamw_step over B/4 parameters, 30 bytes each
//                                     (the graph's kAdamBytesPerParam)
//   memory.loss (bytes = B)           the cross-entropy: forward points (memory.loss.fwd ranges,
//                                     B = 2·tokens·vocab + 4·tokens) and backward points
//                                     (memory.loss.bwd, B = 4·tokens·vocab) in one table, as the
//                                     graph's loss ops of both passes count Op::bytes; a backward
//                                     point at the key of a forward point is dropped (reported)
//   memory.softmax (bytes = B)        causal_softmax_forward alone; B = the scores tensor; not
//                                     read by the cost model (listed as ignored: the attention
//                                     tables price the executor's softmax)
//   <collective>.nvlink (group_size, bytes)  the NCCL kernels (slowest GPU)
//   interference.gemm.bf16 (m, n, k)  the fwd GEMM's (non-NCCL) kernels while all-reduces run
//                                     beside it; not read by the cost model (it lists the table
//                                     as ignored), kept for an overlap model
//   <table>.exact for each GEMM, attention and collective table above (same keys): every point
//                                     measured for that table, on the grid or not (scattered
//                                     points of the bench's --points list: the models' exact
//                                     shapes, model_points.h), which the cost model looks up by
//                                     exact key ahead of the grid (calibrated_cost.h, "Exact
//                                     tables"); collectives' artifacts (below) are dropped from
//                                     it too
// Grid tables and the point list: a point whose range is in CalibrationInfo::listed_ranges
// enters its grid table only where each of its keys is a value that the table's other, unlisted
// points have (the bench's grid axes); the others go to the exact table alone (one note per
// table). Without listed_ranges every point is a grid candidate, as before the list existed.
// Provenance: every table's and the profile's name the GPUs, date and database of each source
// and its software versions (calibration_measurements.h: CUDA driver and runtime, cuBLAS, NCCL;
// "software versions unknown (not recorded)" for a database without the bench's meta range).
// Checks, in order, each reported: a point without kernels of its part is dropped; in a
// bytes-keyed table (memory ops; collectives per group size) a point more than 1.5 x slower than
// a point at a larger size is dropped as a measurement artifact (times cannot fall with size;
// the 2 x H200 database's first collective, a 1 KiB all-reduce still warming up, is one); a
// table whose points do not form a complete grid is repaired by dropping the axis values that
// make it incomplete (grid_repair.h); a table, or a collective's group, left with a key of a
// single value, or that make_calibrated_cost_model refuses, is not written.
//
// Numbers replaced in the base (only where the data define them; otherwise the base's are kept):
//   efficiency.gemm_max       best measured GEMM throughput (2mnk / seconds, any layout) /
//   peak_bf16 efficiency.attention_max  best measured attention throughput (4·bh·s²·d / seconds
//   forward,
//                             twice that backward) / peak_bf16
//   efficiency.memory_bound   element-wise streaming bandwidth (bytes moved / seconds at the
//                             largest size measured, whose traffic is far above the L2 cache;
//                             smaller sizes are partly served from it) / hbm_bandwidth
//   node.nvlink_bandwidth     from the α-β fit t(S) = α + S/β of the 2-GPU all-reduce
//                             (cost::fit_alpha_beta): bus bandwidth β·2(n−1)/n, n = 2
//   node.nvlink_latency       α / (2(n−1)), the per-step latency of the ring formula (kept from
//                             the base when the fit's α is 0)
// Peaks, HBM bandwidth and capacity, the kernel launch overhead, gemm_half_dim and the network
// stay the base's (datasheet or assumed values), as the profile's provenance says.
//
// Failure: throws CalibrationError for unreadable databases or ones without calibration ranges
// (naming the file), a data set that leaves no table, and a result the cost model refuses (an
// internal error); spec::SpecError for a base profile that does not convert (naming the base).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "calibration/fit/calibration_measurements.h"
#include "simulator/spec/hardware_profile.pb.h"

namespace mpsim::calibration {

// Tables written for other uses than the cost model (which lists them as ignored).
inline constexpr std::string_view kInterferenceGemmTable = "interference.gemm.bf16";
inline constexpr std::string_view kSoftmaxTable = "memory.softmax";

struct CalibrationInfo {
  std::string profile_name;  // the result's name; empty: "<base name>-measured"
  std::string command;       // the command line that asked for the calibration (provenance)
  std::string date;          // the calibration's UTC date, "YYYY-MM-DD"; empty: today
  // Range names ("calib/gemm.bf16/fwd/m=...") the bench measured from its --points list (the file
  // comment: exact tables, and a grid table only on its axes); empty: none known.
  std::set<std::string> listed_ranges;
};

// What the fit did, for the user: points, keys and tables dropped, and the numbers replaced.
struct CalibrationReport {
  // One line per database: "<path>: <GPUs> (host <h>), recorded <date> by `<command>`;
  // <versions>".
  std::vector<std::string> sources;
  std::vector<std::string> notes;
  std::vector<std::string> fitted;  // "efficiency.gemm_max = 0.79 (was 0.86)", ...
};

// Today's date, UTC, as YYYY-MM-DD (provenance of calibrated tables).
std::string today_utc();

spec::HardwareProfile calibrate_from_traces(const std::vector<std::string>& databases,
                                            const spec::HardwareProfile& base,
                                            const CalibrationInfo& info,
                                            CalibrationReport* report = nullptr);

// The same from measurements already read (tests build them by hand).
spec::HardwareProfile calibrate_profile(const CalibrationData& data,
                                        const spec::HardwareProfile& base,
                                        const CalibrationInfo& info,
                                        CalibrationReport* report = nullptr);

}  // namespace mpsim::calibration
