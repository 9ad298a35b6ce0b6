// The calibrated cost model: op times read from the measured tables of a hardware profile
// (spec::Hardware::calibrated, filled by `mpsim calibrate`), behind the CostModel interface.
// Inside a table's grid it interpolates (GridTable, calibrated_tables.h); outside it, it
// extrapolates with a curve fitted to the whole table; ops with no table, and collectives that
// span nodes, are priced by the roofline model of the same hardware. Formulas:
// simulator/cost/README.md, "Calibrated cost model".
//
// The tables are found by op name, one table per name; the names and the keys each must have are
// declared below, once. A table with another name is ignored (and listed by describe()).
//
// Exact tables. A table named `<base>` + kExactTableSuffix ("gemm.bf16.dgrad.exact"), for any
// base name below, holds op times measured at the exact shapes a profiled run's graph produced
// (calibration/fit/op_points.h): the base's key_names, scattered points (no grid). An op whose
// keys equal a point of the exact table that applies to it is priced by that point's seconds;
// any other op as without the exact table (grid, fitted curve, roofline). Exact tables resolve by
// layout and pass as the base tables do, table by table: a dgrad GEMM looks in
// gemm.bf16.dgrad.exact where that table exists, else in gemm.bf16.exact; a backward norm in
// memory.norm.bwd.exact, else memory.norm.exact. An exact table needs no base table.
//
// Failure: make_calibrated_cost_model throws std::invalid_argument, prefixed with
// "calibrated cost model for '<hardware name>': ", for a table whose key_names are not the
// expected ones (naming the table and the expected keys), a table given twice, a malformed table
// (GridTable's message, which names the table, the point and the key), a table whose fit fails
// (its message, naming the table), an exact table with a point of the wrong key count, a key or
// seconds that are not positive and finite, or a key vector given twice (naming the table, the
// point and the key), and for anything the roofline model refuses. op_seconds never
// throws for a valid op, allocates nothing and does no string work.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "simulator/cost/cost_model.h"
#include "simulator/graph/op.h"
#include "simulator/spec/hardware.h"

