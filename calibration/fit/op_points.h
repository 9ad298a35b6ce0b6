// Op times at exact shapes, learned from a profiled run: the measured GPU time of each op of a
// run (per rank, by op name, graph::op_name) joined to the simulator's graph of the same
// configuration, turned into the `.exact` tables that the calibrated cost model prices those
// shapes with, ahead of its interpolated grids (simulator/cost/calibrated_cost.h, "Exact
// tables"; simulator/cost/README.md says why).
//
// Each graph op with a measured time becomes a sample of the exact table of the table that would
// price it, keyed exactly as the cost model keys that op:
//   GEMM                 gemm_layout_table(label).exact, e.g. gemm.bf16.dgrad.exact   m, n, k
//   attention            attention.fwd.bf16.exact (fwd, rcp), attention.bwd.bf16.exact
//                                                              batch_heads, seq, head_dim
//   norm                 memory.norm.fwd.exact (fwd, rcp), memory.norm.bwd.exact    bytes
//   element-wise, loss,  memory.elementwise.exact, memory.loss.exact,               bytes
//   optimizer            memory.optimizer.exact                (bytes = Op::bytes, HBM bytes)
//   collectives, sends   <kind>.nvlink.exact, e.g. allreduce.nvlink.exact    group_size, bytes
//   inside one node
// A collective's members on several ranks (one Op::collective id) are one instance whose time is
// the fastest member's: the members that waited for late peers hold the wait too (the
// calibration bench takes the shortest GPU alike, calibration/fit/README.md). A point's
// seconds is the median of its key's instances (every layer, micro-batch and rank with that
// shape; the mean of the two middle ones for an even count), so one slow instance does not move
// it.
//
// Skipped, and counted in the notes: ops without a measurement (name missing, or a time that is
// not positive and finite), step blocks (kStepBlock: no kernel of their own), compute ops without
// a shape or bytes, collectives that span nodes (the cost model prices them by the network
// roofline, no table) and collectives that move nothing (group of 1 or 0 bytes: priced 0).
//
// Failure: learn_op_tables throws std::invalid_argument when seconds_by_rank does not have one
// map per graph rank; merge_exact_tables throws std::invalid_argument for a table whose name is
// not `<base>.exact`, or whose key_names differ from the profile's table of that name. Tables
// learned here always pass the cost model's checks (positive finite keys and seconds, distinct
// keys).
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "simulator/graph/training_graph.h"
#include "simulator/spec/hardware_profile.pb.h"

namespace mpsim::calibration {

// The exact table (`<base>.exact`, the list above, with the base the cost model's
// cost::op_table_name(op)) and the key vector under which the calibrated cost model looks `op`
// up, read from the op's fields as simulator/cost/calibrated_cost.cpp reads them; nullopt for an op
// no table prices (step blocks, compute ops without a shape or bytes, collectives spanning nodes or
// moving nothing). Shared with model_points.h, which lists the keys the calibration bench should
// measure.
struct ExactKey {
  std::string table;
  std::vector<double> keys;
};
std::optional<ExactKey> exact_table_key(const graph::Op& op);

// seconds_by_rank[r]: op name (graph::op_name) of graph rank r -> that op's measured GPU seconds
// per iteration (mean over iterations). Returns the exact tables with at least one point, by
// name, points in ascending key order, each with `provenance` (plus how it was reduced) as its
// provenance. `notes` (may be null) receives what was joined and skipped, e.g.
//   "joined 1712 of 1720 graph ops by name; 8 without a measurement (e.g. rank 0: optimizer)"
//   "gemm.bf16.fwd.exact: 5 points from 640 ops"
//   "3 measured names matching no graph op (e.g. rank 1: fwd/mb0/L0/attn.bogus)"
std::vector<spec::CalibratedTable> learn_op_tables(
    const graph::TrainingGraph& graph,
    const std::vector<std::unordered_map<std::string, double>>& seconds_by_rank,
    const std::string& provenance, std::vector<std::string>* notes);

// Adds exact tables to `profile`: a table the profile lacks is appended; one it has gets the new
// points, and a key present in both keeps the mean of the two times (pairwise: a run merged into
// an already merged table counts as much as the earlier runs together). Points end in ascending
// key order; a different provenance is appended to the table's ("; ").
void merge_exact_tables(spec::HardwareProfile* profile,
                        const std::vector<spec::CalibratedTable>& tables);

}  // namespace mpsim::calibration
