// CalibratedCostModel, the model behind make_calibrated_cost_model: for each op, one lookup
// chain built when the model is made (exact point -> grid table, with its fitted curve outside
// the grid -> roofline). Formulas and rationale: calibrated_cost.h and simulator/cost/README.md,
// "Calibrated cost model".
#include "simulator/cost/calibrated_cost.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/text.h"
#include "simulator/cost/calibrated_tables.h"
#include "simulator/cost/lookup_tables.h"

namespace mpsim::cost {
namespace {

using graph::Op;
using graph::OpKind;

// ---- The tables the model reads ------------------------------------------------------------

// What a table's keys are, hence how it is built and which keys an op gives it.
enum class Family {
  kGemm,
  kGemmFp8,  // as kGemm, at the FP8 peak
  kAttentionForward,
  kAttentionBackward,
  kFlashForward,
  kFlashBackward,
  kMemory,
  kCollective
};

struct TableSpec {
  std::string_view name;
  Family family;
  // A per-layout or per-pass table: its absence is no fallback to the roofline (the default
  // table, or its absence, says what prices those ops).
  bool refinement = false;
  OpKind collective = OpKind::kStepBlock;  // for kCollective: which collective
};

// Every table name, in the order the model reads them (which is the order describe() lists the
// grid tables in, and the order their errors are found in).
constexpr std::array<TableSpec, 22> kTableSpecs = {{
    {kGemmTable, Family::kGemm},
    {kGemmForwardTable, Family::kGemm, true},
    {kGemmDgradTable, Family::kGemm, true},
    {kGemmWgradTable, Family::kGemm, true},
    {kGemmFp8ForwardTable, Family::kGemmFp8, true},
    {kGemmFp8DgradTable, Family::kGemmFp8, true},
    {kGemmFp8WgradTable, Family::kGemmFp8, true},
    {kAttentionForwardTable, Family::kAttentionForward},
    {kAttentionBackwardTable, Family::kAttentionBackward},
    {kFlashForwardTable, Family::kFlashForward},
    {kFlashBackwardTable, Family::kFlashBackward},
    {kNormTable, Family::kMemory},
    {kNormForwardTable, Family::kMemory, true},
    {kNormBackwardTable, Family::kMemory, true},
    {kElementwiseTable, Family::kMemory},
    {kFp8CastTable, Family::kMemory, true},
    {kLossTable, Family::kMemory},
    {kOptimizerTable, Family::kMemory},
    {kAllReduceTable, Family::kCollective, false, OpKind::kAllReduce},
    {kAllGatherTable, Family::kCollective, false, OpKind::kAllGather},
    {kReduceScatterTable, Family::kCollective, false, OpKind::kReduceScatter},
    {kSendTable, Family::kCollective, false, OpKind::kSend},
}};

// The bases whose exact tables (`<base>.exact`) the model reads, in the order describe() lists
// them: as kTableSpecs, but the per-pass norm tables after the other memory tables.
constexpr std::array<std::string_view, 22> kExactTableOrder = {
    kGemmTable,         kGemmForwardTable,      kGemmDgradTable,
    kGemmWgradTable,    kGemmFp8ForwardTable,   kGemmFp8DgradTable,
    kGemmFp8WgradTable, kAttentionForwardTable, kAttentionBackwardTable,
    kFlashForwardTable, kFlashBackwardTable,    kNormTable,
    kElementwiseTable,  kFp8CastTable,          kLossTable,
    kOptimizerTable,    kNormForwardTable,      kNormBackwardTable,
    kAllReduceTable,    kAllGatherTable,        kReduceScatterTable,
    kSendTable};

const TableSpec& table_spec(std::string_view name) {
  return *std::find_if(kTableSpecs.begin(), kTableSpecs.end(),
                       [&](const TableSpec& spec) { return spec.name == name; });
}

bool is_compute(Family family) {
  return family != Family::kMemory && family != Family::kCollective;
}

std::span<const std::string_view> key_names(Family family) {
  switch (family) {
    case Family::kGemm:
    case Family::kGemmFp8:
      return kGemmKeys;
    case Family::kAttentionForward:
    case Family::kAttentionBackward:
      return kAttentionKeys;
    case Family::kFlashForward:
    case Family::kFlashBackward:
      return kFlashKeys;
    case Family::kMemory:
      return kMemoryKeys;
    case Family::kCollective:
      break;
  }
  return kCollectiveKeys;
}

// The grid table (with its fitted curve) of `spec`, built from `table`.
std::unique_ptr<FittedTable> build_fitted(const TableSpec& spec, const spec::CalibratedTable& table,
                                          double peak, double fp8_peak) {
  if (spec.family != Family::kCollective) check_keys(table, key_names(spec.family));
  switch (spec.family) {
    case Family::kGemm:
      return std::make_unique<ComputeTable>(table, gemm_flops, peak);
    case Family::kGemmFp8:
      return std::make_unique<ComputeTable>(table, gemm_flops, fp8_peak);
    case Family::kAttentionForward:
      return std::make_unique<ComputeTable>(table, attention_forward_flops, peak);
    case Family::kAttentionBackward:
      return std::make_unique<ComputeTable>(table, attention_backward_flops, peak);
    case Family::kFlashForward:
      return std::make_unique<ComputeTable>(table, flash_forward_flops, peak);
    case Family::kFlashBackward:
      return std::make_unique<ComputeTable>(table, flash_backward_flops, peak);
    case Family::kMemory:
      return std::make_unique<BytesTable>(table);
    case Family::kCollective:
      break;
  }
  return std::make_unique<CollectiveTable>(table, spec.collective);
}

// ---- Which chain prices an op --------------------------------------------------------------

// One chain per op variant: GEMMs by layout, attention by kind and pass, norms by pass, the
// others by kind.
enum Slot : int {
  kGemmForwardSlot,
  kGemmDgradSlot,
  kGemmWgradSlot,
  kGemmFp8ForwardSlot,
  kGemmFp8DgradSlot,
  kGemmFp8WgradSlot,
  kAttentionForwardSlot,
  kAttentionBackwardSlot,
  kFlashForwardSlot,
  kFlashBackwardSlot,
  kNormForwardSlot,
  kNormBackwardSlot,
  kElementwiseSlot,
  kFp8CastSlot,
  kLossSlot,
  kOptimizerSlot,
  kAllReduceSlot,
  kAllGatherSlot,
  kReduceScatterSlot,
  kSendSlot,
  kNumSlots,
};

// The table of each slot, and the default table that prices the slot where that one is absent
// (empty: none). Exact tables resolve the same way, independently of the grids.
struct SlotTables {
  std::string_view table;
  std::string_view default_table;
};
constexpr std::array<SlotTables, kNumSlots> kSlotTables = {{
    {kGemmForwardTable, kGemmTable},
    {kGemmDgradTable, kGemmTable},
    {kGemmWgradTable, kGemmTable},
    {kGemmFp8ForwardTable, {}},
    {kGemmFp8DgradTable, {}},
    {kGemmFp8WgradTable, {}},
    {kAttentionForwardTable, {}},
    {kAttentionBackwardTable, {}},
    {kFlashForwardTable, {}},
    {kFlashBackwardTable, {}},
    {kNormForwardTable, kNormTable},
    {kNormBackwardTable, kNormTable},
    {kElementwiseTable, {}},
    {kFp8CastTable, kElementwiseTable},
    {kLossTable, {}},
    {kOptimizerTable, {}},
    {kAllReduceTable, {}},
    {kAllGatherTable, {}},
    {kReduceScatterTable, {}},
    {kSendTable, {}},
}};

using graph::GemmLayout;

std::optional<Slot> slot_of(const Op& op) {
  const bool backward = op.pass == graph::Pass::kBackward;
  switch (op.kind) {
    case OpKind::kGemm:
      switch (graph::gemm_layout(op.label)) {
        case GemmLayout::kDgrad:
          return op.fp8 ? kGemmFp8DgradSlot : kGemmDgradSlot;
        case GemmLayout::kWgrad:
          return op.fp8 ? kGemmFp8WgradSlot : kGemmWgradSlot;
        case GemmLayout::kForward:
          break;
      }
      return op.fp8 ? kGemmFp8ForwardSlot : kGemmForwardSlot;
    case OpKind::kAttention:
      if (op.label == graph::OpLabel::kAttnFlash)
        return backward ? kFlashBackwardSlot : kFlashForwardSlot;
      return backward ? kAttentionBackwardSlot : kAttentionForwardSlot;
    case OpKind::kNorm:
      return backward ? kNormBackwardSlot : kNormForwardSlot;
    case OpKind::kElementwise:
      switch (op.label) {
        case graph::OpLabel::kAttnQkvCast:
        case graph::OpLabel::kAttnProjCast:
        case graph::OpLabel::kMlpFc1Cast:
        case graph::OpLabel::kMlpFc2Cast:
        case graph::OpLabel::kFp8WeightCast:
          return kFp8CastSlot;
        default:
          return kElementwiseSlot;
      }
    case OpKind::kLoss:
      return kLossSlot;
    case OpKind::kOptimizer:
      return kOptimizerSlot;
    case OpKind::kAllReduce:
      return kAllReduceSlot;
    case OpKind::kAllGather:
      return kAllGatherSlot;
    case OpKind::kReduceScatter:
      return kReduceScatterSlot;
    case OpKind::kSend:
      return kSendSlot;
    case OpKind::kStepBlock:
    case OpKind::kHostTransfer:
    case OpKind::kHostOptimizer:
      break;
  }
  return std::nullopt;
}

// An op's keys for its tables, or why it has none.
struct OpKeys {
  enum Lookup { kRoofline, kFree, kKeys } lookup = kRoofline;  // kFree: nothing moves, 0 s
  std::array<double, 4> keys{};
  std::size_t size = 0;
  std::span<const double> span() const { return {keys.data(), size}; }
};

// GEMMs and attention without their shape, memory-bound ops without positive finite bytes,
// invalid or cross-node collectives take the roofline (which refuses the invalid ones); a
// collective of one rank or no bytes costs nothing.
OpKeys op_keys(const Op& op) {
  switch (op.kind) {
    case OpKind::kGemm:
      if (op.gemm.m <= 0 || op.gemm.n <= 0 || op.gemm.k <= 0) return {};
      return {OpKeys::kKeys,
              {static_cast<double>(op.gemm.m), static_cast<double>(op.gemm.n),
               static_cast<double>(op.gemm.k)},
              3};
    case OpKind::kAttention:
      if (op.attn_batch_heads <= 0 || op.attn_seq <= 0 || op.attn_head_dim <= 0) return {};
      return {OpKeys::kKeys,
              {static_cast<double>(op.attn_batch_heads), static_cast<double>(op.attn_seq),
               static_cast<double>(op.attn_head_dim), static_cast<double>(op.attn_group)},
              op.label == graph::OpLabel::kAttnFlash ? std::size_t{4} : std::size_t{3}};
    case OpKind::kNorm:
    case OpKind::kElementwise:
    case OpKind::kLoss:
    case OpKind::kOptimizer:
      if (!(op.bytes > 0 && std::isfinite(op.bytes))) return {};
      return {OpKeys::kKeys, {op.bytes}, 1};
    case OpKind::kAllReduce:
    case OpKind::kAllGather:
    case OpKind::kReduceScatter:
    case OpKind::kSend:
      if (op.group_nodes != 1 || op.group_size < 1 || !(op.bytes >= 0) ||
          !std::isfinite(op.bytes)) {
        return {};
      }
      if (op.group_size == 1 || op.bytes == 0) return {OpKeys::kFree};
      return {OpKeys::kKeys, {static_cast<double>(op.group_size), op.bytes}, 2};
    case OpKind::kStepBlock:
    case OpKind::kHostTransfer:
    case OpKind::kHostOptimizer:
      break;
  }
  return {};
}

// One op variant's lookup chain: its exact table, then its grid (fitted curve outside), then the
// roofline. Null links are skipped.
struct Chain {
  const ExactTable* exact = nullptr;
  const FittedTable* fitted = nullptr;
};

// ---- The model -----------------------------------------------------------------------------

class CalibratedCostModel final : public CostModel {
 public:
  CalibratedCostModel(const spec::Hardware& hardware, CollectiveAlgorithm algorithm,
                      spec::DType compute_dtype)
      : roofline_(make_roofline_cost_model(hardware, algorithm, compute_dtype)) {
    // Under the FP8 recipe everything but the FP8 GEMMs runs in bf16, as the tables measured;
    // the FP8 GEMMs take the gemm.fp8 tables where measured, else the roofline at the FP8 peak.
    const spec::DType dtype = compute_dtype == spec::DTYPE_UNSPECIFIED || compute_dtype == spec::FP8
                                  ? spec::BF16
                                  : compute_dtype;
    const std::string where = "calibrated cost model for '" + hardware.name + "': ";
    // Tables by name, each at most once.
    std::map<std::string, const spec::CalibratedTable*, std::less<>> tables;
    for (const spec::CalibratedTable& t : hardware.calibrated) {
      if (!tables.try_emplace(t.op(), &t).second) {
        throw std::invalid_argument(where + "table " + t.op() +
                                    " given twice, expected one table per op");
      }
    }
    Reading reading{std::move(tables), dtype, {}, {}, {}};
    try {
      read_fitted_tables(reading, hardware.peak_flops(dtype), hardware.peak_fp8_flops);
      const bool fitted_used = !reading.used.empty();
      read_exact_tables(reading);
      describe(reading, fitted_used);
      if (compute_dtype == spec::FP8 && !fitted_.contains(kGemmFp8ForwardTable))
        description_ += "; FP8 GEMMs: the roofline at the FP8 peak";
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + e.what());
    }
    for (std::size_t slot = 0; slot < kNumSlots; ++slot) {
      const auto* fitted = find(fitted_, kSlotTables[slot]);
      chains_[slot] = {find(exact_, kSlotTables[slot]), fitted ? fitted->get() : nullptr};
    }
  }

