// Reading calibration measurements from trace databases; definitions in
// calibration_measurements.h.
#include "calibration/fit/calibration_measurements.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "profiler/analyze/issue_slots.h"
#include "profiler/analyze/nvtx_projection.h"
#include "profiler/store/trace_store.h"

namespace mpsim::calibration {
namespace {

const std::string& kernel_name(const profiler::KernelRecord& k) {
  return k.demangled_name.empty() ? k.mangled_name : k.demangled_name;
}

// Per-GPU kernel nanoseconds of one range instance, by part.
struct GpuSums {
  int64_t all = 0, compute = 0, nccl = 0, norm_forward = 0, norm_backward = 0;
  int64_t nccl_kernels = 0;
};

// "13.0" from 13000 (CUDA's 1000 major + 10 minor).
std::string cuda_version(int64_t v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}
// "a.b.c" from `scale` a + 100 b + c.
std::string dotted_version(int64_t v, int64_t scale) {
  return std::to_string(v / scale) + "." + std::to_string(v % scale / 100) + "." +
         std::to_string(v % 100);
}

// The meta range's (or mark's) versions into `versions`; a second, different set is noted.
void add_versions(const CalibrationRange& range, const std::string& path, int32_t rank,
                  std::optional<SoftwareVersions>& versions, std::vector<std::string>& notes) {
  const std::vector<int64_t>& k = range.keys;
  const SoftwareVersions found{k[0], k[1], k[2], k[3]};
  if (!versions) {
    versions = found;
  } else if (!(*versions == found)) {
    notes.push_back(path + ": rank " + std::to_string(rank) + " recorded " + found.text() +
                    ", another rank " + versions->text() + "; the latter is kept");
  }
}

// Adds the rank's calibration ranges to `by_text` and its versions to `versions`; returns how
// many measurement ranges there were.
int64_t add_rank(const profiler::RankTrace& rank, int64_t database, const std::string& path,
                 std::map<std::string, CalibrationMeasurement>& by_text,
                 std::optional<SoftwareVersions>& versions, std::vector<std::string>& notes) {
  const profiler::RecordBatch& records = rank.records;
  int64_t found = 0;
  const std::vector<std::vector<std::size_t>> kernels =
      profiler::project_kernels_to_ranges(records);
  const std::string meta_prefix =
      std::string(kCalibrationRangePrefix) + std::string(kMetaMeasurement) + "/";
  for (std::size_t i = 0; i < records.nvtx.size(); ++i) {
    const profiler::NvtxRecord& nvtx = records.nvtx[i];
    if (!nvtx.text.starts_with(kCalibrationRangePrefix)) continue;
    // The meta record may be a range or a mark; measurements are ranges.
    if (!profiler::is_nvtx_range(nvtx) && !nvtx.text.starts_with(meta_prefix)) continue;
    std::optional<CalibrationRange> range;
    try {
      range = parse_calibration_range(nvtx.text);
    } catch (const std::invalid_argument& e) {
      throw CalibrationError(path + ": " + e.what());
    }
    if (range->kind == MeasurementKind::kMeta) {
      add_versions(*range, path, rank.process.rank, versions, notes);
      continue;
    }
    ++found;
    int64_t reps = kDefaultRepetitions;
    if (nvtx.has_int_payload && nvtx.int_payload > 0) {
      reps = nvtx.int_payload;
    } else {
      notes.push_back(path + ": range " + nvtx.text + " has no repetition count payload; counted " +
                      std::to_string(kDefaultRepetitions) + " repetitions");
    }
    std::map<uint32_t, GpuSums> gpus;
    const std::vector<int64_t> gaps = profiler::launch_gaps(records.kernels, kernels[i]);
    for (std::size_t j = 0; j < kernels[i].size(); ++j) {
      const profiler::KernelRecord& kernel = records.kernels[kernels[i][j]];
      const std::string& name = kernel_name(kernel);
      const int64_t ns = kernel.end - kernel.start + gaps[j];
      GpuSums& sums = gpus[kernel.device_id];
      sums.all += ns;
      if (profiler::is_nccl_kernel(name)) {
        sums.nccl += ns;
        ++sums.nccl_kernels;
      } else {
        sums.compute += ns;
      }
      if (name.find("norm_forward") != std::string::npos) sums.norm_forward += ns;
      if (name.find("norm_backward") != std::string::npos) sums.norm_backward += ns;
    }
    GpuSums part;  // compute parts: the largest GPU; NCCL: the smallest GPU with NCCL kernels
    bool any_nccl = false;
    for (const auto& [device, sums] : gpus) {
      part.all = std::max(part.all, sums.all);
      part.compute = std::max(part.compute, sums.compute);
      part.norm_forward = std::max(part.norm_forward, sums.norm_forward);
      part.norm_backward = std::max(part.norm_backward, sums.norm_backward);
      part.nccl_kernels = std::max(part.nccl_kernels, sums.nccl_kernels);
      if (sums.nccl_kernels > 0) {
        part.nccl = any_nccl ? std::min(part.nccl, sums.nccl) : sums.nccl;
        any_nccl = true;
      }
    }
    const double per_rep = 1e-9 / static_cast<double>(reps);
    RangeInstance instance;
    instance.database = database;
    instance.rank = rank.process.rank;
    instance.start_ns = nvtx.start;
    instance.repetitions = reps;
    instance.seconds.all = static_cast<double>(part.all) * per_rep;
    instance.seconds.compute = static_cast<double>(part.compute) * per_rep;
    instance.seconds.nccl = static_cast<double>(part.nccl) * per_rep;
    instance.seconds.norm_forward = static_cast<double>(part.norm_forward) * per_rep;
    instance.seconds.norm_backward = static_cast<double>(part.norm_backward) * per_rep;
    instance.nccl_kernels_per_repetition =
        static_cast<double>(part.nccl_kernels) / static_cast<double>(reps);
    auto [it, inserted] = by_text.try_emplace(nvtx.text);
    CalibrationMeasurement& m = it->second;
    if (inserted) {
      m.text = nvtx.text;
      m.range = *range;
      m.database = database;
    }
    m.instances.push_back(instance);
  }
  return found;
}

}  // namespace

std::string SoftwareVersions::text() const {
  return "CUDA driver " + cuda_version(driver) + ", CUDA runtime " + cuda_version(runtime) +
         ", cuBLAS " + dotted_version(cublas, 10000) + ", NCCL " +
         dotted_version(nccl, nccl >= 10000 ? 10000 : 1000);
}

std::string versions_text(const std::optional<SoftwareVersions>& versions) {
  return versions ? versions->text() : "software versions unknown (not recorded)";
}

std::string CalibrationSource::gpu_summary() const { return profiler::gpu_summary(gpus); }

CalibrationData read_calibration_data(const std::vector<std::string>& databases) {
  CalibrationData data;
  std::map<std::string, CalibrationMeasurement> by_text;
  for (std::size_t d = 0; d < databases.size(); ++d) {
    const std::string& path = databases[d];
    std::vector<profiler::RankTrace> ranks;
    try {
      ranks = profiler::TraceReader(path).read_all();
    } catch (const profiler::StoreError& e) {
      throw CalibrationError(e.what());
    }
    CalibrationSource source;
    source.path = path;
    for (const profiler::RankTrace& rank : ranks) {
      if (source.command.empty()) {
        source.command = rank.process.command;
        source.hostname = rank.process.hostname;
        source.date = recording_date(rank.process);
      }
      source.gpus.insert(source.gpus.end(), rank.records.gpus.begin(), rank.records.gpus.end());
    }
    int64_t found = 0;
    for (const profiler::RankTrace& rank : ranks) {
      found += add_rank(rank, static_cast<int64_t>(d), path, by_text, source.versions, data.notes);
    }
    if (found == 0) {
      throw CalibrationError(path + ": no calibration ranges (NVTX ranges named '" +
                             std::string(kCalibrationRangePrefix) +
                             "...'); expected a database recorded by `mpsim profile -- "
                             "calibration_bench`");
    }
    data.sources.push_back(std::move(source));
  }
  // Instances averaged weighted by their repetitions: total time over total repetitions.
  for (auto& [text, m] : by_text) {
    std::stable_sort(m.instances.begin(), m.instances.end(),
                     [](const RangeInstance& a, const RangeInstance& b) {
                       return std::tie(a.database, a.rank, a.start_ns) <
                              std::tie(b.database, b.rank, b.start_ns);
                     });
    PartTimes total;
    for (const RangeInstance& i : m.instances) {
      const double reps = static_cast<double>(i.repetitions);
      m.repetitions += i.repetitions;
      total.all += i.seconds.all * reps;
      total.compute += i.seconds.compute * reps;
      total.nccl += i.seconds.nccl * reps;
      total.norm_forward += i.seconds.norm_forward * reps;
      total.norm_backward += i.seconds.norm_backward * reps;
    }
    const double reps = static_cast<double>(m.repetitions);
    m.seconds.all = total.all / reps;
    m.seconds.compute = total.compute / reps;
    m.seconds.nccl = total.nccl / reps;
    m.seconds.norm_forward = total.norm_forward / reps;
    m.seconds.norm_backward = total.norm_backward / reps;
    data.measurements.push_back(std::move(m));
  }
  return data;
}

}  // namespace mpsim::calibration
