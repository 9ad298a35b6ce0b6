// calibration_bench: the calibration microbenchmarks of issue 6. It runs the executor's own code
// paths (cuBLAS GEMMs through executor::Gemm, the attention core, the memory-bound kernels of
// executor/cuda/kernels.h with the cross-entropy and the causal softmax, NCCL collectives) on the
// local GPUs, each measurement inside one NVTX range, so that `mpsim profile -o calib.sqlite --
// calibration_bench` records the GPU time of every kernel and the calibration fit joins kernels
// to measurements by range name. The profiler's kernel times are the calibration's source; the
// host-side cudaEvent mean printed per range is a check.
//
// Range grammar (the NVTX message of each measurement; keys are decimal integers, no spaces):
//
//   range       := "calib/" measurement
//   measurement := "gemm.bf16/" layout "/m=" M ",n=" N ",k=" K
//                | "attention.fwd.bf16/bh=" BH ",s=" S ",d=" D
//                | "attention.bwd.bf16/bh=" BH ",s=" S ",d=" D
//                | "memory." memop "/bytes=" B
//                | collective ".nvlink/g=" G ",bytes=" B
//                | "interference/gemm.bf16/m=" M ",n=" N ",k=" K
//                | "meta/driver=" D ",runtime=" R ",cublas=" C ",nccl=" V
//   layout      := "fwd" | "dgrad" | "wgrad"
//   memop       := "norm" | "elementwise" | "optimizer" | "loss.fwd" | "loss.bwd" | "softmax"
//   collective  := "allreduce" | "allgather" | "reducescatter" | "send"
//
// Keys:
// - gemm.bf16: the GEMM's own sizes, C[M, N] = op(A)[M, K] op(B)[K, N], as the simulator's graph
//   names a GEMM (simulator/graph/training_graph.cpp). With executor/cuda/gemm.h's arguments
//   (tokens T, in, out):
//     fwd    linear_forward  y[T, out] = x[T, in] W[out, in]^T     M = T,   N = out, K = in
//     dgrad  linear_dgrad    dx[T, in] = dy[T, out] W[out, in]     M = T,   N = in,  K = out
//     wgrad  linear_wgrad    dW[out, in] += dy[T, out]^T x[T, in]  M = out, N = in,  K = T
//   bf16 inputs, fp32 accumulation; bf16 output (fp32 for wgrad, accumulated as the executor's
//   main grads are). One cuBLAS call per repetition (cuBLAS may launch more than one kernel).
// - attention.{fwd,bwd}.bf16: the executor's attention core (executor/cuda/gpt_model.cu
//   attention_probs + attention_context, and attention_backward) without grouped-query attention
//   (group r = 1): BH = micro-batch x heads (batch 1, BH heads: the layout [s, b, h, 3, d] is the
//   same for any b x h = BH), S = sequence length, D = head size. Forward: batched GEMM Q K^T,
//   causal_softmax_forward, batched GEMM P V. Backward: batched GEMMs dP = dctx V^T and
//   dV = P^T dctx, causal_softmax_backward, batched GEMMs dQ = dS K and dK = dS^T Q. The
//   executor computes the full S x S scores (the causal mask is applied in the softmax only).
// - memory.*: B = bytes of the op's principal tensor, not the traffic:
//     norm         LayerNorm norm_forward + norm_backward on x[rows, 4096] bf16, B = rows*4096*2;
//                  the forward moves 2B, the backward 3B (the graph's norm_bytes).
//     elementwise  bias_gelu_forward on x[rows, 4096] bf16, B = rows*4096*2; moves 2B.
//     optimizer    adamw_step over n = B/4 parameters (B = bytes of the fp32 master weights),
//                  with the bf16 model copy; moves 7.5B (30 bytes a parameter, the graph's count).
//     softmax      causal_softmax_forward alone, in place on scores [bh, s, s] bf16 (as the
//                  attention core calls it), s = --softmax-seq, B = bh*s*s*2; reads the kept
//                  lower triangle (about B/2) and writes B. Repetitions run on the previous
//                  repetition's probabilities.
//   The loss is the exception: its B is not the principal tensor but exactly the bytes the
//   simulator's graph puts in Op::bytes for its loss op of that pass (training_graph.cpp,
//   head()), so that the table's key is the graph's; the executor's vocabulary-parallel
//   cross-entropy (executor/cuda/gpt_model.cu head_forward / head_backward) on one GPU (TP = 1,
//   no padding columns) over logits [T, V] bf16 with int32 targets:
//     loss.fwd     cross_entropy_partial + cross_entropy_combine (the executor's forward loss;
//                  at TP > 1 an all-gather of 12 T bytes sits between them, priced apart),
//                  B = loss_forward_bytes(T, V) = 2TV + 4T
//                  (profiler/calibrate/calibration_range.h).
//     loss.bwd     cross_entropy_backward, in place on the logits (grad scale 1/T),
//                  B = loss_backward_bytes(T, V) = 4TV. Repetitions run on the previous
//                  repetition's gradient with the forward's row max and sums (finite values).
//   A (T, V) whose B was measured already (another T x V of equal product) is not measured again.
// - collectives: G = GPUs in the group (the first G devices, one communicator each from
//   ncclCommInitAll, one process and thread); B = buffer bytes as nccl-tests counts them
//   (allreduce: the buffer, in place; allgather: the gathered output, each rank contributing B/G,
//   in place; reducescatter: the input, each rank receiving B/G, in place; send: the message,
//   ncclSend on GPU 0 and ncclRecv on GPU 1, G = 2). bf16 data. "nvlink": the GPUs of one node.
//   The range holds the kernels of every GPU of the group: per-GPU time is that GPU's kernels.
// - interference/gemm.bf16: the fwd GEMM M x N x K on GPU 0's compute stream while GPU 0's
//   communication stream runs back-to-back 256 MiB bf16 all-reduces over the largest
//   power-of-two group of GPUs; the all-reduces start with each GEMM and last at least twice its
//   alone time (their count per repetition is printed). The same GEMM alone is measured right
//   before under its normal gemm.bf16/fwd name, and the 256 MiB all-reduce alone under its
//   allreduce.nvlink name. The range holds the GEMM's and the all-reduces' kernels (isNccl tells
//   them apart).
// - meta: no measurement: a push/pop range without kernels, opened once before the first
//   measurement, naming the software the run used as the libraries report their versions:
//   D = cudaDriverGetVersion, R = cudaRuntimeGetVersion (1000 major + 10 minor), C = cuBLAS's
//   cublasGetProperty major, minor, patch as 10000 major + 100 minor + patch (what
//   cublasGetVersion returns), V = ncclGetVersion (NCCL_VERSION_CODE). `mpsim calibrate` writes
//   them into the profile's provenance.
//
// Point list (--points FILE): after the grids, the measurements FILE names, one per line in this
// grammar without the "calib/" prefix (gemm.bf16, attention and collective measurements only;
// blank lines and '#' comments skipped; any other line is refused naming FILE:LINE before CUDA
// starts), under exactly the names above and with the same protocol. `mpsim calibrate -o`
// writes the models' exact shapes there (profiler/calibrate/model_points.h). A name measured
// already (a grid point) is not measured again; a GEMM over the grid's buffer limit, a shape or
// size that does not fit in the free memory, a collective group larger than the GPUs used and a
// send not between 2 GPUs are skipped with a note; a collective size that is not whole bf16
// elements in equal shares over the group is rounded down as the grid's are (noted). GEMMs share
// one set of buffers (the largest shapes are dropped, noted, until it fits); an attention shape
// whose backward alone is listed runs its forward once outside any range; collectives get one
// communicator set per group size. Their JSON lines carry "listed":true, which `mpsim calibrate`
// reads to keep them off the grid tables (profiler/calibrate/calibrate_profile.h).
//
// Protocol of every measurement: 2 warm-up repetitions outside the range, all involved streams
// synchronised; every involved stream is held by a 1 ms kernel (outside the range) so that the
// repetitions queue up behind it and then run back to back with only the GPU's own launch gaps
// between them, as a training step's kernels run with the host ahead (the calibration counts
// issue slots: kernel time plus that gap, profiler/analyze/issue_slots.h); then the range is
// pushed (its NVTX int64 payload = the number of repetitions), `--reps` repetitions are issued
// back-to-back, the streams are synchronised and the range is popped. Per-repetition GPU time =
// the range's issue slots (per GPU) / repetitions. One cudaEvent pair brackets all repetitions on
// every timed stream (events between repetitions would add GPU-side gaps a training step does not
// have); the printed mean is the slowest GPU's elapsed time / repetitions, a host-side check.
// Compute measurements run on GPU 0. Buffers are filled with
// uniform random values (GEMM speed depends on the data through power) and freed after their
// measurements. One JSON line per measurement on stdout:
//   {"range":"calib/gemm.bf16/fwd/m=1024,n=768,k=768","reps":5,"mean_s":1.2e-05}
// Progress and skipped measurements go to stderr.
//
// Run time of the defaults on 2 H100s (estimate from the sizes; warm-ups included, 7 runs each):
//   GEMMs: 5 x 6 x 6 shapes x 3 layouts = 540 measurements; 2 sum(m) sum(n) sum(k) = 6.7e13
//     FLOP per layout, 1.4e15 FLOP in all, ~2-4 s at 400-800 TFLOP/s (16384^3 ~ 11 ms), plus
//     ~1 ms of synchronisation per measurement: ~5 s.
//   attention: 24 shapes fwd + bwd; the largest (bh 128, s 4096, d 128) ~4 ms fwd, ~8 ms bwd;
//     with allocation of up to 9 GiB per shape: ~2 s.
//   memory: 6 sizes x 3 ops, at most ~5 GiB of traffic a repetition (~2 ms): < 1 s.
//   loss: 3 x 4 (T, V) forward + backward; the logits sum to 17 GB over the grid, moved 3 times
//     a repetition (forward reads them, backward reads and writes): ~0.4 TB in all, < 1 s.
//   softmax: 5 sizes of [bh, 2048, 2048] (8 MiB to 1 GiB): < 1 s.
//   collectives (g = 2): 3 x 11 sizes + 11 sends; a 1 GiB all-reduce ~3.3 ms, the sizes sum to
//     4/3 of the largest: ~0.1 s of transfers, plus communicator set-up: ~3 s.
//   interference: 8192^3 GEMM (~1.4 ms) against 256 MiB all-reduces (~0.8 ms): < 1 s + set-up.
//   CUDA, cuBLAS and NCCL initialisation: a few seconds. Total ~15-30 s (more under the
//   profiler), far below the 4-minute target; each extra power-of-two group adds ~3 s.
//   `mpsim calibrate` passes the GEMM axes it derives from the models instead (8 values each,
//   up to 32768: profiler/calibrate/model_gemm_grid.h): 8^3 shapes x 3 layouts = 1536
//   measurements, ~1e16 FLOP in all (~20 s at 500 TFLOP/s, model_gemm_grid_test.cpp) plus
//   ~2 s of synchronisation; the whole run stays under a minute, within its 2-minute budget.
//   Its point list on 2 GPUs (model_points_test.cpp): 1296 GEMMs (1.5e15 FLOP a repetition,
//   ~21 s for 7 runs at 500 TFLOP/s), 102 attention measurements (2.4e13 FLOP, < 1 s), 373
//   collectives (9e10 bytes a repetition, ~2-3 s) plus ~2 ms of synchronisation each (~4 s):
//   ~30 s more, ~1 minute in all, within 3 minutes (not yet timed on a GPU machine).
//
// Failures: bad flags print a message naming the flag and exit 2 (nothing touches CUDA before the
// flags are parsed); CUDA, cuBLAS and NCCL failures throw ExecutorError (the executor's
// CUDA_CHECK / NCCL_CHECK: the call, file:line and the library's message), printed by main, exit 1.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "executor/cuda/cuda_check.h"
#include "executor/cuda/device_memory.h"
#include "executor/cuda/gemm.h"
#include "executor/cuda/kernels.h"
#include "profiler/calibrate/calibration_range.h"