  double op_seconds(const Op& op) const override {
    if (const std::optional<Slot> slot = slot_of(op)) {
      const Chain& chain = chains_[*slot];
      if (chain.exact != nullptr || chain.fitted != nullptr) {
        const OpKeys keys = op_keys(op);
        if (keys.lookup == OpKeys::kFree) return 0;
        if (keys.lookup == OpKeys::kKeys) {
          if (chain.exact != nullptr) {
            if (const double* seconds = chain.exact->find(keys.span())) return *seconds;
          }
          if (chain.fitted != nullptr) {
            if (const std::optional<double> seconds = chain.fitted->seconds(keys.span())) {
              return *seconds;
            }
          }
        }
      }
    }
    return roofline_->op_seconds(op);
  }

  double comm_interference(const Op& op) const override { return roofline_->comm_interference(op); }
  std::string describe() const override { return description_; }

 private:
  // What building the model has read so far, for describe().
  struct Reading {
    std::map<std::string, const spec::CalibratedTable*, std::less<>> unread;
    spec::DType dtype;
    std::vector<std::string> used, fallback, ignored;
  };

  // The table `name` when given (moved from unread to used), else null; a missing table that is
  // no refinement is listed among the roofline's fallbacks.
  static const spec::CalibratedTable* take(Reading& r, std::string_view name, bool optional) {
    auto it = r.unread.find(name);
    if (it == r.unread.end()) {
      if (!optional) r.fallback.emplace_back(name);
      return nullptr;
    }
    const spec::CalibratedTable* t = it->second;
    r.unread.erase(it);
    r.used.emplace_back(name);
    return t;
  }

