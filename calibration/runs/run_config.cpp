// See run_config.h.
#include "calibration/runs/run_config.h"

#include <google/protobuf/util/message_differencer.h>

#include <stdexcept>

#include "executor/core/run_mark.h"

namespace mpsim::calibration {

bool is_executor_run(const std::vector<profiler::RankTrace>& traces) {
  for (const profiler::RankTrace& t : traces)
    for (const profiler::NvtxRecord& r : t.records.nvtx)
      if (r.text.rfind("iteration/", 0) == 0) return true;
  return false;
}

std::optional<RunConfig> run_config_from_traces(const std::vector<profiler::RankTrace>& traces,
                                                const std::string& source) {
  using google::protobuf::util::MessageDifferencer;
  std::optional<RunConfig> found;
  for (const profiler::RankTrace& t : traces) {
    for (const profiler::NvtxRecord& r : t.records.nvtx) {
      std::optional<executor::RunMark> mark;
      try {
        mark = executor::parse_run_mark(r.text);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(source + ": rank " + std::to_string(t.process.rank) + ": " +
                                    e.what());
      }
      if (!mark) continue;
      if (found && !(MessageDifferencer::Equals(found->model, mark->model) &&
                     MessageDifferencer::Equals(found->parallel, mark->parallel)))
        throw std::invalid_argument(source + ": rank " + std::to_string(t.process.rank) +
                                    "'s run mark states another model or configuration than "
                                    "the ranks before it");
      found = RunConfig{std::move(mark->model), std::move(mark->parallel)};
    }
  }
  return found;
}

}  // namespace mpsim::calibration
