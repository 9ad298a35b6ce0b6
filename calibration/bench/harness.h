// calibration_bench's measurement harness and the interface every family of measurements fills
// (as nccl-tests gives each collective one file filling one table entry over a shared harness).
//
// Protocol of every measurement: 2 warm-up repetitions outside the range, all involved streams
// synchronised; every involved stream is held by a 1 ms kernel (outside the range) so that the
// repetitions queue up behind it and then run back to back with only the GPU's own launch gaps
// between them, as a training step's kernels run with the host ahead. The calibration counts
// "issue slots": a kernel's time plus the launch gap before it (profiler/analyze/issue_slots.h).
// Then the range is pushed (its NVTX int64 payload = the number of repetitions), `--reps`
// repetitions are issued back-to-back, the streams are synchronised and the range is popped.
// Per-repetition GPU time = the range's issue slots (per GPU) / repetitions. One cudaEvent pair
// brackets all repetitions on every timed stream (events between repetitions would add GPU-side
// gaps a training step does not have); the printed mean is the slowest GPU's elapsed time /
// repetitions, a host-side check. One JSON line per measurement on stdout:
//   {"range":"calib/gemm.bf16/fwd/m=1024,n=768,k=768","reps":5,"mean_s":1.2e-05}
// (a family may add fields: the point list's "listed":true, the interference's all-reduces).
// Progress and skipped measurements go to stderr.
//
// Failure: CUDA and NCCL failures throw executor::ExecutorError from the harness and the families.
#pragma once

#include <nvtx3/nvToolsExt.h>

#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "calibration/bench/bench_device.h"
#include "calibration/bench/bench_options.h"
#include "calibration/calibration_range.h"

namespace mpsim::calibration::bench {

// The range-name formatters (calibration/calibration_range.h), by their short names.
using calibration::attention_range_name;
using calibration::collective_range_name;
using calibration::flash_attention_range_name;
using calibration::fp8_gemm_range_name;
using calibration::gemm_range_name;
using calibration::interference_range_name;
using calibration::loss_backward_bytes;
using calibration::loss_forward_bytes;
using calibration::loss_range_name;
using calibration::memory_range_name;
using calibration::meta_range_name;

// The JSON field marking a measurement of the --points list.
constexpr std::string_view kListedJson = ",\"listed\":true";

// Waits for every lane's stream.
void synchronize(const std::vector<Lane>& lanes);

// An NVTX push/pop range on this thread whose int64 payload is the number of repetitions.
class MeasurementRange {
 public:
  MeasurementRange(const std::string& name, int reps) {
    nvtxEventAttributes_t a{};
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = name.c_str();
    a.payloadType = NVTX_PAYLOAD_TYPE_INT64;
    a.payload.llValue = reps;
    nvtxRangePushEx(&a);
  }
  MeasurementRange(const MeasurementRange&) = delete;
  MeasurementRange& operator=(const MeasurementRange&) = delete;
  ~MeasurementRange() { nvtxRangePop(); }
};

struct Measurement {
  std::string range;
  std::vector<Lane> timed;           // a cudaEvent pair brackets each repetition on each
  std::vector<Lane> involved;        // every stream the work touches; empty: the timed ones
  std::function<void()> prepare;     // before each repetition (inside the range); may be empty
  std::function<void()> repetition;  // issues one repetition (asynchronously)
  std::string extra_json;            // more fields for the JSON line: ",\"key\":value"
};

// Runs measurements under the protocol above, counts them and remembers their names.
class Harness {
 public:
  explicit Harness(int reps) : reps_(reps) {}

  // Runs the protocol; prints the JSON line; returns the mean seconds per repetition.
  double measure(const Measurement& m);
  // The common case: `repetition` timed on `timed`, which are all the streams it touches.
  double measure(std::string range, std::vector<Lane> timed, std::function<void()> repetition,
                 std::string extra_json = "");
  int count() const { return count_; }
  // Whether a range of this name was measured already (the point list skips it).
  bool measured(const std::string& range) const { return measured_.contains(range); }

 private:
  int reps_;
  int count_ = 0;
  std::set<std::string> measured_;
};

// What every family gets: the options, the GPUs' streams, GPU 0's GEMM context and the harness.
struct BenchContext {
  const Options& options;
  const GpuStreams& streams;
  GemmContext& gemm;
  Harness& harness;
};

// One family of measurements: the --only section that runs it (none for the point list, which
// runs when --points is given) and its entry point. Each family's file defines one.
struct BenchFamily {
  std::string_view name;
  void (*run)(BenchContext& context);
};

extern const BenchFamily kGemmFamily;          // gemm_bench.cu
extern const BenchFamily kAttentionFamily;     // attention_bench.cu
extern const BenchFamily kMemoryFamily;        // memory_bench.cu
extern const BenchFamily kLossFamily;          // loss_bench.cu
extern const BenchFamily kSoftmaxFamily;       // softmax_bench.cu
extern const BenchFamily kCollectivesFamily;   // collective_bench.cu
extern const BenchFamily kInterferenceFamily;  // interference_bench.cu
extern const BenchFamily kPointsFamily;        // points_bench.cu (exact points)

}  // namespace mpsim::calibration::bench