namespace mpsim::cost {

// ---- Table names (CalibratedTable::op) and their keys, in order --------------------------------

// Compute kernels in bf16; seconds at (m, n, k) and (batch·heads, seq, head_dim). GEMMs by
// layout (gemm_layout_table below): the graph's data- and weight-gradient GEMMs (the labels
// graph::gemm_layout calls kDgrad and kWgrad, named "*.dgrad" and "*.wgrad") are priced by the
// dgrad or wgrad table, any other GEMM by the fwd table; where that table is absent, by
// kGemmTable, the default for every layout.
inline constexpr std::string_view kGemmTable = "gemm.bf16";
inline constexpr std::string_view kGemmForwardTable = "gemm.bf16.fwd";
inline constexpr std::string_view kGemmDgradTable = "gemm.bf16.dgrad";
inline constexpr std::string_view kGemmWgradTable = "gemm.bf16.wgrad";
// The layers' linear GEMMs under the FP8 recipe (Op::fp8), by layout: FP8 operands (E4M3; the
// gradient E5M2), fp32 accumulation, keyed as the bf16 ones; without them such a GEMM takes the
// roofline at the FP8 peak (never the bf16 tables).
inline constexpr std::string_view kGemmFp8ForwardTable = "gemm.fp8.fwd";
inline constexpr std::string_view kGemmFp8DgradTable = "gemm.fp8.dgrad";
inline constexpr std::string_view kGemmFp8WgradTable = "gemm.fp8.wgrad";
inline constexpr std::string_view kAttentionForwardTable = "attention.fwd.bf16";   // fwd and rcp
inline constexpr std::string_view kAttentionBackwardTable = "attention.bwd.bf16";  // bwd
// The same for the fused flash-attention core (label attn.flash); the unfused core (attn.core)
// takes the two above.
inline constexpr std::string_view kFlashForwardTable = "attention.flash.fwd.bf16";
inline constexpr std::string_view kFlashBackwardTable = "attention.flash.bwd.bf16";
inline constexpr std::array<std::string_view, 3> kGemmKeys = {"m", "n", "k"};
inline constexpr std::array<std::string_view, 3> kAttentionKeys = {"batch_heads", "seq",
                                                                   "head_dim"};
// The fused core's tables also key the query heads per key/value head: grouped-query attention
// runs cuDNN's kernels slower than the same heads without grouping (its backward sums the key and
// value gradients over each group).
inline constexpr std::array<std::string_view, 4> kFlashKeys = {"batch_heads", "seq", "head_dim",
                                                               "group"};

// The FP8 recipe's casts (a linear's input or output gradient to FP8 with its transpose, the
// weights' once-per-iteration copies): keyed by the bytes the op moves, as the graph counts
// them; where absent the element-wise table prices them.
inline constexpr std::string_view kFp8CastTable = "memory.fp8_cast";

// Memory-bound kernels; seconds at the HBM bytes the kernel moves (read + written, as
// graph::Op::bytes counts them).
inline constexpr std::string_view kNormTable = "memory.norm";
// Norms by pass where measured apart (the backward kernel moves 3 bytes where the forward moves
// 2, at another bandwidth): forward and recompute by the fwd table, backward by the bwd table;
// where that table is absent, by kNormTable.
inline constexpr std::string_view kNormForwardTable = "memory.norm.fwd";
inline constexpr std::string_view kNormBackwardTable = "memory.norm.bwd";
inline constexpr std::string_view kElementwiseTable = "memory.elementwise";
inline constexpr std::string_view kLossTable = "memory.loss";
inline constexpr std::string_view kOptimizerTable = "memory.optimizer";
inline constexpr std::array<std::string_view, 1> kMemoryKeys = {"bytes"};

// NCCL collectives inside one node; seconds at (ranks in the group, buffer bytes as nccl-tests
// counts them: see cost_model.h). The table need not be a full grid over group sizes: each group
// size's points must form a grid over bytes on their own.
inline constexpr std::string_view kAllReduceTable = "allreduce.nvlink";
inline constexpr std::string_view kAllGatherTable = "allgather.nvlink";
inline constexpr std::string_view kReduceScatterTable = "reducescatter.nvlink";
inline constexpr std::string_view kSendTable = "send.nvlink";
inline constexpr std::array<std::string_view, 2> kCollectiveKeys = {"group_size", "bytes"};

// Suffix of an exact table's name: `<base>.exact`, same key_names as `<base>` (see above).
inline constexpr std::string_view kExactTableSuffix = ".exact";

// `base` + kExactTableSuffix.
std::string exact_table_name(std::string_view base);

// The default table that prices ops of `kind` (attention, the unfused core's: by `pass`, backward
// for kBackward, forward otherwise; GEMMs: kGemmTable, norms: kNormTable, which the per-layout and
// per-pass tables override where present), or an empty view for kinds no table covers (kStepBlock).
std::string_view calibrated_table_name(graph::OpKind kind, graph::Pass pass);

// The per-layout GEMM table for a GEMM labelled `label` (graph::Op::label): kGemmDgradTable for a
// data-gradient label (graph::gemm_layout), kGemmWgradTable for a weight-gradient one,
// kGemmForwardTable otherwise.
std::string_view gemm_layout_table(graph::OpLabel label);

// The most specific table for `op`, the first name of its lookup chain: GEMMs by layout
// (gemm_layout_table), the flash-attention core by pass (kFlashForwardTable, kFlashBackwardTable),
// norms by pass (kNormBackwardTable for kBackward, kNormForwardTable
// otherwise), every other kind as calibrated_table_name; empty for kStepBlock. Where that table
// is absent the model falls back to calibrated_table_name(kind, pass) for GEMMs and norms (see
// above); `exact_table_name(op_table_name(op))` is the exact table measured points of `op` go to.
std::string_view op_table_name(const graph::Op& op);

// The calibrated model. GEMM and attention tables apply when `compute_dtype` is bf16 (or
// unspecified); for another dtype they are not used and those ops take the roofline at that
// dtype's peak. `algorithm` is the roofline's choice for the collectives it prices (across nodes,
// and where no table applies); measured collectives are whatever NCCL chose when measured. The
// model copies what it needs, so `hardware` need not outlive it.
std::unique_ptr<CostModel> make_calibrated_cost_model(
    const spec::Hardware& hardware, CollectiveAlgorithm algorithm = CollectiveAlgorithm::kAuto,
    spec::DType compute_dtype = spec::BF16);

}  // namespace mpsim::cost