namespace mpsim::calibration {
namespace {

using executor::bf16;
using executor::DeviceMemory;
using executor::ExecutorError;
using executor::Gemm;
using executor::Matrix;
namespace kernels = executor::kernels;

constexpr int kWarmups = 2;
constexpr int64_t kKiB = 1024, kMiB = 1024 * kKiB, kGiB = 1024 * kMiB;
// A GEMM shape whose three buffers exceed kGemmMaxBytes is skipped: 8 GiB holds 32768^3 with
// wgrad's fp32 output (2 + 2 + 4 GiB), the largest value `mpsim calibrate` derives per axis.
constexpr int64_t kGemmMaxBytes = 8 * kGiB;
constexpr int64_t kMemoryCols = 4096;  // columns of the norm and element-wise tensors
constexpr int64_t kInterferenceAllReduceBytes = 256 * kMiB;
constexpr int kMaxInterferenceAllReduces = 64;
// The JSON field marking a measurement of the --points list.
constexpr std::string_view kListedJson = ",\"listed\":true";
// A measurement needing more than this fraction of the free GPU memory is skipped.
constexpr double kFreeMemoryFraction = 0.9;

// ---- range names: the grammar of the file comment, in code --------------------------------------
std::string gemm_range(std::string_view layout, int64_t m, int64_t n, int64_t k) {
  return "calib/gemm.bf16/" + std::string(layout) + "/m=" + std::to_string(m) +
         ",n=" + std::to_string(n) + ",k=" + std::to_string(k);
}
std::string attention_range(bool backward, int64_t bh, int64_t s, int64_t d) {
  return std::string(backward ? "calib/attention.bwd.bf16" : "calib/attention.fwd.bf16") +
         "/bh=" + std::to_string(bh) + ",s=" + std::to_string(s) + ",d=" + std::to_string(d);
}
std::string memory_range(std::string_view op, int64_t bytes) {
  return "calib/memory." + std::string(op) + "/bytes=" + std::to_string(bytes);
}
std::string collective_range(std::string_view op, int group, int64_t bytes) {
  return "calib/" + std::string(op) + ".nvlink/g=" + std::to_string(group) +
         ",bytes=" + std::to_string(bytes);
}
std::string interference_range(int64_t m, int64_t n, int64_t k) {
  return "calib/interference/gemm.bf16/m=" + std::to_string(m) + ",n=" + std::to_string(n) +
         ",k=" + std::to_string(k);
}
std::string loss_range(bool backward, int64_t bytes) {
  return memory_range(backward ? "loss.bwd" : "loss.fwd", bytes);
}
std::string meta_range(int driver, int runtime, int cublas, int nccl) {
  return "calib/meta/driver=" + std::to_string(driver) + ",runtime=" + std::to_string(runtime) +
         ",cublas=" + std::to_string(cublas) + ",nccl=" + std::to_string(nccl);
}

// ---- options ------------------------------------------------------------------------------------
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
  std::vector<std::pair<std::string, std::array<int64_t, 3>>> gemm;  // layout, (M, N, K)
  // (BH, S, D) -> whether the forward and the backward are listed
  std::map<std::array<int64_t, 3>, std::pair<bool, bool>> attention;
  std::vector<std::tuple<std::string, int, int64_t>> collective;  // op, G, B
};

struct Options {
  std::vector<int64_t> gemm_m{1024, 2048, 4096, 8192, 16384};
  std::vector<int64_t> gemm_n{768, 1024, 2048, 4096, 8192, 16384};
  std::vector<int64_t> gemm_k{768, 1024, 2048, 4096, 8192, 16384};
  std::vector<int64_t> attention_bh{16, 64, 128};
  std::vector<int64_t> attention_s{512, 1024, 2048, 4096};
  std::vector<int64_t> attention_d{64, 128};
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
Options quick_options() {
  Options o;
  o.gemm_m = {2048};
  o.gemm_n = {2048};
  o.gemm_k = {1024, 4096};
  o.attention_bh = {16};
  o.attention_s = {512};
  o.attention_d = {64};
  o.memory_min = kMiB;
  o.memory_max = 4 * kMiB;
  o.loss_tokens = {2048};
  o.loss_vocab = {4096, 32000};
  o.softmax_seq = 512;
  o.collective_min = kMiB;
  o.collective_max = 4 * kMiB;
  o.interference_dim = 4096;
  o.quick = true;
  return o;
}

int64_t parse_positive(std::string_view flag, std::string_view text, int64_t max) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value <= 0 || value > max) {
    throw UsageError(std::string(flag) + ": '" + std::string(text) + "' is not an integer in [1, " +
                     std::to_string(max) + "]");
  }
  return value;
}

std::vector<int64_t> parse_list(std::string_view flag, std::string_view text) {
  std::vector<int64_t> values;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    values.push_back(parse_positive(flag, item, int64_t{1} << 30));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return values;
}

// A byte count: digits with an optional binary suffix K, KiB, M, MiB, G, GiB.
int64_t parse_bytes(std::string_view flag, std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, int64_t>, 6> kSuffixes = {
      {{"KiB", kKiB}, {"MiB", kMiB}, {"GiB", kGiB}, {"K", kKiB}, {"M", kMiB}, {"G", kGiB}}};
  int64_t unit = 1;
  for (const auto& [suffix, scale] : kSuffixes) {
    if (text.size() > suffix.size() && text.ends_with(suffix)) {
      text.remove_suffix(suffix.size());
      unit = scale;
      break;
    }
  }
  return parse_positive(flag, text, (int64_t{64} << 30) / unit) * unit;
}

std::string join(const std::vector<int64_t>& values) {
  std::string out;
  for (const int64_t v : values) {
    if (!out.empty()) out += ',';
    out += std::to_string(v);
  }
  return out;
}

// The --points file: one range name of the file comment's grammar per line, with or without its
// "calib/" prefix, for a gemm.bf16, attention or collective measurement; blank lines and lines
// starting with '#' are skipped. A line that breaks the grammar, or names another measurement,
// is refused naming the file and line.
PointList read_point_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("--points: cannot read '" + path + "'");
  PointList list;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    const std::string where = "--points: " + path + ":" + std::to_string(number) + ": ";
    const std::string name =
        line.starts_with(profiler::kCalibrationRangePrefix) ? line : "calib/" + line;
    std::optional<profiler::CalibrationRange> range;
    try {
      range = profiler::parse_calibration_range(name);
    } catch (const std::invalid_argument& e) {
      throw UsageError(where + e.what());
    }
    const std::vector<int64_t>& k = range->keys;
    switch (range->kind) {
      case profiler::MeasurementKind::kGemm:
        list.gemm.push_back(
            {range->table.substr(std::string_view("gemm.bf16.").size()), {k[0], k[1], k[2]}});
        break;
      case profiler::MeasurementKind::kAttention: {
        auto& passes = list.attention[{k[0], k[1], k[2]}];
        (range->table == "attention.bwd.bf16" ? passes.second : passes.first) = true;
        break;
      }
      case profiler::MeasurementKind::kCollective:
        if (k[0] > 1024)
          throw UsageError(where + "g = " + std::to_string(k[0]) + ", expected at most 1024 GPUs");
        list.collective.emplace_back(range->table.substr(0, range->table.find('.')),
                                     static_cast<int>(k[0]), k[1]);
        break;
      default:
        throw UsageError(where + "'" + line +
                         "' is not a gemm.bf16, attention or collective measurement");
    }
  }
  return list;
}

