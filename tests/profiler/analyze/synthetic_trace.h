// A hand-built profiled run shared by the analysis tests. Every number the tests expect is
// derived by hand from the timeline below (times in ns), not from the code under test.
//
// Rank 0 (pid 100), GPU 0, host thread 7 launches; thread 9 only holds an NVTX range.
//   launch (API start)     activity                               stream  interval
//   corr 1 @1000           gemm                                   7       [2000, 3000)
//   corr 2 @1100           gemm                                   7       [3000, 5000)
//   corr 3 @1200           ncclDevKernel_AllReduce_Sum_f32_RING_LL 13     [4000, 7000)
//   corr 4 @1300           softmax                                7       [8000, 8500)
//   corr 5 @1400           memcpy HtoD 1024 B                     7       [9000, 9500)
//   corr 6 @1500           gemm                                   7       [10000, 10300)
//   corr 7 @1600           memset 64 B                            13      [7000, 7200)
//   corr 8 @1700           softmax                                7       [11000, 11100)
// NVTX on thread 7: "step" [900, 1650) holds "forward" [950, 1250), which holds "attn"
//   [1050, 1150); a second "attn" [1450, 1550); a mark "checkpoint" at 1320.
// NVTX on thread 9: "other" [1000, 2000) (domain "app"), which launches nothing.
#pragma once

#include <string>

#include "profiler/store/trace_store.h"

namespace mpsim::profiler::testing {

inline const std::string kNccl = "ncclDevKernel_AllReduce_Sum_f32_RING_LL";

inline KernelRecord kernel(const std::string& name, uint32_t stream, uint32_t correlation,
                           int64_t start, int64_t end, uint32_t device = 0) {
  KernelRecord k;
  k.start = start;
  k.end = end;
  k.device_id = device;
  k.stream_id = stream;
  k.correlation_id = correlation;
  k.mangled_name = k.demangled_name = name;
  k.grid_x = 128, k.grid_y = 2, k.grid_z = 1;
  k.block_x = 256, k.block_y = 1, k.block_z = 1;
  k.registers_per_thread = 64;
  k.static_shared_bytes = 1024, k.dynamic_shared_bytes = 3072;
  return k;
}

inline ApiRecord launch(uint32_t correlation, int64_t start, uint64_t thread = 7,
                        const std::string& name = "cudaLaunchKernel") {
  ApiRecord a;
  a.start = start;
  a.end = start + 10;
  a.thread_id = thread;
  a.correlation_id = correlation;
  a.name = name;
  return a;
}

inline NvtxRecord range(const std::string& text, int64_t start, int64_t end, uint64_t thread = 7,
                        const std::string& domain = "") {
  NvtxRecord r;
  r.start = start;
  r.end = end;
  r.event_type = 59;
  r.thread_id = thread;
  r.text = text;
  r.domain = domain;
  return r;
}

inline RankTrace rank0() {
  RankTrace t;
  t.process.rank = 0;
  t.process.world_size = 2;
  t.process.pid = 100;
  t.process.hostname = "node0";
  t.process.start_ns = 900;
  t.process.end_ns = 12000;
  RecordBatch& b = t.records;
  b.kernels = {kernel("gemm", 7, 1, 2000, 3000),   kernel("gemm", 7, 2, 3000, 5000),
               kernel(kNccl, 13, 3, 4000, 7000),   kernel("softmax", 7, 4, 8000, 8500),
               kernel("gemm", 7, 6, 10000, 10300), kernel("softmax", 7, 8, 11000, 11100)};
  MemcpyRecord copy;
  copy.start = 9000, copy.end = 9500, copy.stream_id = 7, copy.correlation_id = 5;
  copy.bytes = 1024, copy.copy_kind = 1, copy.src_kind = 1, copy.dst_kind = 3;
  b.memcpys = {copy};
  MemsetRecord set;
  set.start = 7000, set.end = 7200, set.stream_id = 13, set.correlation_id = 7, set.bytes = 64;
  b.memsets = {set};
  b.api_calls = {launch(1, 1000),
                 launch(2, 1100),
                 launch(3, 1200),
                 launch(4, 1300),
                 launch(5, 1400, 7, "cudaMemcpyAsync"),
                 launch(6, 1500),
                 launch(7, 1600, 7, "cudaMemsetAsync"),
                 launch(8, 1700)};
  NvtxRecord mark;
  mark.start = 1320, mark.end = -1, mark.event_type = 34, mark.thread_id = 7;
  mark.text = "checkpoint";
  b.nvtx = {range("step", 900, 1650),
            range("forward", 950, 1250),
            range("attn", 1050, 1150),
            range("attn", 1450, 1550),
            mark,
            range("other", 1000, 2000, 9, "app")};
  GpuInfo gpu;
  gpu.device_id = 0, gpu.name = "NVIDIA H100 80GB HBM3", gpu.total_memory_bytes = 85'000'000'000;
  gpu.sm_count = 132, gpu.compute_major = 9, gpu.compute_minor = 0;
  b.gpus = {gpu};
  return t;
}

// Rank 1 (pid 200) on GPU 1 of the same host: one gemm [5000, 6000) on stream 7, launched at
// 4000 with correlation id 1, the same id as a launch of rank 0.
inline RankTrace rank1() {
  RankTrace t;
  t.process.rank = 1;
  t.process.world_size = 2;
  t.process.pid = 200;
  t.records.kernels = {kernel("gemm", 7, 1, 5000, 6000, 1)};
  t.records.api_calls = {launch(1, 4000, 11)};
  GpuInfo gpu;
  gpu.device_id = 1, gpu.name = "NVIDIA H100 80GB HBM3", gpu.sm_count = 132;
  t.records.gpus = {gpu};
  return t;
}

}  // namespace mpsim::profiler::testing
