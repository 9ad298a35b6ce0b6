// Summaries of a profiled run; the metrics are defined in trace_stats.h.
#include "profiler/analyze/trace_stats.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include "common/intervals.h"
#include "common/median.h"
#include "common/text.h"
#include "profiler/analyze/nvtx_projection.h"

namespace mpsim::profiler {
namespace {

// A half-open time interval [start, end) in ns.
using Interval = common::BasicInterval<int64_t>;

// The name a kernel is summarised under: demangled when the driver gave one.
const std::string& kernel_name(const KernelRecord& k) {
  return k.demangled_name.empty() ? k.mangled_name : k.demangled_name;
}

// Length of the union of `intervals` clipped to [lo, hi).
int64_t covered_ns(const std::vector<Interval>& intervals, int64_t lo, int64_t hi) {
  return common::total_length(common::merged(common::clipped(intervals, lo, hi)));
}

// ---- kernel summary ----

std::vector<KernelSummaryRow> kernel_summary(const std::vector<RankTrace>& ranks) {
  std::map<std::string, std::vector<int64_t>> durations;  // by name
  int64_t all_ns = 0;
  for (const RankTrace& rank : ranks) {
    for (const KernelRecord& k : rank.records.kernels) {
      durations[kernel_name(k)].push_back(k.end - k.start);
      all_ns += k.end - k.start;
    }
  }
  std::vector<KernelSummaryRow> rows;
  for (const auto& [name, sample] : durations) {
    KernelSummaryRow row;
    row.name = name;
    row.instances = static_cast<int64_t>(sample.size());
    for (int64_t d : sample) row.total_ns += d;
    row.min_ns = *std::min_element(sample.begin(), sample.end());
    row.max_ns = *std::max_element(sample.begin(), sample.end());
    row.mean_ns = static_cast<double>(row.total_ns) / static_cast<double>(row.instances);
    row.median_ns = common::median(std::vector<double>(sample.begin(), sample.end()));
    row.time_percent = all_ns > 0 ? 100.0 * static_cast<double>(row.total_ns) / all_ns : 0;
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.total_ns > b.total_ns;  // ties keep name order
  });
  return rows;
}

// ---- NVTX ranges (the NVTX -> kernel projection is nvtx_projection.h's) ----

using RangeKey = std::pair<std::string, std::string>;  // (domain, text)

void add_rank_ranges(const RankTrace& rank, std::map<RangeKey, NvtxSummaryRow>& rows) {
  const RecordBatch& records = rank.records;
  const std::vector<std::vector<size_t>> kernels = project_kernels_to_ranges(records);
  for (size_t i = 0; i < records.nvtx.size(); ++i) {
    const NvtxRecord& range = records.nvtx[i];
    if (!is_nvtx_range(range)) continue;
    NvtxSummaryRow& row = rows[{range.domain, range.text}];
    ++row.instances;
    row.total_ns += range.end - range.start;
    for (size_t k : kernels[i]) {
      row.gpu_time_ns += records.kernels[k].end - records.kernels[k].start;
    }
    row.kernels += static_cast<int64_t>(kernels[i].size());
    if (range.has_int_payload) row.payload_sum += range.int_payload;
  }
}

std::vector<NvtxSummaryRow> nvtx_summary(const std::vector<RankTrace>& ranks) {
  std::map<RangeKey, NvtxSummaryRow> by_key;
  for (const RankTrace& rank : ranks) add_rank_ranges(rank, by_key);
  std::vector<NvtxSummaryRow> rows;
  for (auto& [key, row] : by_key) {
    row.domain = key.first;
    row.text = key.second;
    row.mean_ns = static_cast<double>(row.total_ns) / static_cast<double>(row.instances);
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.total_ns > b.total_ns; });
  return rows;
}

// ---- communication vs computation, idle ----

struct DeviceIntervals {
  std::vector<Interval> nccl, compute, copies;  // copies: memcpy and memset
};

DeviceActivity device_activity(int32_t rank, uint32_t device, DeviceIntervals& d) {
  DeviceActivity a;
  a.rank = rank;
  a.device_id = device;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (const auto* list : {&d.nccl, &d.compute}) {
    for (const Interval& i : *list) {
      lo = std::min(lo, i.start);
      hi = std::max(hi, i.end);
    }
  }
  a.span_ns = hi - lo;
  a.communication_ns = covered_ns(d.nccl, lo, hi);
  a.compute_ns = covered_ns(d.compute, lo, hi);
  std::vector<Interval> kernels = d.nccl;
  kernels.insert(kernels.end(), d.compute.begin(), d.compute.end());
  // |A ∩ B| = |A| + |B| - |A ∪ B|
  a.overlap_ns = a.communication_ns + a.compute_ns - covered_ns(kernels, lo, hi);
  kernels.insert(kernels.end(), d.copies.begin(), d.copies.end());
  a.idle_ns = a.span_ns - covered_ns(kernels, lo, hi);
  return a;
}