// Every flag, declared once: name, value placeholder ("" for a switch), help with unit, how to
// show its default, and how to apply it.
struct Flag {
  std::string_view name;
  std::string_view value;
  std::string_view help;
  std::string (*show)(const Options&);
  void (*apply)(Options&, std::string_view flag, std::string_view value);
};

const std::array<Flag, 18>& flags() {
  static const std::array<Flag, 18> kFlags = {{
      {"--gemm-m", "LIST", "GEMM M sizes (comma list)",
       [](const Options& o) { return join(o.gemm_m); },
       [](Options& o, std::string_view f, std::string_view v) { o.gemm_m = parse_list(f, v); }},
      {"--gemm-n", "LIST", "GEMM N sizes (comma list)",
       [](const Options& o) { return join(o.gemm_n); },
       [](Options& o, std::string_view f, std::string_view v) { o.gemm_n = parse_list(f, v); }},
      {"--gemm-k", "LIST", "GEMM K sizes (comma list)",
       [](const Options& o) { return join(o.gemm_k); },
       [](Options& o, std::string_view f, std::string_view v) { o.gemm_k = parse_list(f, v); }},
      {"--attention-bh", "LIST", "attention batch x heads (comma list)",
       [](const Options& o) { return join(o.attention_bh); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.attention_bh = parse_list(f, v);
       }},
      {"--attention-s", "LIST", "attention sequence lengths (comma list)",
       [](const Options& o) { return join(o.attention_s); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.attention_s = parse_list(f, v);
       }},
      {"--attention-d", "LIST", "attention head sizes (comma list)",
       [](const Options& o) { return join(o.attention_d); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.attention_d = parse_list(f, v);
       }},
      {"--memory-min", "BYTES",
       "smallest memory-op tensor (powers of 4 up to --memory-max; >= 8KiB)",
       [](const Options& o) { return std::to_string(o.memory_min); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.memory_min = parse_bytes(f, v);
       }},
      {"--memory-max", "BYTES", "largest memory-op tensor",
       [](const Options& o) { return std::to_string(o.memory_max); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.memory_max = parse_bytes(f, v);
       }},
      {"--loss-tokens", "LIST", "cross-entropy rows (tokens; comma list)",
       [](const Options& o) { return join(o.loss_tokens); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.loss_tokens = parse_list(f, v);
       }},
      {"--loss-vocab", "LIST", "cross-entropy columns (a rank's padded vocabulary; comma list)",
       [](const Options& o) { return join(o.loss_vocab); },
       [](Options& o, std::string_view f, std::string_view v) { o.loss_vocab = parse_list(f, v); }},
      {"--softmax-seq", "N",
       "sequence length s of the causal softmax's [bh, s, s] (bh from the memory sizes)",
       [](const Options& o) { return std::to_string(o.softmax_seq); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.softmax_seq = parse_positive(f, v, 1 << 16);
       }},
      {"--collective-min", "BYTES",
       "smallest collective buffer (powers of 4 up to --collective-max)",
       [](const Options& o) { return std::to_string(o.collective_min); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.collective_min = parse_bytes(f, v);
       }},
      {"--collective-max", "BYTES", "largest collective buffer",
       [](const Options& o) { return std::to_string(o.collective_max); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.collective_max = parse_bytes(f, v);
       }},
      {"--reps", "N", "timed repetitions per measurement (after 2 warm-ups)",
       [](const Options& o) { return std::to_string(o.reps); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.reps = static_cast<int>(parse_positive(f, v, 1000));
       }},
      {"--gpus", "N", "use the first N GPUs (collectives over every power-of-two group 2..N)",
       [](const Options& o) { return o.gpus == 0 ? std::string("all") : std::to_string(o.gpus); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.gpus = static_cast<int>(parse_positive(f, v, 1024));
       }},
      {"--points", "FILE",
       "also measure FILE's points after the grids: one range name per line without calib/ "
       "(gemm.bf16, attention and collective measurements; '#' comments)",
       [](const Options& o) { return o.points.empty() ? std::string("none") : o.points; },
       [](Options& o, std::string_view, std::string_view v) { o.points = std::string(v); }},
      {"--only", "LIST",
       "sections to run: gemm,attention,memory,loss,softmax,collectives,interference",
       [](const Options& o) {
         std::string out;
         for (const auto& [section, name] : kSections) {
           if (!o.runs(section)) continue;
           if (!out.empty()) out += ',';
           out += name;
         }
         return out;
       },
       [](Options& o, std::string_view f, std::string_view v) {
         o.run.fill(false);
         size_t start = 0;
         while (true) {
           const size_t comma = v.find(',', start);
           const std::string_view item = v.substr(
               start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
           const auto it = std::find_if(kSections.begin(), kSections.end(),
                                        [&](const auto& s) { return s.second == item; });
           if (it == kSections.end()) {
             throw UsageError(std::string(f) + ": unknown section '" + std::string(item) +
                              "' (expected gemm, attention, memory, loss, softmax, collectives or "
                              "interference)");
           }
           o.run[static_cast<size_t>(it->first)] = true;
           if (comma == std::string_view::npos) break;
           start = comma + 1;
         }
       }},
      {"--quick", "",
       "a small set for a smoke test: 2 GEMM shapes, 1 attention shape, 2 sizes per memory op, "
       "loss and collective; flags given with it still apply",
       [](const Options& o) { return std::string(o.quick ? "on" : "off"); },
       [](Options& o, std::string_view, std::string_view) { o.quick = true; }},
  }};
  return kFlags;
}

void print_help() {
  std::printf(
      "usage: calibration_bench [flags]\n"
      "Calibration microbenchmarks of the executor's GEMMs, attention, memory-bound kernels\n"
      "(with the cross-entropy and the causal softmax) and NCCL collectives on the local GPUs,\n"
      "one NVTX range per measurement (calib/...), one JSON line per measurement on stdout.\n"
      "Run it under the profiler:\n"
      "  mpsim profile -o calib.sqlite -- calibration_bench\n"
      "Flags (BYTES takes K/KiB, M/MiB, G/GiB suffixes):\n");
  const Options defaults;
  for (const Flag& f : flags()) {
    std::string head(f.name);
    if (!f.value.empty()) {
      head += ' ';
      head += f.value;
    }
    std::printf("  %-22s %.*s [default: %s]\n", head.c_str(), static_cast<int>(f.help.size()),
                f.help.data(), f.show(defaults).c_str());
  }
  std::printf("  %-22s this help\n", "-h, --help");
}

bool wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") return true;
  }
  return false;
}

Options parse_options(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) quick = quick || std::string_view(argv[i]) == "--quick";
  Options o = quick ? quick_options() : Options{};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!arg.starts_with("--")) throw UsageError("unexpected argument '" + std::string(arg) + "'");
    const size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const auto it =
        std::find_if(flags().begin(), flags().end(), [&](const Flag& f) { return f.name == name; });
    if (it == flags().end()) throw UsageError("unknown flag '" + std::string(name) + "'");
    std::string_view value;
    if (it->value.empty()) {
      if (eq != std::string_view::npos) throw UsageError(std::string(name) + " takes no value");
    } else if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      throw UsageError(std::string(name) + ": missing value " + std::string(it->value));
    }
    it->apply(o, name, value);
  }
  if (o.memory_min < 8 * kKiB)
    throw UsageError("--memory-min: must be at least 8KiB (one row of 4096 bf16)");
  if (o.memory_min > o.memory_max) throw UsageError("--memory-min: larger than --memory-max");
  if (o.collective_min > o.collective_max)
    throw UsageError("--collective-min: larger than --collective-max");
  if (!o.points.empty()) o.point_list = read_point_list(o.points);
  return o;
}

// min, 4 min, 16 min, ... up to max.
std::vector<int64_t> powers_of_four(int64_t min, int64_t max) {
  std::vector<int64_t> sizes;
  for (int64_t b = min; b <= max; b *= 4) sizes.push_back(b);
  return sizes;
}

