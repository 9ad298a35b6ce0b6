// The names of calibration_bench's NVTX ranges, in one place: the formatters the bench names its
// measurements with (calibration/bench) and the parser the fit reads them with (calibration/fit),
// so that the two cannot drift apart. What each key means and how each measurement runs is in
// the bench family that measures it (calibration/bench/*_bench.cu).
//
// Grammar (the NVTX message of each measurement; keys are positive decimal integers, no spaces):
//
//   range       := "calib/" measurement
//   measurement := "gemm.bf16/" layout "/m=" M ",n=" N ",k=" K
//                | "gemm.fp8/" layout "/m=" M ",n=" N ",k=" K
//                | "attention.fwd.bf16/bh=" BH ",s=" S ",d=" D
//                | "attention.bwd.bf16/bh=" BH ",s=" S ",d=" D
//                | "attention.flash.fwd.bf16/bh=" BH ",s=" S ",d=" D ",g=" G
//                | "attention.flash.bwd.bf16/bh=" BH ",s=" S ",d=" D ",g=" G
//                | "memory." memop "/bytes=" B
//                | collective ".nvlink/g=" G ",bytes=" B
//                | "interference/gemm.bf16/m=" M ",n=" N ",k=" K
//                | "meta/driver=" D ",runtime=" R ",cublas=" C ",nccl=" V
//   layout      := "fwd" | "dgrad" | "wgrad"
//   memop       := "norm" | "elementwise" | "optimizer" | "loss.fwd" | "loss.bwd" | "softmax"
//                | "fp8_cast"
//   collective  := "allreduce" | "allgather" | "reducescatter" | "send"
//
// Parsed, each name says what was measured and the calibrated table it feeds:
//
//   calib/gemm.bf16/<fwd|dgrad|wgrad>/m=M,n=N,k=K      -> gemm.bf16.<layout>      (M, N, K)
//   calib/gemm.fp8/<fwd|dgrad|wgrad>/m=M,n=N,k=K       -> gemm.fp8.<layout>       (M, N, K)
//   calib/attention.<fwd|bwd>.bf16/bh=BH,s=S,d=D       -> attention.<pass>.bf16   (BH, S, D)
//   calib/attention.flash.<fwd|bwd>.bf16/bh=BH,s=S,d=D,g=G
//                                                      -> attention.flash.<pass>.bf16
//                                                         (BH, S, D, G: query heads per key/value
//                                                         head)
//   calib/memory.<norm|elementwise|optimizer>/bytes=B  -> memory.<op>             (B)
//   calib/memory.loss.<fwd|bwd>/bytes=B                -> memory.loss             (B)
//   calib/memory.softmax/bytes=B                       -> memory.softmax          (B)
//   calib/memory.fp8_cast/bytes=B                      -> memory.fp8_cast         (B)
//   calib/<allreduce|allgather|reducescatter|send>.nvlink/g=G,bytes=B
//                                                      -> <collective>.nvlink     (G, B)
//   calib/interference/gemm.bf16/m=M,n=N,k=K           -> interference.gemm.bf16  (M, N, K)
//   calib/meta/driver=D,runtime=R,cublas=C,nccl=N      -> no table: the software versions of
//                                                         the run (kMeta; D and R as
//                                                         cudaDriverGetVersion and
//                                                         cudaRuntimeGetVersion give them, C as
//                                                         cublasGetVersion, N as ncclGetVersion)
//
// Keys are kept as the bench wrote them (B of a memory op is its principal tensor's size, not
// the bytes it moves, except for the loss, whose B is already the graph's Op::bytes of that
// pass; calibrate_profile.h converts). Names are matched exactly: keys in the grammar's order,
// positive decimal integers, nothing else.
//
// Failure: the formatters do not fail (they do not check their keys). parse_calibration_range
// returns nullopt for a name that does not start with "calib/" and throws std::invalid_argument,
// naming the range and what was expected, for one that does but breaks the grammar.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mpsim::calibration {

inline constexpr std::string_view kCalibrationRangePrefix = "calib/";

enum class MeasurementKind { kGemm, kAttention, kMemory, kCollective, kInterference, kMeta };

// The `memory.*` measurements of the loss, by pass: both feed the table "memory.loss".
inline constexpr std::string_view kLossForwardMeasurement = "memory.loss.fwd";
inline constexpr std::string_view kLossBackwardMeasurement = "memory.loss.bwd";
inline constexpr std::string_view kMetaMeasurement = "meta";

struct CalibrationRange {
  MeasurementKind kind = MeasurementKind::kGemm;
  // The table the measurement feeds: "gemm.bf16.fwd", "attention.bwd.bf16", "memory.norm",
  // "memory.loss", "allreduce.nvlink", "interference.gemm.bf16", ...; empty for kMeta.
  std::string table;
  // What was measured, as the range names it: the table for most, "memory.loss.fwd" /
  // "memory.loss.bwd" for the loss, "meta" for the versions.
  std::string measurement;
  // The range's keys in the grammar's order: (M, N, K), (BH, S, D), (B), (G, B), (M, N, K) or
  // (D, R, C, N).
  std::vector<int64_t> keys;
};

std::optional<CalibrationRange> parse_calibration_range(std::string_view text);

// ---- formatters: one per measurement of the grammar
// ---------------------------------------------- calib/gemm.bf16/<layout>/m=M,n=N,k=K
std::string gemm_range_name(std::string_view layout, int64_t m, int64_t n, int64_t k);
// calib/gemm.fp8/<layout>/m=M,n=N,k=K
std::string fp8_gemm_range_name(std::string_view layout, int64_t m, int64_t n, int64_t k);
// calib/attention.<fwd|bwd>.bf16/bh=BH,s=S,d=D
std::string attention_range_name(bool backward, int64_t bh, int64_t s, int64_t d);
// calib/attention.flash.<fwd|bwd>.bf16/bh=BH,s=S,d=D,g=G
std::string flash_attention_range_name(bool backward, int64_t bh, int64_t s, int64_t d, int64_t g);
// calib/memory.<op>/bytes=B (op: norm, elementwise, optimizer, softmax, loss.fwd, loss.bwd)
std::string memory_range_name(std::string_view op, int64_t bytes);
// calib/memory.loss.<fwd|bwd>/bytes=B
std::string loss_range_name(bool backward, int64_t bytes);
// calib/<op>.nvlink/g=G,bytes=B (op: allreduce, allgather, reducescatter, send)
std::string collective_range_name(std::string_view op, int64_t group, int64_t bytes);
// calib/interference/gemm.bf16/m=M,n=N,k=K
std::string interference_range_name(int64_t m, int64_t n, int64_t k);
// calib/meta/driver=D,runtime=R,cublas=C,nccl=V
std::string meta_range_name(int64_t driver, int64_t runtime, int64_t cublas, int64_t nccl);

// B of the loss ranges: the bytes the simulator's graph counts for its loss ops (Op::bytes of
// "loss" in simulator/graph/training_graph.cpp) over bf16 logits [tokens, vocab] (vocab: the
// rank's padded columns). Forward: the logits read once and one fp32 loss per token written;
// backward: the logits read and their gradient written in place. calibration_bench names its
// ranges with these; tests check them against the graph.
constexpr int64_t loss_forward_bytes(int64_t tokens, int64_t vocab) {
  return 2 * tokens * vocab + 4 * tokens;
}
constexpr int64_t loss_backward_bytes(int64_t tokens, int64_t vocab) { return 4 * tokens * vocab; }

}  // namespace mpsim::calibration
