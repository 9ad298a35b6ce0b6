// Calibration measurements read from profiled runs of calibration_bench: every `calib/...` NVTX
// range of the given databases (calibration_range.h), with the GPU time of the kernels projected
// onto it by the one NVTX -> kernel projection (profiler/analyze/nvtx_projection.h: launched
// inside the range, on its thread), per repetition.
//
// Definitions (one range instance; the bench runs `reps` repetitions inside each range):
//   reps            the range's NVTX int64 payload (the bench records its --reps there); a range
//                   without one counts kDefaultRepetitions (the bench's default) and is noted.
//   issue slot      of one kernel: its duration plus the launch gap before it
//                   (profiler/analyze/issue_slots.h, over the range's kernels): the tables hold
//                   what an op occupies its stream for, not bare kernel time.
//   time of a part  per GPU (device of the rank): the summed issue slots of that GPU's kernels of
//                   the part, divided by reps; then over the GPUs that ran kernels of the part:
//                   - compute parts (every part but NCCL): the largest (compute measurements
//                     launch on one GPU anyway);
//                   - NCCL: the smallest. A collective's kernels on the GPUs of its group end
//                     together; the GPU whose kernel started last waited for no peer, while the
//                     others' kernels also hold the wait for it (the bench launches every GPU's
//                     kernel from one thread, about 9 us apart on the 2 x H200 machine). The
//                     simulator prices that wait apart (a collective starts when its last
//                     member is ready), so the collective's own time is the shortest.
//   parts           all kernels; NCCL kernels (is_nccl_kernel); the other ("compute") kernels;
//                   kernels whose name holds "norm_forward" / "norm_backward" (the executor's
//                   LayerNorm kernels, split so that the forward and the backward get their own
//                   points).
// A range measured several times (the bench measures the interference GEMM and its all-reduce
// again under their normal names) is one measurement: its instances' times are averaged
// weighted by their repetitions (total kernel time over total repetitions).
//
// Software versions: the bench's `calib/meta/driver=D,runtime=R,cublas=C,nccl=N` range (or an
// NVTX mark of that name), which holds no kernels, gives the database's versions; a database
// without one (recorded before the bench wrote it) has unknown versions. Where ranks disagree
// the first rank's are kept and the disagreement is noted.
//
// Failure: throws CalibrationError naming the database for a database that cannot be read (the
// store's message), that holds no `calib/` measurement range (the meta range alone does not
// count), or a range that breaks the grammar.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "calibration/calibration_range.h"
#include "profiler/analyze/issue_slots.h"
#include "profiler/store/trace_records.h"

namespace mpsim::calibration {

class CalibrationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr int64_t kDefaultRepetitions = 5;  // calibration_bench's --reps default

// Seconds per repetition of each part (see the file comment); 0 for a part without kernels.
struct PartTimes {
  double all = 0;
  double compute = 0;
  double nccl = 0;
  double norm_forward = 0;
  double norm_backward = 0;
};

// One occurrence of a range.
struct RangeInstance {
  int64_t database = 0;  // index into the databases given
  int32_t rank = 0;
  int64_t start_ns = 0;  // the range's start, on its rank's clock
  int64_t repetitions = 0;
  PartTimes seconds;                       // per repetition
  double nccl_kernels_per_repetition = 0;  // on the GPU with the most
};

struct CalibrationMeasurement {
  std::string text;  // the range name
  CalibrationRange range;
  std::vector<RangeInstance> instances;  // in database, rank and time order
  int64_t repetitions = 0;               // over all instances
  PartTimes seconds;                     // per repetition, over all instances (file comment)
  int64_t database = 0;                  // index of the first database holding it
};

// The versions of the software a database was recorded with, as the libraries report them:
// CUDA driver and runtime as 1000 major + 10 minor (13000 = 13.0), cuBLAS as 10000 major +
// 100 minor + patch (130100 = 13.1.0), NCCL as NCCL_VERSION_CODE (22803 = 2.28.3; before 2.9:
// 1000 major + 100 minor + patch).
struct SoftwareVersions {
  int64_t driver = 0, runtime = 0, cublas = 0, nccl = 0;
  bool operator==(const SoftwareVersions&) const = default;
  // "CUDA driver 13.0, CUDA runtime 13.0, cuBLAS 13.1.0, NCCL 2.28.3"
  std::string text() const;
};

// "CUDA driver 13.0, ..." or, without versions, "software versions unknown (not recorded)".
std::string versions_text(const std::optional<SoftwareVersions>& versions);

// What a database says about where it was recorded.
struct CalibrationSource {
  std::string path;     // as given
  std::string command;  // the profiled command line (RANKS.command)
  std::string hostname;
  std::string date;                          // UTC date of the profiling start, "YYYY-MM-DD"
  std::vector<profiler::GpuInfo> gpus;       // TARGET_INFO_GPU rows of every rank
  std::optional<SoftwareVersions> versions;  // from the calib/meta range; none: unknown
  // "2 x NVIDIA H200": GPU names with their counts, in device order.
  std::string gpu_summary() const;
};

struct CalibrationData {
  std::vector<CalibrationSource> sources;            // one per database, in the given order
  std::vector<CalibrationMeasurement> measurements;  // sorted by range name
  std::vector<std::string> notes;                    // ranges without a repetition payload, ...
};

CalibrationData read_calibration_data(const std::vector<std::string>& databases);

}  // namespace mpsim::calibration