  // A bf16 compute table under another model dtype: not used, listed as ignored if given.
  static void ignore_compute_table(Reading& r, const std::string& name) {
    if (auto it = r.unread.find(name); it != r.unread.end()) {
      r.ignored.push_back(name + " (bf16 table, model dtype " +
                          common::lower(spec::DType_Name(r.dtype)) + ")");
      r.unread.erase(it);
    }
  }

  void read_fitted_tables(Reading& r, double peak, double fp8_peak) {
    for (const TableSpec& spec : kTableSpecs) {
      if (is_compute(spec.family) && r.dtype != spec::BF16) {
        if (!spec.refinement) r.fallback.emplace_back(spec.name);
        ignore_compute_table(r, std::string(spec.name));
        continue;
      }
      if (const spec::CalibratedTable* t = take(r, spec.name, spec.refinement)) {
        if (spec.family == Family::kGemmFp8 && !(fp8_peak > 0)) {
          throw std::invalid_argument("table " + std::string(spec.name) +
                                      ": FP8 GEMMs measured, but the hardware has no FP8 peak");
        }
        auto table = build_fitted(spec, *t, peak, fp8_peak);
        r.used.back() += table->summary();
        fitted_.emplace(spec.name, std::move(table));
      }
    }
  }

  // Exact tables, each optional and independent of its base table.
  void read_exact_tables(Reading& r) {
    for (std::string_view base : kExactTableOrder) {
      const TableSpec& spec = table_spec(base);
      const std::string name = exact_table_name(base);
      if (is_compute(spec.family) && r.dtype != spec::BF16) {
        ignore_compute_table(r, name);
        continue;
      }
      if (const spec::CalibratedTable* t = take(r, name, true)) {
        const auto [it, inserted] = exact_.try_emplace(base, *t, key_names(spec.family),
                                                       spec.family == Family::kCollective);
        const std::size_t n = it->second.size();
        r.used.back() += " (" + std::to_string(n) + (n == 1 ? " point)" : " points)");
      }
    }
  }

