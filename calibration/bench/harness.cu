// calibration_bench's harness; the protocol is in harness.h.
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "calibration/bench/harness.h"

namespace mpsim::calibration::bench {

namespace {

constexpr int kWarmups = 2;

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

}  // namespace

void synchronize(const std::vector<Lane>& lanes) {
  for (const Lane& l : lanes) {
    CUDA_CHECK(cudaSetDevice(l.device));
    CUDA_CHECK(cudaStreamSynchronize(l.stream));
  }
}

double Harness::measure(const Measurement& m) {
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
    MeasurementRange range(m.range, reps_);
    events.record(0, false);
    for (int r = 0; r < reps_; ++r) {
      if (m.prepare) m.prepare();
      m.repetition();
    }
    events.record(0, true);
    synchronize(involved);
  }
  const double result = events.seconds(0) / reps_;
  std::printf("{\"range\":\"%s\",\"reps\":%d,\"mean_s\":%.6e%s}\n", m.range.c_str(), reps_, result,
              m.extra_json.c_str());
  std::fflush(stdout);
  ++count_;
  measured_.insert(m.range);
  return result;
}

double Harness::measure(std::string range, std::vector<Lane> timed,
                        std::function<void()> repetition, std::string extra_json) {
  Measurement m;
  m.range = std::move(range);
  m.timed = std::move(timed);
  m.repetition = std::move(repetition);
  m.extra_json = std::move(extra_json);
  return measure(m);
}

}  // namespace mpsim::calibration::bench
