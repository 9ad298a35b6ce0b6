// calibration_bench: the calibration microbenchmarks. It runs the executor's own code
// paths (cuBLAS GEMMs through executor::Gemm, the attention core, the memory-bound kernels of
// executor/cuda/kernels.h with the cross-entropy and the causal softmax, NCCL collectives) on the
// local GPUs, each measurement inside one NVTX range, so that `mpsim profile -o calib.sqlite --
// calibration_bench` records the GPU time of every kernel and the calibration fit joins kernels
// to measurements by range name. The profiler's kernel times are the calibration's source; the
// host-side cudaEvent mean printed per range is a check.
//
// It is a harness (harness.h: the protocol of every measurement, its JSON line) and one file per
// family of measurements, each filling one BenchFamily entry: GEMM (gemm_bench.cu), attention
// (attention_bench.cu), memory-bound kernels (memory_bench.cu), the loss (loss_bench.cu), the
// causal softmax (softmax_bench.cu), collectives (collective_bench.cu), compute-communication
// interference (interference_bench.cu) and the exact points of a --points list (points_bench.cu).
// Range names are formatted by calibration/calibration_range.h, whose grammar the fit parses;
// each family's file says what its keys mean. The flags are in bench_options.h (`--help`).
//
// Besides the measurements, one range names the software versions:
//   calib/meta/...: no measurement, a push/pop range without kernels, opened once before the first
//   measurement, naming the software the run used as the libraries report their versions:
//   D = cudaDriverGetVersion, R = cudaRuntimeGetVersion (1000 major + 10 minor), C = cuBLAS's
//   cublasGetProperty major, minor, patch as 10000 major + 100 minor + patch (what
//   cublasGetVersion returns), V = ncclGetVersion (NCCL_VERSION_CODE). `mpsim calibrate` writes
//   them into the profile's provenance.
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
//   up to 32768: calibration/fit/model_gemm_grid.h): 8^3 shapes x 3 layouts = 1536
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
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#include "calibration/bench/harness.h"

namespace mpsim::calibration::bench {

namespace {

// The families of the --only sections, in the order they run (the point list runs last).
const std::array<std::pair<Section, const BenchFamily*>, 7> kFamilies = {{
    {Section::kGemm, &kGemmFamily},
    {Section::kAttention, &kAttentionFamily},
    {Section::kMemory, &kMemoryFamily},
    {Section::kLoss, &kLossFamily},
    {Section::kSoftmax, &kSoftmaxFamily},
    {Section::kCollectives, &kCollectivesFamily},
    {Section::kInterference, &kInterferenceFamily},
}};

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
  // The versions, once, in a range of their own without kernels (main.cu's top comment;
  // pushed as the measurements' ranges are, its payload 0 repetitions).
  {
    MeasurementRange meta(
        meta_range_name(driver_version, runtime_version, cublas_version, nccl_version), 0);
  }

  const auto start = std::chrono::steady_clock::now();
  GpuStreams streams(gpus);
  GemmContext ctx(streams.compute(0));
  Harness harness(o.reps);
  BenchContext context{o, streams, ctx, harness};
  for (const auto& [section, family] : kFamilies)
    if (o.runs(section)) family->run(context);
  if (!o.points.empty()) kPointsFamily.run(context);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "calibration_bench: %d measurements in %.1f s\n", harness.count(), seconds);
  return 0;
}

}  // namespace
}  // namespace mpsim::calibration::bench

int main(int argc, char** argv) {
  namespace calib = mpsim::calibration::bench;
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
