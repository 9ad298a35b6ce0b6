// Record helpers that need no database (see trace_records.h).
#include "profiler/store/trace_records.h"

#include <algorithm>
#include <ctime>
#include <utility>

namespace mpsim::profiler {

bool is_nccl_kernel(const std::string& name) {
  return name.starts_with("ncclDevKernel_") || name.starts_with("ncclKernel_");
}

std::string utc_date(int64_t unix_ns) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &tm);
  return text;
}

std::string recording_date(const ProcessInfo& process) {
  return utc_date(process.start_ns + process.clock_offset_ns);
}

std::string gpu_summary(const std::vector<GpuInfo>& gpus) {
  std::vector<std::pair<std::string, int>> counts;  // in first-seen order
  for (const GpuInfo& gpu : gpus) {
    auto it = std::find_if(counts.begin(), counts.end(),
                           [&](const auto& c) { return c.first == gpu.name; });
    if (it == counts.end()) {
      counts.emplace_back(gpu.name, 1);
    } else {
      ++it->second;
    }
  }
  std::string text;
  for (const auto& [name, count] : counts)
    text += (text.empty() ? "" : ", ") + std::to_string(count) + " x " + name;
  return text.empty() ? "unknown GPU" : text;
}

}  // namespace mpsim::profiler