  void describe(Reading& r, bool fitted_used) {
    for (const auto& [name, table] : r.unread) r.ignored.push_back(name);
    description_ = "calibrated: " +
                   (r.used.empty() ? std::string("no tables used") : common::join(r.used, ", "));
    if (fitted_used) description_ += ", fitted curves outside their grids";
    description_ += "; " + roofline_->describe() + ", for collectives across nodes";
    if (!r.fallback.empty())
      description_ += " and ops without a table (" + common::join(r.fallback, ", ") + ")";
    if (!r.ignored.empty()) description_ += "; ignored tables: " + common::join(r.ignored, ", ");
  }

  // The slot's table in `tables`, else its default table's, else null.
  template <typename Map>
  static const typename Map::mapped_type* find(const Map& tables, const SlotTables& names) {
    for (std::string_view key : {names.table, names.default_table}) {
      if (key.empty()) continue;
      if (auto it = tables.find(key); it != tables.end()) return &it->second;
    }
    return nullptr;
  }

  std::unique_ptr<CostModel> roofline_;
  std::map<std::string_view, std::unique_ptr<FittedTable>> fitted_;  // by table name
  std::map<std::string_view, ExactTable> exact_;                     // by base table name
  std::array<Chain, kNumSlots> chains_;                              // by Slot
  std::string description_;
};

}  // namespace

