// The NVTX -> kernel projection; the rule is stated in nvtx_projection.h.
#include "profiler/analyze/nvtx_projection.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>

namespace mpsim::profiler {
namespace {

constexpr int32_t kNvtxMark = 34;

// A kernel as the projection sees it: when its launch call started, and which kernel it is.
struct Launch {
  int64_t time = 0;
  std::size_t kernel = 0;
};

// Kernel launches by host thread, in launch order (kernel order among equal times).
std::unordered_map<uint64_t, std::vector<Launch>> launches_by_thread(const RecordBatch& records) {
  std::unordered_map<uint32_t, const ApiRecord*> api_by_correlation;
  for (const ApiRecord& api : records.api_calls) api_by_correlation[api.correlation_id] = &api;
  std::unordered_map<uint64_t, std::vector<Launch>> launches;
  for (std::size_t k = 0; k < records.kernels.size(); ++k) {
    const auto api = api_by_correlation.find(records.kernels[k].correlation_id);
    if (api == api_by_correlation.end()) continue;
    launches[api->second->thread_id].push_back({api->second->start, k});
  }
  for (auto& [thread, list] : launches) {
    std::stable_sort(list.begin(), list.end(),
                     [](const Launch& a, const Launch& b) { return a.time < b.time; });
  }
  return launches;
}

}  // namespace

bool is_nvtx_range(const NvtxRecord& record) {
  return record.event_type != kNvtxMark && record.end >= record.start;
}

std::vector<std::vector<std::size_t>> project_kernels_to_ranges(const RecordBatch& records) {
  std::vector<std::vector<std::size_t>> kernels(records.nvtx.size());
  std::unordered_map<uint64_t, std::vector<std::size_t>> ranges;  // nvtx indices by thread
  for (std::size_t i = 0; i < records.nvtx.size(); ++i) {
    if (is_nvtx_range(records.nvtx[i])) ranges[records.nvtx[i].thread_id].push_back(i);
  }
  const auto launches = launches_by_thread(records);
  for (auto& [thread, list] : ranges) {
    const auto found = launches.find(thread);
    if (found == launches.end()) continue;
    std::stable_sort(list.begin(), list.end(), [&](std::size_t a, std::size_t b) {
      return records.nvtx[a].start < records.nvtx[b].start;
    });
    // A sweep over the thread's launches in time order keeping the ranges open at that time
    // (nested ranges are all open, so each gets the kernel).
    std::vector<std::size_t> open;  // nvtx indices
    std::size_t next = 0;
    for (const Launch& launch : found->second) {
      while (next < list.size() && records.nvtx[list[next]].start <= launch.time) {
        open.push_back(list[next++]);
      }
      std::erase_if(open, [&](std::size_t i) { return records.nvtx[i].end <= launch.time; });
      for (std::size_t i : open) kernels[i].push_back(launch.kernel);
    }
  }
  return kernels;
}

}  // namespace mpsim::profiler