// ---- device resources ---------------------------------------------------------------------------
// One cudaMalloc'ed buffer on one GPU, freed (cudaFree, which synchronises) when destroyed.
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(int device, int64_t bytes) : device_(device), bytes_(bytes) {
    CUDA_CHECK(cudaSetDevice(device));
    if (bytes <= 0) return;
    const cudaError_t status = cudaMalloc(&pointer_, static_cast<size_t>(bytes));
    if (status != cudaSuccess) {
      throw ExecutorError("allocating " + std::to_string(bytes) + " bytes on GPU " +
                          std::to_string(device) + ": " + cudaGetErrorString(status));
    }
  }
  DeviceArray(DeviceArray&& other) noexcept { *this = std::move(other); }
  DeviceArray& operator=(DeviceArray&& other) noexcept {
    if (this != &other) {
      release();
      device_ = other.device_;
      bytes_ = std::exchange(other.bytes_, 0);
      pointer_ = std::exchange(other.pointer_, nullptr);
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { release(); }

  template <typename T>
  T* as() const {
    return static_cast<T*>(pointer_);
  }
  int64_t bytes() const { return bytes_; }

 private:
  void release() noexcept {
    if (pointer_ == nullptr) return;
    cudaSetDevice(device_);
    const cudaError_t status = cudaFree(pointer_);
    if (status != cudaSuccess)
      std::fprintf(stderr, "calibration_bench: cudaFree failed: %s\n", cudaGetErrorString(status));
    pointer_ = nullptr;
  }

  int device_ = 0;
  int64_t bytes_ = 0;
  void* pointer_ = nullptr;
};

// A compute and a communication stream on each of the first `gpus` GPUs.
struct Lane {
  int device = 0;
  cudaStream_t stream = nullptr;
};

class GpuStreams {
 public:
  explicit GpuStreams(int gpus) {
    for (int d = 0; d < gpus; ++d) {
      CUDA_CHECK(cudaSetDevice(d));
      Lane compute{d, nullptr}, comm{d, nullptr};
      CUDA_CHECK(cudaStreamCreateWithFlags(&compute.stream, cudaStreamNonBlocking));
      compute_.push_back(compute);
      CUDA_CHECK(cudaStreamCreateWithFlags(&comm.stream, cudaStreamNonBlocking));
      comm_.push_back(comm);
    }
  }
  GpuStreams(const GpuStreams&) = delete;
  GpuStreams& operator=(const GpuStreams&) = delete;
  ~GpuStreams() {
    const bool failing = std::uncaught_exceptions() > 0;  // then never wait on the GPU
    for (const std::vector<Lane>* lanes : {&compute_, &comm_}) {
      for (const Lane& l : *lanes) {
        cudaSetDevice(l.device);
        if (!failing) cudaStreamSynchronize(l.stream);
        cudaStreamDestroy(l.stream);
      }
    }
  }
  int size() const { return static_cast<int>(compute_.size()); }
  Lane compute(int d) const { return compute_.at(d); }
  std::vector<Lane> comm_lanes(int gpus) const { return {comm_.begin(), comm_.begin() + gpus}; }

 private:
  std::vector<Lane> compute_, comm_;
};

// The executor's Gemm on one GPU's compute stream (its 32 MiB cuBLAS workspace comes from the
// executor's DeviceMemory).
class GemmContext {
 public:
  explicit GemmContext(Lane lane) : lane_(lane) {
    CUDA_CHECK(cudaSetDevice(lane.device));
    memory_ = std::make_unique<DeviceMemory>();
    gemm_ = std::make_unique<Gemm>(*memory_, lane.stream);
  }
  GemmContext(const GemmContext&) = delete;
  GemmContext& operator=(const GemmContext&) = delete;
  ~GemmContext() {
    cudaSetDevice(lane_.device);
    gemm_.reset();  // releases the workspace on the stream, which must still exist
  }
  Gemm& gemm() { return *gemm_; }
  Lane lane() const { return lane_; }
  // Makes the context's GPU current: cuBLAS handles and kernels need it.
  void activate() const { CUDA_CHECK(cudaSetDevice(lane_.device)); }

 private:
  Lane lane_;
  std::unique_ptr<DeviceMemory> memory_;
  std::unique_ptr<Gemm> gemm_;
};

// NCCL communicators over the first `g` GPUs, one per GPU, from one ncclCommInitAll.
class NcclComms {
 public:
  explicit NcclComms(int g) : comms_(static_cast<size_t>(g), nullptr) {
    std::vector<int> devices(static_cast<size_t>(g));
    std::iota(devices.begin(), devices.end(), 0);
    NCCL_CHECK(ncclCommInitAll(comms_.data(), g, devices.data()));
  }
  NcclComms(const NcclComms&) = delete;
  NcclComms& operator=(const NcclComms&) = delete;
  // Unwinding from a failure aborts instead: a destroy could wait on work that never completes.
  ~NcclComms() {
    const bool failing = std::uncaught_exceptions() > 0;
    for (ncclComm_t c : comms_) {
      if (c == nullptr) continue;
      const ncclResult_t status = failing ? ncclCommAbort(c) : ncclCommDestroy(c);
      if (status != ncclSuccess)
        std::fprintf(stderr, "calibration_bench: releasing an NCCL communicator failed: %s\n",
                     ncclGetErrorString(status));
    }
  }
  int size() const { return static_cast<int>(comms_.size()); }
  ncclComm_t operator[](int rank) const { return comms_.at(static_cast<size_t>(rank)); }

 private:
  std::vector<ncclComm_t> comms_;
};

// An event without timing, for ordering streams.
class SyncEvent {
 public:
  explicit SyncEvent(int device) : device_(device) {
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  }
  SyncEvent(const SyncEvent&) = delete;
  SyncEvent& operator=(const SyncEvent&) = delete;
  ~SyncEvent() {
    cudaSetDevice(device_);
    cudaEventDestroy(event_);
  }
  cudaEvent_t get() const { return event_; }

 private:
  int device_;
  cudaEvent_t event_ = nullptr;
};

// ---- data ---------------------------------------------------------------------------------------
// Uniform values in [lo, hi) from a hash of (seed, index): the same on every run.
template <typename T>
__global__ void fill_uniform_kernel(T* out, int64_t n, uint64_t seed, float lo, float hi) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    uint64_t z = seed + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float v = lo + (hi - lo) * (static_cast<float>(z >> 40) * (1.0f / 16777216.0f));
    if constexpr (std::is_same_v<T, float>) {
      out[i] = v;
    } else {
      out[i] = __float2bfloat16(v);
    }
  }
}

template <typename T>
void fill_uniform(const DeviceArray& buffer, float lo, float hi, uint64_t seed,
                  cudaStream_t stream) {
  const int64_t n = buffer.bytes() / static_cast<int64_t>(sizeof(T));
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 16384);
  fill_uniform_kernel<T>
      <<<static_cast<unsigned>(blocks), 256, 0, stream>>>(buffer.as<T>(), n, seed, lo, hi);
  CUDA_CHECK_LAUNCH();
}

// Class ids in [0, vocab) from a hash of (seed, index).
__global__ void fill_targets_kernel(int32_t* out, int64_t n, int64_t vocab, uint64_t seed) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    uint64_t z = seed + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    out[i] = static_cast<int32_t>((z ^ (z >> 31)) % static_cast<uint64_t>(vocab));
  }
}

void fill_targets(const DeviceArray& buffer, int64_t vocab, uint64_t seed, cudaStream_t stream) {
  const int64_t n = buffer.bytes() / static_cast<int64_t>(sizeof(int32_t));
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 16384);
  fill_targets_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(buffer.as<int32_t>(), n,
                                                                         vocab, seed);
  CUDA_CHECK_LAUNCH();
}

void zero(const DeviceArray& buffer, cudaStream_t stream) {
  if (buffer.bytes() > 0)
    CUDA_CHECK(cudaMemsetAsync(buffer.as<void>(), 0, static_cast<size_t>(buffer.bytes()), stream));
}

// Whether `bytes` fit in the free memory of `device` (with a margin); prints a note when not.
bool fits(int device, int64_t bytes, const std::string& what) {
  CUDA_CHECK(cudaSetDevice(device));
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  if (static_cast<double>(bytes) <= kFreeMemoryFraction * static_cast<double>(free)) return true;
  std::fprintf(stderr, "calibration_bench: skipped %s: needs %.2f GiB, %.2f GiB free on GPU %d\n",
               what.c_str(), static_cast<double>(bytes) / kGiB, static_cast<double>(free) / kGiB,
               device);
  return false;
}

// ---- the measurement harness --------------------------------------------------------------------
// cudaEvent pairs per repetition per timed lane (the harness uses one "repetition": all of them).
class RepetitionEvents {
 public:
  RepetitionEvents(std::vector<Lane> lanes, int reps) : lanes_(std::move(lanes)), reps_(reps) {
    events_.assign(lanes_.size() * static_cast<size_t>(reps) * 2, nullptr);
    for (size_t l = 0; l < lanes_.size(); ++l) {
      CUDA_CHECK(cudaSetDevice(lanes_[l].device));
      for (int r = 0; r < reps; ++r) {
        CUDA_CHECK(cudaEventCreate(&at(l, r, false)));
        CUDA_CHECK(cudaEventCreate(&at(l, r, true)));
      }
    }
  }
  RepetitionEvents(const RepetitionEvents&) = delete;
  RepetitionEvents& operator=(const RepetitionEvents&) = delete;
  ~RepetitionEvents() {
    for (size_t l = 0; l < lanes_.size(); ++l) {
      cudaSetDevice(lanes_[l].device);
      for (int r = 0; r < reps_; ++r) {
        for (const bool end : {false, true}) {
          if (at(l, r, end) != nullptr) cudaEventDestroy(at(l, r, end));
        }
      }
    }
  }

  void record(int rep, bool end) {
    for (size_t l = 0; l < lanes_.size(); ++l) {
      CUDA_CHECK(cudaSetDevice(lanes_[l].device));
      CUDA_CHECK(cudaEventRecord(at(l, rep, end), lanes_[l].stream));
    }
  }
  // The slowest lane's elapsed time of repetition `rep` (after the lanes are synchronised).
  double seconds(int rep) {
    double slowest = 0;
    for (size_t l = 0; l < lanes_.size(); ++l) {
      CUDA_CHECK(cudaSetDevice(lanes_[l].device));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, at(l, rep, false), at(l, rep, true)));
      slowest = std::max(slowest, 1e-3 * ms);
    }
    return slowest;
  }

 private:
  cudaEvent_t& at(size_t lane, int rep, bool end) {
    return events_[(lane * static_cast<size_t>(reps_) + static_cast<size_t>(rep)) * 2 +
                   (end ? 1 : 0)];
  }

  std::vector<Lane> lanes_;
  int reps_;
  std::vector<cudaEvent_t> events_;
};