// One row per (rank, device) that ran at least one kernel, in rank then device order.
std::vector<DeviceActivity> device_summary(const std::vector<RankTrace>& ranks) {
  std::map<std::pair<int32_t, uint32_t>, DeviceIntervals> devices;
  for (const RankTrace& rank : ranks) {
    const int32_t r = rank.process.rank;
    for (const KernelRecord& k : rank.records.kernels) {
      DeviceIntervals& d = devices[{r, k.device_id}];
      (is_nccl_kernel(kernel_name(k)) ? d.nccl : d.compute).push_back({k.start, k.end});
    }
  }
  for (const RankTrace& rank : ranks) {
    const int32_t r = rank.process.rank;
    auto add_copy = [&](uint32_t device, int64_t start, int64_t end) {
      if (auto it = devices.find({r, device}); it != devices.end()) {
        it->second.copies.push_back({start, end});
      }
    };
    for (const MemcpyRecord& m : rank.records.memcpys) add_copy(m.device_id, m.start, m.end);
    for (const MemsetRecord& m : rank.records.memsets) add_copy(m.device_id, m.start, m.end);
  }
  std::vector<DeviceActivity> rows;
  for (auto& [key, intervals] : devices) {
    rows.push_back(device_activity(key.first, key.second, intervals));
  }
  return rows;
}

// ---- text tables ----

// Columns are right-aligned except the last, which is left-aligned (names).
std::string table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t c = 0; c < cells.size(); ++c) {
      const bool last = c + 1 == cells.size();
      const std::string pad(width[c] - cells[c].size(), ' ');
      out << (c ? "  " : "") << (last ? cells[c] : pad + cells[c]);
    }
    out << "\n";
  };
  line(header);
  std::vector<std::string> rule;
  for (size_t w : width) rule.emplace_back(w, '-');
  line(rule);
  for (const auto& row : rows) line(row);
  return out.str();
}

std::string kernel_table(const std::vector<KernelSummaryRow>& kernels) {
  if (kernels.empty()) return "(no kernels)\n";
  std::vector<std::vector<std::string>> rows;
  for (const KernelSummaryRow& k : kernels) {
    rows.push_back({common::fixed(k.time_percent, 1), std::to_string(k.total_ns),
                    std::to_string(k.instances), common::fixed(k.mean_ns, 1),
                    common::fixed(k.median_ns, 1), std::to_string(k.min_ns),
                    std::to_string(k.max_ns), k.name});
  }
  return table({"Time (%)", "Total (ns)", "Instances", "Mean (ns)", "Median (ns)", "Min (ns)",
                "Max (ns)", "Name"},
               rows);
}

std::string nvtx_table(const std::vector<NvtxSummaryRow>& ranges) {
  if (ranges.empty()) return "(no NVTX ranges)\n";
  std::vector<std::vector<std::string>> rows;
  for (const NvtxSummaryRow& r : ranges) {
    const std::string name = r.domain.empty() ? r.text : r.domain + ":" + r.text;
    rows.push_back({std::to_string(r.instances), std::to_string(r.total_ns),
                    common::fixed(r.mean_ns, 1), std::to_string(r.kernels),
                    std::to_string(r.gpu_time_ns),
                    r.payload_sum != 0 ? std::to_string(r.payload_sum) : "-", name});
  }
  return table(
      {"Instances", "Total (ns)", "Mean (ns)", "Kernels", "GPU time (ns)", "Payload sum", "Range"},
      rows);
}

std::string device_table(const std::vector<DeviceActivity>& devices) {
  if (devices.empty()) return "(no kernels)\n";
  std::vector<std::vector<std::string>> rows;
  for (const DeviceActivity& d : devices) {
    rows.push_back({std::to_string(d.span_ns), std::to_string(d.compute_ns),
                    std::to_string(d.communication_ns), std::to_string(d.overlap_ns),
                    std::to_string(d.idle_ns),
                    "rank " + std::to_string(d.rank) + " GPU " + std::to_string(d.device_id)});
  }
  return table({"Span (ns)", "Compute (ns)", "Comm (ns)", "Overlap (ns)", "Idle (ns)", "Device"},
               rows);
}

}  // namespace

TraceStats compute_stats(const std::vector<RankTrace>& ranks) {
  TraceStats stats;
  stats.kernels = kernel_summary(ranks);
  stats.nvtx = nvtx_summary(ranks);
  stats.devices = device_summary(ranks);
  return stats;
}

std::string format_stats(const TraceStats& stats) {
  return "CUDA kernels\n" + kernel_table(stats.kernels) +
         "\nNVTX ranges (GPU time: kernels launched inside the range)\n" + nvtx_table(stats.nvtx) +
         "\nGPU activity (compute: non-NCCL kernels; comm: NCCL kernels; overlap: both at once;"
         " idle: no kernel, memcpy or memset)\n" +
         device_table(stats.devices);
}

}  // namespace mpsim::profiler
