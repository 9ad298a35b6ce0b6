// The names of calibration_bench's NVTX ranges (profiler/bench/calibration_bench.cu, whose top
// comment holds the grammar and what each key means), parsed into what was measured and the
// calibrated table it feeds:
//
//   calib/gemm.bf16/<fwd|dgrad|wgrad>/m=M,n=N,k=K      -> gemm.bf16.<layout>      (M, N, K)
//   calib/attention.<fwd|bwd>.bf16/bh=BH,s=S,d=D       -> attention.<pass>.bf16   (BH, S, D)
//   calib/memory.<norm|elementwise|optimizer>/bytes=B  -> memory.<op>             (B)
//   calib/memory.loss.<fwd|bwd>/bytes=B                -> memory.loss             (B)
//   calib/memory.softmax/bytes=B                       -> memory.softmax          (B)
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
// Failure: parse_calibration_range returns nullopt for a name that does not start with "calib/"
// and throws std::invalid_argument, naming the range and what was expected, for one that does
// but breaks the grammar.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mpsim::profiler {

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

// B of the loss ranges: the bytes the simulator's graph counts for its loss ops (Op::bytes of
// "loss" in simulator/graph/training_graph.cpp) over bf16 logits [tokens, vocab] (vocab: the
// rank's padded columns). Forward: the logits read once and one fp32 loss per token written;
// backward: the logits read and their gradient written in place. calibration_bench names its
// ranges with these; tests check them against the graph.
constexpr int64_t loss_forward_bytes(int64_t tokens, int64_t vocab) {
  return 2 * tokens * vocab + 4 * tokens;
}
constexpr int64_t loss_backward_bytes(int64_t tokens, int64_t vocab) { return 4 * tokens * vocab; }

}  // namespace mpsim::profiler