// Holds a stream for `ns` nanoseconds (GPU clock) so that the host can queue a measurement's
// repetitions behind it: they then run back to back, as a training step's kernels do with the
// host ahead of the GPU, and the launch gaps between them are the GPU's own, not the host's
// launch time.
__global__ void hold_stream_kernel(uint64_t ns) {
  uint64_t start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

constexpr uint64_t kHoldNs = 1000000;  // 1 ms: far longer than issuing any measurement's reps

void hold(const std::vector<Lane>& lanes) {
  for (const Lane& l : lanes) {
    CUDA_CHECK(cudaSetDevice(l.device));
    hold_stream_kernel<<<1, 1, 0, l.stream>>>(kHoldNs);
    CUDA_CHECK(cudaGetLastError());
  }
}

void synchronize(const std::vector<Lane>& lanes) {
  for (const Lane& l : lanes) {
    CUDA_CHECK(cudaSetDevice(l.device));
    CUDA_CHECK(cudaStreamSynchronize(l.stream));
  }
}

// An NVTX push/pop range on this thread whose int64 payload is the number of repetitions.
class CalibrationRange {
 public:
  CalibrationRange(const std::string& name, int reps) {
    nvtxEventAttributes_t a{};
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = name.c_str();
    a.payloadType = NVTX_PAYLOAD_TYPE_INT64;
    a.payload.llValue = reps;
    nvtxRangePushEx(&a);
  }
  CalibrationRange(const CalibrationRange&) = delete;
  CalibrationRange& operator=(const CalibrationRange&) = delete;
  ~CalibrationRange() { nvtxRangePop(); }
};

struct Measurement {
  std::string range;
  std::vector<Lane> timed;           // a cudaEvent pair brackets each repetition on each
  std::vector<Lane> involved;        // every stream the work touches; empty: the timed ones
  std::function<void()> prepare;     // before each repetition (inside the range); may be empty
  std::function<void()> repetition;  // issues one repetition (asynchronously)
  std::string extra_json;            // more fields for the JSON line: ",\"key\":value"
};

class Harness {
 public:
  explicit Harness(int reps) : reps_(reps) {}

  // Runs the protocol of the file comment; prints the JSON line; returns the mean seconds.
  double measure(const Measurement& m) {
    const std::vector<Lane>& involved = m.involved.empty() ? m.timed : m.involved;
    // One event pair around all repetitions: events between them would add GPU-side gaps that
    // a training step does not have.
    RepetitionEvents events(m.timed, 1);
    for (int w = 0; w < kWarmups; ++w) {
      if (m.prepare) m.prepare();
      m.repetition();
    }
    synchronize(involved);
    hold(involved);  // outside the range: not measured
    {
      CalibrationRange range(m.range, reps_);
      events.record(0, false);
      for (int r = 0; r < reps_; ++r) {
        if (m.prepare) m.prepare();
        m.repetition();
      }
      events.record(0, true);
      synchronize(involved);
    }
    const double result = events.seconds(0) / reps_;
    std::printf("{\"range\":\"%s\",\"reps\":%d,\"mean_s\":%.6e%s}\n", m.range.c_str(), reps_,
                result, m.extra_json.c_str());
    std::fflush(stdout);
    ++count_;
    measured_.insert(m.range);
    return result;
  }
  // The common case: `repetition` timed on `timed`, which are all the streams it touches.
  double measure(std::string range, std::vector<Lane> timed, std::function<void()> repetition,
                 std::string extra_json = "") {
    Measurement m;
    m.range = std::move(range);
    m.timed = std::move(timed);
    m.repetition = std::move(repetition);
    m.extra_json = std::move(extra_json);
    return measure(m);
  }
  int count() const { return count_; }
  // Whether a range of this name was measured already (the point list skips it).
  bool measured(const std::string& range) const { return measured_.contains(range); }

 private:
  int reps_;
  int count_ = 0;
  std::set<std::string> measured_;
};

// ---- GEMMs --------------------------------------------------------------------------------------
enum class Layout { kFwd, kDgrad, kWgrad };
constexpr std::array<std::pair<Layout, std::string_view>, 3> kLayouts = {
    {{Layout::kFwd, "fwd"}, {Layout::kDgrad, "dgrad"}, {Layout::kWgrad, "wgrad"}}};

// Bytes of A [M, K] (bf16), B [K, N] (bf16) and C [M, N] (bf16; fp32 for wgrad).
int64_t gemm_bytes(Layout layout, int64_t m, int64_t n, int64_t k) {
  return 2 * m * k + 2 * n * k + (layout == Layout::kWgrad ? 4 : 2) * m * n;
}

// One GEMM of the file comment's table; a: [M, K] or [K, M], b: [N, K] or [K, N], c: [M, N].
void issue_gemm(Gemm& gemm, Layout layout, int64_t m, int64_t n, int64_t k, const DeviceArray& a,
                const DeviceArray& b, const DeviceArray& c) {
  switch (layout) {
    case Layout::kFwd:  // tokens = M, in = K, out = N
      gemm.linear_forward(a.as<bf16>(), b.as<bf16>(), c.as<bf16>(), m, k, n);
      break;
    case Layout::kDgrad:  // tokens = M, in = N, out = K
      gemm.linear_dgrad(a.as<bf16>(), b.as<bf16>(), c.as<bf16>(), m, n, k);
      break;
    case Layout::kWgrad:  // tokens = K, in = N, out = M
      gemm.linear_wgrad(a.as<bf16>(), b.as<bf16>(), c.as<float>(), k, n, m);
      break;
  }
}

struct GemmShape {
  Layout layout;
  std::string_view name;
  int64_t m, n, k;
};

// Measures `shapes` on the context's GPU with one set of buffers for all (each shape uses a
// prefix), filled once. Shapes over kGemmMaxBytes, and shapes measured already, are skipped;
// while the buffers do not fit, the largest shape left is skipped (each printed).
void measure_gemm_shapes(std::vector<GemmShape> shapes, std::string_view what,
                         const std::string& extra_json, GemmContext& ctx, Harness& harness) {
  const Lane lane = ctx.lane();
  std::erase_if(shapes, [&](const GemmShape& s) {
    if (harness.measured(gemm_range(s.name, s.m, s.n, s.k))) return true;
    if (gemm_bytes(s.layout, s.m, s.n, s.k) <= kGemmMaxBytes) return false;
    std::fprintf(stderr, "calibration_bench: skipped %s: buffers over %lld GiB\n",
                 gemm_range(s.name, s.m, s.n, s.k).c_str(),
                 static_cast<long long>(kGemmMaxBytes / kGiB));
    return true;
  });
  int64_t a_bytes = 0, b_bytes = 0, c_bytes = 0;
  while (true) {
    a_bytes = b_bytes = c_bytes = 0;
    for (const GemmShape& s : shapes) {
      a_bytes = std::max(a_bytes, 2 * s.m * s.k);
      b_bytes = std::max(b_bytes, 2 * s.n * s.k);
      c_bytes = std::max(c_bytes, (s.layout == Layout::kWgrad ? 4 : 2) * s.m * s.n);
    }
    if (shapes.empty()) break;
    const auto largest =
        std::max_element(shapes.begin(), shapes.end(), [](const auto& x, const auto& y) {
          return gemm_bytes(x.layout, x.m, x.n, x.k) < gemm_bytes(y.layout, y.m, y.n, y.k);
        });
    if (fits(lane.device, a_bytes + b_bytes + c_bytes,
             gemm_range(largest->name, largest->m, largest->n, largest->k) + " and with it the "
                                                                             "GEMM buffers")) {
      break;
    }
    shapes.erase(largest);
  }
  std::fprintf(stderr, "calibration_bench: gemm: %zu %.*s measurements on GPU %d\n", shapes.size(),
               static_cast<int>(what.size()), what.data(), lane.device);
  if (shapes.empty()) return;
  DeviceArray a(lane.device, a_bytes), b(lane.device, b_bytes), c(lane.device, c_bytes);
  fill_uniform<bf16>(a, -1.0f, 1.0f, 1, lane.stream);
  fill_uniform<bf16>(b, -1.0f, 1.0f, 2, lane.stream);
  zero(c, lane.stream);
  for (const GemmShape& s : shapes) {
    harness.measure(
        gemm_range(s.name, s.m, s.n, s.k), {lane},
        [&] {
          ctx.activate();
          issue_gemm(ctx.gemm(), s.layout, s.m, s.n, s.k, a, b, c);
        },
        extra_json);
  }
}

void run_gemms(const Options& o, GemmContext& ctx, Harness& harness) {
  std::vector<GemmShape> shapes;
  for (const int64_t m : o.gemm_m) {
    for (const int64_t n : o.gemm_n) {
      for (const int64_t k : o.gemm_k) {
        for (const auto& [layout, name] : kLayouts) shapes.push_back({layout, name, m, n, k});
      }
    }
  }
  measure_gemm_shapes(std::move(shapes), "grid", "", ctx, harness);
}

// ---- attention ----------------------------------------------------------------------------------
// The executor's attention core with group r = 1 (executor/cuda/gpt_model.cu): qkv [s, bh, 3, d]
// (row = position, per head its q, k, v), scores/probabilities [bh, s, s], context [s, bh, d].
// One shape's forward and backward, each where asked for and not measured already; the backward
// alone runs the forward first, outside any range, for its probabilities.
void measure_attention_shape(int64_t bh, int64_t s, int64_t d, bool forward, bool backward,
                             const std::string& extra_json, GemmContext& ctx, Harness& harness) {
  forward = forward && !harness.measured(attention_range(false, bh, s, d));
  backward = backward && !harness.measured(attention_range(true, bh, s, d));
  if (!forward && !backward) return;
  const Lane lane = ctx.lane();
  const int64_t qkv_bytes = s * bh * 3 * d * 2, score_bytes = bh * s * s * 2,
                ctx_bytes = s * bh * d * 2;
  if (!fits(lane.device, 2 * (qkv_bytes + score_bytes + ctx_bytes),
            attention_range(!forward, bh, s, d) + (forward && backward ? " and bwd" : "")))
    return;
  DeviceArray qkv(lane.device, qkv_bytes), dqkv(lane.device, qkv_bytes);
  DeviceArray probs(lane.device, score_bytes), ds(lane.device, score_bytes);
  DeviceArray context(lane.device, ctx_bytes), dcontext(lane.device, ctx_bytes);
  fill_uniform<bf16>(qkv, -1.0f, 1.0f, 3, lane.stream);
  fill_uniform<bf16>(dcontext, -1.0f, 1.0f, 4, lane.stream);
  zero(dqkv, lane.stream);

  const int64_t ld = bh * 3 * d, gw = 3 * d, ss = s * s, ctx_ld = bh * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const bf16* q = qkv.as<bf16>();
  const bf16* k = q + d;
  const bf16* v = q + 2 * d;
  bf16* p = probs.as<bf16>();
  bf16* dp = ds.as<bf16>();
  bf16* dq = dqkv.as<bf16>();
  const bf16* dctx = dcontext.as<bf16>();
  Gemm& gemm = ctx.gemm();

  auto issue_forward = [&] {
    ctx.activate();
    gemm.batched(false, true, s, s, d, 1.0f, {q, ld, gw}, {k, ld, gw}, {p, s, ss}, bh);
    kernels::causal_softmax_forward(p, p, bh, s, scale, lane.stream);
    gemm.batched(false, false, s, d, s, 1.0f, {p, s, ss}, {v, ld, gw},
                 {context.as<bf16>(), ctx_ld, d}, bh);
  };
  if (forward) {
    harness.measure(attention_range(false, bh, s, d), {lane}, issue_forward, extra_json);
  } else {
    issue_forward();
  }
  if (!backward) return;
  // The backward pass reads the probabilities the forward repetitions left in `probs`.
  harness.measure(
      attention_range(true, bh, s, d), {lane},
      [&] {
        ctx.activate();
        // dP = dctx V^T; dV = P^T dctx
        gemm.batched(false, true, s, s, d, 1.0f, {dctx, ctx_ld, d}, {v, ld, gw}, {dp, s, ss}, bh);
        gemm.batched(true, false, s, d, s, 1.0f, {p, s, ss}, {dctx, ctx_ld, d},
                     {dq + 2 * d, ld, gw}, bh, 0.0f);
        kernels::causal_softmax_backward(dp, p, dp, bh, s, scale, lane.stream);
        // dQ = dS K; dK = dS^T Q
        gemm.batched(false, false, s, d, s, 1.0f, {dp, s, ss}, {k, ld, gw}, {dq, ld, gw}, bh);
        gemm.batched(true, false, s, d, s, 1.0f, {dp, s, ss}, {q, ld, gw}, {dq + d, ld, gw}, bh,
                     0.0f);
      },
      extra_json);
}

void run_attention(const Options& o, GemmContext& ctx, Harness& harness) {
  const size_t shapes = o.attention_bh.size() * o.attention_s.size() * o.attention_d.size();
  std::fprintf(stderr,
               "calibration_bench: attention: %zu shapes, forward and backward, on GPU %d\n",
               shapes, ctx.lane().device);
  for (const int64_t bh : o.attention_bh) {
    for (const int64_t s : o.attention_s) {
      for (const int64_t d : o.attention_d) {
        measure_attention_shape(bh, s, d, true, true, "", ctx, harness);
      }
    }
  }
}

// ---- memory-bound kernels -----------------------------------------------------------------------
void run_memory(const Options& o, Lane lane, Harness& harness) {
  const std::vector<int64_t> sizes = powers_of_four(o.memory_min, o.memory_max);
  std::fprintf(stderr, "calibration_bench: memory: %zu sizes x 3 ops on GPU %d\n", sizes.size(),
               lane.device);
  const int64_t cols = kMemoryCols;
  auto activate = [&] { CUDA_CHECK(cudaSetDevice(lane.device)); };
  for (const int64_t requested : sizes) {
    const int64_t rows = std::max<int64_t>(1, requested / (2 * cols));
    const int64_t bytes = rows * cols * 2;
    if (fits(lane.device, 4 * bytes, memory_range("norm", bytes))) {
      DeviceArray x(lane.device, bytes), y(lane.device, bytes), dy(lane.device, bytes),
          dx(lane.device, bytes);
      DeviceArray gamma(lane.device, cols * 2), beta(lane.device, cols * 2);
      DeviceArray mean(lane.device, rows * 4), rstd(lane.device, rows * 4);
      DeviceArray dgamma(lane.device, cols * 4), dbeta(lane.device, cols * 4);
      fill_uniform<bf16>(x, -1.0f, 1.0f, 5, lane.stream);
      fill_uniform<bf16>(dy, -1.0f, 1.0f, 6, lane.stream);
      fill_uniform<bf16>(gamma, 0.5f, 1.5f, 7, lane.stream);
      fill_uniform<bf16>(beta, -0.5f, 0.5f, 8, lane.stream);
      zero(dgamma, lane.stream);
      zero(dbeta, lane.stream);
      harness.measure(memory_range("norm", bytes), {lane}, [&] {
        activate();
        kernels::norm_forward(x.as<bf16>(), gamma.as<bf16>(), beta.as<bf16>(), y.as<bf16>(),
                              mean.as<float>(), rstd.as<float>(), rows, cols, 1e-5f, false,
                              lane.stream);
        kernels::norm_backward(dy.as<bf16>(), x.as<bf16>(), gamma.as<bf16>(), mean.as<float>(),
                               rstd.as<float>(), nullptr, dx.as<bf16>(), dgamma.as<float>(),
                               dbeta.as<float>(), rows, cols, false, lane.stream);
      });
    }
    if (fits(lane.device, 2 * bytes, memory_range("elementwise", bytes))) {
      DeviceArray x(lane.device, bytes), y(lane.device, bytes), bias(lane.device, cols * 2);
      fill_uniform<bf16>(x, -2.0f, 2.0f, 9, lane.stream);
      fill_uniform<bf16>(bias, -0.5f, 0.5f, 10, lane.stream);
      harness.measure(memory_range("elementwise", bytes), {lane}, [&] {
        activate();
        kernels::bias_gelu_forward(x.as<bf16>(), bias.as<bf16>(), y.as<bf16>(), rows, cols,
                                   lane.stream);
      });
    }
    const int64_t params = requested / 4, master_bytes = params * 4;
    if (fits(lane.device, 4 * master_bytes + 2 * params, memory_range("optimizer", master_bytes))) {
      DeviceArray master(lane.device, master_bytes), grad(lane.device, master_bytes);
      DeviceArray m(lane.device, master_bytes), v(lane.device, master_bytes),
          model(lane.device, params * 2);
      fill_uniform<float>(master, -0.1f, 0.1f, 11, lane.stream);
      fill_uniform<float>(grad, -1e-2f, 1e-2f, 12, lane.stream);
      fill_uniform<float>(m, -1e-3f, 1e-3f, 13, lane.stream);
      fill_uniform<float>(v, 0.0f, 1e-4f, 14, lane.stream);
      int64_t step = 0;
      harness.measure(memory_range("optimizer", master_bytes), {lane}, [&] {
        activate();
        kernels::adamw_step(master.as<float>(), grad.as<float>(), m.as<float>(), v.as<float>(),
                            model.as<bf16>(), nullptr, params, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f,
                            ++step, 1.0f, lane.stream);
      });
    }
  }
}

// ---- cross-entropy ------------------------------------------------------------------------------
// The executor's loss at TP = 1 (vocab_start 0, every column real): forward partial + combine,
// backward in place, as executor/cuda/gpt_model.cu calls them.
void run_loss(const Options& o, Lane lane, Harness& harness) {
  std::fprintf(stderr,
               "calibration_bench: loss: %zu tokens x %zu vocab sizes, forward and "
               "backward, on GPU %d\n",
               o.loss_tokens.size(), o.loss_vocab.size(), lane.device);
  auto activate = [&] { CUDA_CHECK(cudaSetDevice(lane.device)); };
  std::set<int64_t> measured_forward, measured_backward;  // B already measured, by pass
  for (const int64_t tokens : o.loss_tokens) {
    for (const int64_t vocab : o.loss_vocab) {
      const int64_t forward_bytes = profiler::loss_forward_bytes(tokens, vocab);
      const int64_t backward_bytes = profiler::loss_backward_bytes(tokens, vocab);
      const bool forward = measured_forward.insert(forward_bytes).second;
      const bool backward = measured_backward.insert(backward_bytes).second;
      if (!forward && !backward) continue;
      const int64_t logits_bytes = tokens * vocab * 2;
      if (!fits(lane.device, logits_bytes + 7 * tokens * 4,
                loss_range(false, forward_bytes) + " and bwd"))
        continue;
      DeviceArray logits(lane.device, logits_bytes), targets(lane.device, tokens * 4);
      DeviceArray partial(lane.device, 3 * tokens * 4), row_max(lane.device, tokens * 4),
          sums(lane.device, 2 * tokens * 4), loss_sum(lane.device, 4);
      fill_uniform<bf16>(logits, -4.0f, 4.0f, 17, lane.stream);
      fill_targets(targets, vocab, 18, lane.stream);
      zero(loss_sum, lane.stream);
      auto issue_forward = [&] {
        activate();
        kernels::cross_entropy_partial(logits.as<bf16>(), targets.as<int32_t>(),
                                       partial.as<float>(), tokens, vocab, 0, vocab, lane.stream);
        kernels::cross_entropy_combine(partial.as<float>(), 1, row_max.as<float>(),
                                       sums.as<float>(), loss_sum.as<float>(), tokens, lane.stream);
      };
      if (forward) {
        harness.measure(loss_range(false, forward_bytes), {lane}, issue_forward);
      } else {
        issue_forward();  // the backward needs the row max and sums
      }
      if (!backward) continue;
      const float grad_scale = 1.0f / static_cast<float>(tokens);
      harness.measure(loss_range(true, backward_bytes), {lane}, [&] {
        activate();
        kernels::cross_entropy_backward(logits.as<bf16>(), targets.as<int32_t>(),
                                        row_max.as<float>(), sums.as<float>(), tokens, vocab, 0,
                                        vocab, grad_scale, lane.stream);
      });
    }
  }
}

// ---- causal softmax -----------------------------------------------------------------------------
// causal_softmax_forward alone, in place on [bh, s, s] as the attention core calls it; bh from
// each memory size (at least 1; a size giving a B already measured is skipped).
void run_softmax(const Options& o, Lane lane, Harness& harness) {
  const int64_t s = o.softmax_seq, head_bytes = s * s * 2;
  std::fprintf(stderr, "calibration_bench: softmax: s = %lld, up to %zu sizes, on GPU %d\n",
               static_cast<long long>(s), powers_of_four(o.memory_min, o.memory_max).size(),
               lane.device);
  const float scale = 1.0f / std::sqrt(128.0f);
  std::set<int64_t> measured;
  for (const int64_t requested : powers_of_four(o.memory_min, o.memory_max)) {
    const int64_t bh = std::max<int64_t>(1, requested / head_bytes), bytes = bh * head_bytes;
    if (!measured.insert(bytes).second) continue;
    if (!fits(lane.device, bytes, memory_range("softmax", bytes))) continue;
    DeviceArray scores(lane.device, bytes);
    fill_uniform<bf16>(scores, -4.0f, 4.0f, 19, lane.stream);
    harness.measure(memory_range("softmax", bytes), {lane}, [&] {
      CUDA_CHECK(cudaSetDevice(lane.device));
      kernels::causal_softmax_forward(scores.as<bf16>(), scores.as<bf16>(), bh, s, scale,
                                      lane.stream);
    });
  }
}

// ---- collectives --------------------------------------------------------------------------------
enum class Collective { kAllReduce, kAllGather, kReduceScatter, kSend };

std::string_view collective_name(Collective c) {
  switch (c) {
    case Collective::kAllReduce:
      return "allreduce";
    case Collective::kAllGather:
      return "allgather";
    case Collective::kReduceScatter:
      return "reducescatter";
    case Collective::kSend:
      return "send";
  }
  return "?";
}

// The requested bytes rounded down to whole bf16 elements, equal shares over the group.
int64_t collective_bytes(int64_t requested, int group) {
  const int64_t unit = 2 * int64_t{group};
  return std::max(unit, requested / unit * unit);
}

// One collective over the group, from this thread, in one NCCL group call. buffers[r] is rank r's
// buffer (on GPU r) of at least `bytes`; lanes[r] its stream.
void issue_collective(Collective c, const NcclComms& comms, const std::vector<DeviceArray>& buffers,
                      const std::vector<Lane>& lanes, int64_t bytes) {
  const int g = comms.size();
  const size_t count = static_cast<size_t>(bytes / 2), share = count / static_cast<size_t>(g);
  NCCL_CHECK(ncclGroupStart());
  for (int r = 0; r < g; ++r) {
    bf16* buffer = buffers[static_cast<size_t>(r)].as<bf16>();
    bf16* mine = buffer + static_cast<size_t>(r) * share;
    const cudaStream_t stream = lanes[static_cast<size_t>(r)].stream;
    switch (c) {
      case Collective::kAllReduce:
        NCCL_CHECK(ncclAllReduce(buffer, buffer, count, ncclBfloat16, ncclSum, comms[r], stream));
        break;
      case Collective::kAllGather:
        NCCL_CHECK(ncclAllGather(mine, buffer, share, ncclBfloat16, comms[r], stream));
        break;
      case Collective::kReduceScatter:
        NCCL_CHECK(ncclReduceScatter(buffer, mine, share, ncclBfloat16, ncclSum, comms[r], stream));
        break;
      case Collective::kSend:
        if (r == 0) NCCL_CHECK(ncclSend(buffer, count, ncclBfloat16, 1, comms[r], stream));
        if (r == 1) NCCL_CHECK(ncclRecv(buffer, count, ncclBfloat16, 0, comms[r], stream));
        break;
    }
  }
  NCCL_CHECK(ncclGroupEnd());
}

std::vector<DeviceArray> zeroed_buffers(const std::vector<Lane>& lanes, int64_t bytes) {
  std::vector<DeviceArray> buffers;
  for (const Lane& l : lanes) {
    buffers.emplace_back(l.device, bytes);
    zero(buffers.back(), l.stream);
  }
  synchronize(lanes);
  return buffers;
}

int largest_power_of_two(int n) {
  int p = 1;
  while (2 * p <= n) p *= 2;
  return p;
}

void run_collectives(const Options& o, const GpuStreams& streams, Harness& harness) {
  if (streams.size() < 2) {
    std::fprintf(stderr, "calibration_bench: collectives: skipped (one GPU)\n");
    return;
  }
  const std::vector<int64_t> sizes = powers_of_four(o.collective_min, o.collective_max);
  for (int g = 2; g <= streams.size(); g *= 2) {
    std::fprintf(stderr, "calibration_bench: collectives: group of %d GPUs, %zu sizes\n", g,
                 sizes.size());
    const std::vector<Lane> lanes = streams.comm_lanes(g);
    if (!fits(0, collective_bytes(o.collective_max, g),
              "collectives of " + std::to_string(g) + " GPUs"))
      continue;
    NcclComms comms(g);
    const std::vector<DeviceArray> buffers =
        zeroed_buffers(lanes, collective_bytes(o.collective_max, g));
    std::vector<Collective> ops = {Collective::kAllReduce, Collective::kAllGather,
                                   Collective::kReduceScatter};
    if (g == 2) ops.push_back(Collective::kSend);
    for (const Collective c : ops) {
      for (const int64_t requested : sizes) {
        const int64_t bytes = collective_bytes(requested, g);
        harness.measure(collective_range(collective_name(c), g, bytes), lanes,
                        [&] { issue_collective(c, comms, buffers, lanes, bytes); });
      }
    }
  }
}

// ---- compute-communication interference ---------------------------------------------------------
void run_interference(const Options& o, const GpuStreams& streams, GemmContext& ctx,
                      Harness& harness) {
  if (streams.size() < 2) {
    std::fprintf(stderr, "calibration_bench: interference: skipped (one GPU)\n");
    return;
  }
  const int g = largest_power_of_two(streams.size());
  const Lane compute = ctx.lane();
  const std::vector<Lane> comm_lanes = streams.comm_lanes(g);
  const Lane comm = comm_lanes.front();
  if (compute.device != comm.device)
    throw ExecutorError("interference: the GEMM must run on GPU 0");
  const int64_t dim = o.interference_dim;
  const int64_t ar_bytes = collective_bytes(kInterferenceAllReduceBytes, g);
  std::fprintf(stderr,
               "calibration_bench: interference: %lld^3 GEMM on GPU 0 against %lld-byte "
               "all-reduces over %d GPUs\n",
               static_cast<long long>(dim), static_cast<long long>(ar_bytes), g);

  NcclComms comms(g);
  const std::vector<DeviceArray> ar_buffers = zeroed_buffers(comm_lanes, ar_bytes);
  DeviceArray a(compute.device, dim * dim * 2), b(compute.device, dim * dim * 2),
      c(compute.device, dim * dim * 2);
  fill_uniform<bf16>(a, -1.0f, 1.0f, 15, compute.stream);
  fill_uniform<bf16>(b, -1.0f, 1.0f, 16, compute.stream);
  auto gemm = [&] {
    ctx.activate();
    issue_gemm(ctx.gemm(), Layout::kFwd, dim, dim, dim, a, b, c);
  };
  auto all_reduce = [&] {
    issue_collective(Collective::kAllReduce, comms, ar_buffers, comm_lanes, ar_bytes);
  };

  const double gemm_alone = harness.measure(gemm_range("fwd", dim, dim, dim), {compute}, gemm);
  const double ar_alone =
      harness.measure(collective_range(collective_name(Collective::kAllReduce), g, ar_bytes),
                      comm_lanes, all_reduce);
  const double wanted = std::ceil(2.0 * gemm_alone / std::max(ar_alone, 1e-9));
  const int per_rep = static_cast<int>(std::clamp(wanted, 1.0, double{kMaxInterferenceAllReduces}));

  // Each repetition: the GEMM and `per_rep` all-reduces start together (the communication stream
  // waits for `go` on the compute stream); the next repetition starts when both are done (the
  // compute stream waits for `done`, before the repetition's start event).
  SyncEvent go(compute.device), done(compute.device);
  std::vector<Lane> involved = comm_lanes;
  involved.push_back(compute);
  harness.measure({interference_range(dim, dim, dim),
                   {compute},
                   involved,
                   [&] {
                     CUDA_CHECK(cudaSetDevice(compute.device));
                     CUDA_CHECK(cudaStreamWaitEvent(compute.stream, done.get(), 0));
                   },
                   [&] {
                     CUDA_CHECK(cudaSetDevice(compute.device));
                     CUDA_CHECK(cudaEventRecord(go.get(), compute.stream));
                     CUDA_CHECK(cudaStreamWaitEvent(comm.stream, go.get(), 0));
                     for (int i = 0; i < per_rep; ++i) all_reduce();
                     CUDA_CHECK(cudaSetDevice(comm.device));
                     CUDA_CHECK(cudaEventRecord(done.get(), comm.stream));
                     gemm();
                   },
                   ",\"allreduce_bytes\":" + std::to_string(ar_bytes) + ",\"allreduce_g\":" +
                       std::to_string(g) + ",\"allreduces_per_rep\":" + std::to_string(per_rep)});
}

// ---- the point list -----------------------------------------------------------------------------
// The --points collectives by group: one communicator set and one buffer per GPU (the largest
// size that fits) for each group size. A group larger than the GPUs used, a send not between 2
// GPUs, and sizes that do not fit are skipped; a size that is not whole bf16 elements in equal
// shares is rounded down as the grid's are (collective_bytes); each is printed.
void measure_collective_points(const std::vector<std::tuple<std::string, int, int64_t>>& points,
                               const GpuStreams& streams, Harness& harness) {
  std::map<int, std::set<std::pair<Collective, int64_t>>> by_group;
  for (const auto& [op, g, requested] : points) {
    Collective c = Collective::kAllReduce;
    for (const Collective each : {Collective::kAllReduce, Collective::kAllGather,
                                  Collective::kReduceScatter, Collective::kSend}) {
      if (collective_name(each) == op) c = each;
    }
    const std::string requested_range = collective_range(op, g, requested);
    if (g < 2 || g > streams.size() || (c == Collective::kSend && g != 2)) {
      std::fprintf(
          stderr, "calibration_bench: skipped %s: %s\n", requested_range.c_str(),
          c == Collective::kSend && g != 2
              ? "sends are measured between 2 GPUs"
              : ("needs a group of 2 to " + std::to_string(streams.size()) + " GPUs").c_str());
      continue;
    }
    const int64_t bytes = collective_bytes(requested, g);
    if (bytes != requested) {
      std::fprintf(stderr,
                   "calibration_bench: %s rounded to %lld bytes (whole bf16 elements, equal "
                   "shares over the group)\n",
                   requested_range.c_str(), static_cast<long long>(bytes));
    }
    if (!harness.measured(collective_range(op, g, bytes))) by_group[g].insert({c, bytes});
  }
  for (auto& [g, wanted] : by_group) {
    int64_t largest = 0;
    while (!wanted.empty()) {
      largest = 0;
      for (const auto& point : wanted) largest = std::max(largest, point.second);
      if (fits(0, largest,
               "point-list collectives of " + std::to_string(g) + " GPUs of " +
                   std::to_string(largest) + " bytes")) {
        break;
      }
      std::erase_if(wanted, [&](const auto& point) { return point.second == largest; });
    }
    std::fprintf(stderr,
                 "calibration_bench: collectives: group of %d GPUs, %zu point-list "
                 "sizes\n",
                 g, wanted.size());
    if (wanted.empty()) continue;
    const std::vector<Lane> lanes = streams.comm_lanes(g);
    NcclComms comms(g);
    const std::vector<DeviceArray> buffers = zeroed_buffers(lanes, largest);
    for (const auto& [c, bytes] : wanted) {
      harness.measure(
          collective_range(collective_name(c), g, bytes), lanes,
          [&, c = c, bytes = bytes] { issue_collective(c, comms, buffers, lanes, bytes); },
          std::string(kListedJson));
    }
  }
}

// The --points measurements after the grids, each under its grid name; names measured already
// (on a grid) are not measured again.
void run_points(const Options& o, const GpuStreams& streams, GemmContext& ctx, Harness& harness) {
  const PointList& list = o.point_list;
  std::fprintf(stderr,
               "calibration_bench: points: %zu GEMMs, %zu attention shapes, %zu collectives from "
               "%s\n",
               list.gemm.size(), list.attention.size(), list.collective.size(), o.points.c_str());
  std::vector<GemmShape> shapes;
  for (const auto& [layout, mnk] : list.gemm) {
    const auto it = std::find_if(kLayouts.begin(), kLayouts.end(),
                                 [&](const auto& l) { return l.second == layout; });
    shapes.push_back({it->first, it->second, mnk[0], mnk[1], mnk[2]});
  }
  measure_gemm_shapes(std::move(shapes), "point-list", std::string(kListedJson), ctx, harness);
  std::fprintf(stderr, "calibration_bench: attention: %zu point-list shapes on GPU %d\n",
               list.attention.size(), ctx.lane().device);
  for (const auto& [shape, passes] : list.attention) {
    measure_attention_shape(shape[0], shape[1], shape[2], passes.first, passes.second,
                            std::string(kListedJson), ctx, harness);
  }
  measure_collective_points(list.collective, streams, harness);
}

int run(const Options& o) {
  int visible = 0;
  CUDA_CHECK(cudaGetDeviceCount(&visible));
  if (visible < 1) throw ExecutorError("no CUDA device visible");
  if (o.gpus > visible) {
    throw UsageError("--gpus: " + std::to_string(o.gpus) + " requested, " +
                     std::to_string(visible) + " visible");
  }
  const int gpus = o.gpus == 0 ? visible : o.gpus;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  int driver_version = 0, runtime_version = 0, nccl_version = 0;
  CUDA_CHECK(cudaDriverGetVersion(&driver_version));
  CUDA_CHECK(cudaRuntimeGetVersion(&runtime_version));
  NCCL_CHECK(ncclGetVersion(&nccl_version));
  std::array<int, 3> cublas{};  // major, minor, patch
  CUBLAS_CHECK(cublasGetProperty(MAJOR_VERSION, &cublas[0]));
  CUBLAS_CHECK(cublasGetProperty(MINOR_VERSION, &cublas[1]));
  CUBLAS_CHECK(cublasGetProperty(PATCH_LEVEL, &cublas[2]));
  const int cublas_version = 10000 * cublas[0] + 100 * cublas[1] + cublas[2];
  std::fprintf(stderr,
               "calibration_bench: %d GPU(s), GPU 0: %s; CUDA driver %d, runtime %d, cuBLAS %d, "
               "NCCL %d; %d repetitions per measurement%s\n",
               gpus, prop.name, driver_version, runtime_version, cublas_version, nccl_version,
               o.reps, o.quick ? " (quick)" : "");
  // The versions, once, in a range of their own without kernels (the file comment's meta;
  // pushed as the measurements' ranges are, its payload 0 repetitions).
  {
    CalibrationRange meta(meta_range(driver_version, runtime_version, cublas_version, nccl_version),
                          0);
  }

  const auto start = std::chrono::steady_clock::now();
  GpuStreams streams(gpus);
  GemmContext ctx(streams.compute(0));
  Harness harness(o.reps);
  if (o.runs(Section::kGemm)) run_gemms(o, ctx, harness);
  if (o.runs(Section::kAttention)) run_attention(o, ctx, harness);
  if (o.runs(Section::kMemory)) run_memory(o, ctx.lane(), harness);
  if (o.runs(Section::kLoss)) run_loss(o, ctx.lane(), harness);
  if (o.runs(Section::kSoftmax)) run_softmax(o, ctx.lane(), harness);
  if (o.runs(Section::kCollectives)) run_collectives(o, streams, harness);
  if (o.runs(Section::kInterference)) run_interference(o, streams, ctx, harness);
  if (!o.points.empty()) run_points(o, streams, ctx, harness);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "calibration_bench: %d measurements in %.1f s\n", harness.count(), seconds);
  return 0;
}

}  // namespace
}  // namespace mpsim::calibration

int main(int argc, char** argv) {
  namespace calib = mpsim::calibration;
  if (calib::wants_help(argc, argv)) {
    calib::print_help();
    return 0;
  }
  try {
    const calib::Options options = calib::parse_options(argc, argv);
    // The GPU machines need NVLink multicast (NVLS) off; a value the user set wins.
    setenv("NCCL_NVLS_ENABLE", "0", 0);
    return calib::run(options);
  } catch (const calib::UsageError& e) {
    std::fprintf(stderr, "calibration_bench: %s (see --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "calibration_bench: %s\n", e.what());
    return 1;
  }
}
