// calibration_bench's command line: every flag declared once (name, value, help with unit,
// default, how it applies), the --quick set, and the --points list read into the measurements it
// names. Nothing here touches CUDA, so bad flags are refused before the GPUs are.
//
// The point list (--points FILE): one range name of the grammar (calibration/calibration_range.h)
// per line, with or without its "calib/" prefix, for a gemm.bf16, attention or collective
// measurement; blank lines and lines starting with '#' are skipped.
//
// Failure: parse_options throws UsageError naming the flag (or FILE:LINE of the point list) for
// an unknown flag, a missing or bad value, inconsistent sizes, an unreadable point list or a line
// of it that breaks the grammar or names another measurement.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace mpsim::calibration::bench {

constexpr int64_t kKiB = 1024, kMiB = 1024 * kKiB, kGiB = 1024 * kMiB;

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Section { kGemm, kAttention, kMemory, kLoss, kSoftmax, kCollectives, kInterference };
constexpr std::array<std::pair<Section, std::string_view>, 7> kSections = {{
    {Section::kGemm, "gemm"},
    {Section::kAttention, "attention"},
    {Section::kMemory, "memory"},
    {Section::kLoss, "loss"},
    {Section::kSoftmax, "softmax"},
    {Section::kCollectives, "collectives"},
    {Section::kInterference, "interference"},
}};

// The measurements of a --points file, by kind, in file order (duplicates kept: the harness
// measures a range name once).
struct PointList {
  std::vector<std::pair<std::string, std::array<int64_t, 3>>> gemm;      // layout, (M, N, K)
  std::vector<std::pair<std::string, std::array<int64_t, 3>>> fp8_gemm;  // the same, gemm.fp8
  // (BH, S, D) -> whether the forward and the backward are listed
  // {bh, s, d, g} -> {forward, backward}; g = 0: the unfused core, g >= 1: the fused one with g
  // query heads per key/value head
  std::map<std::array<int64_t, 4>, std::pair<bool, bool>> attention;
  std::vector<std::tuple<std::string, int, int64_t>> collective;  // op, G, B
};

struct Options {
  std::vector<int64_t> gemm_m{1024, 2048, 4096, 8192, 16384};
  std::vector<int64_t> gemm_n{768, 1024, 2048, 4096, 8192, 16384};
  std::vector<int64_t> gemm_k{768, 1024, 2048, 4096, 8192, 16384};
  std::vector<int64_t> attention_bh{16, 64, 128};
  std::vector<int64_t> attention_s{512, 1024, 2048, 4096};
  std::vector<int64_t> attention_d{64, 128};
  // The fused core's query heads per key/value head (values that divide bh).
  std::vector<int64_t> attention_g{1, 4, 8};
  int64_t memory_min = kMiB, memory_max = kGiB;  // bytes, powers of 4 in between
  // Cross-entropy: every tokens x vocab; vocab = a rank's padded columns (the graph pads to a
  // multiple of 128 TP): Llama 2 and Llama 3 at TP 8, GPT-2 and Llama 3 at TP 1.
  std::vector<int64_t> loss_tokens{2048, 8192, 32768};
  std::vector<int64_t> loss_vocab{4096, 16384, 50304, 128256};
  int64_t softmax_seq = 2048;  // s of the softmax's [bh, s, s]; bh from the memory sizes
  int64_t collective_min = kKiB, collective_max = kGiB;  // bytes, powers of 4 in between
  int64_t interference_dim = 8192;                       // M = N = K of the interference GEMM
  int reps = 5;
  int gpus = 0;          // 0: every visible GPU
  std::string points;    // --points FILE: scattered measurements after the grids; empty: none
  PointList point_list;  // read from `points` when the flags are parsed
  std::array<bool, kSections.size()> run{true, true, true, true, true, true, true};
  bool quick = false;

  bool runs(Section s) const { return run[static_cast<size_t>(s)]; }
};

// --quick: a smoke test of every code path in seconds. Flags given with it still apply.
Options quick_options();

// The options of the command line (argv[1..argc)); --quick first applies quick_options().
Options parse_options(int argc, char** argv);
// Whether -h or --help is among the arguments.
bool wants_help(int argc, char** argv);
// The usage text with every flag and its default, on stdout.
void print_help();

// min, 4 min, 16 min, ... up to max.
std::vector<int64_t> powers_of_four(int64_t min, int64_t max);

}  // namespace mpsim::calibration::bench
