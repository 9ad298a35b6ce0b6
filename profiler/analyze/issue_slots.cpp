#include "profiler/analyze/issue_slots.h"

#include <algorithm>
#include <map>
#include <utility>

namespace mpsim::profiler {

std::vector<int64_t> launch_gaps(const std::vector<KernelRecord>& all,
                                 const std::vector<std::size_t>& indices) {
  std::map<std::pair<uint32_t, uint32_t>, std::vector<std::size_t>> streams;  // -> positions
  for (std::size_t j = 0; j < indices.size(); ++j) {
    const KernelRecord& k = all[indices[j]];
    streams[{k.device_id, k.stream_id}].push_back(j);
  }
  std::vector<int64_t> gaps(indices.size(), 0);
  for (auto& [stream, positions] : streams) {
    std::sort(positions.begin(), positions.end(), [&](std::size_t a, std::size_t b) {
      return all[indices[a]].start < all[indices[b]].start;
    });
    int64_t total = 0;
    for (std::size_t p = 1; p < positions.size(); ++p) {
      const int64_t idle = all[indices[positions[p]]].start - all[indices[positions[p - 1]]].end;
      gaps[positions[p]] = std::clamp<int64_t>(idle, 0, kMaxLaunchGapNs);
      total += gaps[positions[p]];
    }
    if (positions.size() > 1)
      gaps[positions.front()] = total / static_cast<int64_t>(positions.size() - 1);
  }
  return gaps;
}

}  // namespace mpsim::profiler
