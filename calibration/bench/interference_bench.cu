// The interference family: calib/interference/gemm.bf16/m=M,n=N,k=K, M = N = K =
// --interference-dim (needs 2 GPUs).
//
// The fwd GEMM M x N x K on GPU 0's compute stream while GPU 0's
//   communication stream runs back-to-back 256 MiB bf16 all-reduces over the largest
//   power-of-two group of GPUs; the all-reduces start with each GEMM and last at least twice its
//   alone time (their count per repetition is printed). The same GEMM alone is measured right
//   before under its normal gemm.bf16/fwd name, and the 256 MiB all-reduce alone under its
//   allreduce.nvlink name. The range holds the GEMM's and the all-reduces' kernels (isNccl tells
//   them apart).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "calibration/bench/collective_bench.h"
#include "calibration/bench/gemm_bench.h"

namespace mpsim::calibration::bench {

namespace {

constexpr int64_t kInterferenceAllReduceBytes = 256 * kMiB;
constexpr int kMaxInterferenceAllReduces = 64;

void run_interference(BenchContext& context) {
  const Options& o = context.options;
  const GpuStreams& streams = context.streams;
  GemmContext& ctx = context.gemm;
  Harness& harness = context.harness;
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

  const double gemm_alone = harness.measure(gemm_range_name("fwd", dim, dim, dim), {compute}, gemm);
  const double ar_alone =
      harness.measure(collective_range_name(collective_name(Collective::kAllReduce), g, ar_bytes),
                      comm_lanes, all_reduce);
  const double wanted = std::ceil(2.0 * gemm_alone / std::max(ar_alone, 1e-9));
  const int per_rep = static_cast<int>(std::clamp(wanted, 1.0, double{kMaxInterferenceAllReduces}));

  // Each repetition: the GEMM and `per_rep` all-reduces start together (the communication stream
  // waits for `go` on the compute stream); the next repetition starts when both are done (the
  // compute stream waits for `done`, before the repetition's start event).
  SyncEvent go(compute.device), done(compute.device);
  std::vector<Lane> involved = comm_lanes;
  involved.push_back(compute);
  harness.measure({interference_range_name(dim, dim, dim),
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

}  // namespace

const BenchFamily kInterferenceFamily = {"interference", run_interference};

}  // namespace mpsim::calibration::bench