std::string_view calibrated_table_name(OpKind kind, graph::Pass pass) {
  switch (kind) {
    case OpKind::kGemm:
      return kGemmTable;
    case OpKind::kAttention:
      return pass == graph::Pass::kBackward ? kAttentionBackwardTable : kAttentionForwardTable;
    case OpKind::kNorm:
      return kNormTable;
    case OpKind::kElementwise:
      return kElementwiseTable;
    case OpKind::kLoss:
      return kLossTable;
    case OpKind::kOptimizer:
      return kOptimizerTable;
    case OpKind::kAllReduce:
      return kAllReduceTable;
    case OpKind::kAllGather:
      return kAllGatherTable;
    case OpKind::kReduceScatter:
      return kReduceScatterTable;
    case OpKind::kSend:
      return kSendTable;
    case OpKind::kStepBlock:
    case OpKind::kHostTransfer:
    case OpKind::kHostOptimizer:
      break;
  }
  return {};
}

std::string exact_table_name(std::string_view base) {
  return std::string(base) + std::string(kExactTableSuffix);
}

std::string_view gemm_layout_table(graph::OpLabel label) {
  switch (graph::gemm_layout(label)) {
    case GemmLayout::kDgrad:
      return kGemmDgradTable;
    case GemmLayout::kWgrad:
      return kGemmWgradTable;
    case GemmLayout::kForward:
      break;
  }
  return kGemmForwardTable;
}

std::string_view op_table_name(const Op& op) {
  const std::optional<Slot> slot = slot_of(op);
  return slot ? kSlotTables[*slot].table : std::string_view();
}

std::unique_ptr<CostModel> make_calibrated_cost_model(const spec::Hardware& hardware,
                                                      CollectiveAlgorithm algorithm,
                                                      spec::DType compute_dtype) {
  return std::make_unique<CalibratedCostModel>(hardware, algorithm, compute_dtype);
}

std::unique_ptr<CostModel> make_cost_model(const spec::Hardware& hardware,
                                           CollectiveAlgorithm algorithm,
                                           spec::DType compute_dtype) {
  if (hardware.calibrated.empty()) {
    return make_roofline_cost_model(hardware, algorithm, compute_dtype);
  }
  return make_calibrated_cost_model(hardware, algorithm, compute_dtype);
}

}  // namespace mpsim::cost
