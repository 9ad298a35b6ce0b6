// The names of calibration_bench's NVTX ranges (profiler/bench/calibration_bench.cu, whose top
// comment holds the grammar and what each key means), parsed into what was measured and the
// calibrated table it feeds:
//
//   calib/gemm.bf16/<fwd|dgrad|wgrad>/m=M,n=N,k=K      -> gemm.bf16.<layout>      (M, N, K)
//   calib/attention.<fwd|bwd>.bf16/bh=BH,s=S,d=D       -> attention.<pass>.bf16   (BH, S, D)
//   calib/memory.<norm|elementwise|optimizer>/bytes=B  -> memory.<op>             (B)
//   calib/<allreduce|allgather|reducescatter|send>.nvlink/g=G,bytes=B
//                                                      -> <collective>.nvlink     (G, B)
//   calib/interference/gemm.bf16/m=M,n=N,k=K           -> interference.gemm.bf16  (M, N, K)
//
// Keys are kept as the bench wrote them (B of a memory op is its principal tensor's size, not
// the bytes it moves; calibrate_profile.h converts). Names are matched exactly: keys in the
// grammar's order, positive decimal integers, nothing else.
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

enum class MeasurementKind { kGemm, kAttention, kMemory, kCollective, kInterference };

struct CalibrationRange {
  MeasurementKind kind = MeasurementKind::kGemm;
  // The table the measurement feeds: "gemm.bf16.fwd", "attention.bwd.bf16", "memory.norm",
  // "allreduce.nvlink", "interference.gemm.bf16", ...
  std::string table;
  // The range's keys in the grammar's order: (M, N, K), (BH, S, D), (B), (G, B) or (M, N, K).
  std::vector<int64_t> keys;
};

std::optional<CalibrationRange> parse_calibration_range(std::string_view text);

}  // namespace mpsim::profiler
