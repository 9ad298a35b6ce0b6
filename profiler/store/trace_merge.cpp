// Combining per-rank stores (merge_ranks) and naming them (rank_path); see trace_store.h.
#include <filesystem>
#include <map>
#include <optional>

#include "common/atomic_file.h"
#include "common/text.h"
#include "profiler/store/store_schema.h"
#include "profiler/store/store_writer.h"
#include "profiler/store/trace_store.h"

namespace mpsim::profiler {
namespace {

using detail::StoreWriter;

// Moves every time of one rank by `delta` ns (marks keep their end of -1; an unknown end stays 0).
void shift_times(RankTrace& t, int64_t delta) {
  auto shift = [delta](auto& records) {
    for (auto& r : records) {
      r.start += delta;
      r.end += delta;
    }
  };
  RecordBatch& b = t.records;
  shift(b.kernels);
  shift(b.memcpys);
  shift(b.memsets);
  shift(b.api_calls);
  shift(b.syncs);
  shift(b.overhead);
  for (NvtxRecord& n : b.nvtx) {
    n.start += delta;
    if (n.end != -1) n.end += delta;
  }
  t.process.start_ns += delta;
  if (t.process.end_ns != 0) t.process.end_ns += delta;
}

void write_merged(const std::vector<std::string>& inputs, StoreWriter& out) {
  std::map<int32_t, std::string> source_of_rank;
  std::optional<int64_t> base_offset;  // the first input's clock offset
  for (const std::string& input : inputs) {
    for (RankTrace& t : TraceReader(input).read_all()) {
      auto [it, fresh] = source_of_rank.emplace(t.process.rank, input);
      if (!fresh) {
        throw StoreError(out.path() + ": rank " + std::to_string(t.process.rank) +
                         " appears in both " + it->second + " and " + input);
      }
      if (!base_offset) base_offset = t.process.clock_offset_ns;
      shift_times(t, t.process.clock_offset_ns - *base_offset);
      t.process.clock_offset_ns = *base_offset;  // its times are now on the first input's clock
      out.add_process(t.process);
      out.add_batch(t.process.rank, t.records);
    }
  }
}

}  // namespace

void merge_ranks(const std::vector<std::string>& inputs, const std::string& output) {
  if (inputs.empty()) throw StoreError(output + ": nothing to merge (no input databases)");
  detail::check_replaceable(output);
  common::ReplacingFile file(output);  // output + ".tmp", renamed over output when complete
  try {
    StoreWriter out(file.temp_path());
    write_merged(inputs, out);
    out.close();
  } catch (...) {
    detail::remove_database(file.temp_path());  // leave no half-merged file behind
    throw;
  }
  detail::remove_database(output);
  try {
    file.commit();
  } catch (const std::runtime_error& e) {
    throw StoreError(e.what());
  }
}

// --- rank_path -----------------------------------------------------------------------------------

std::string rank_path(const std::string& pattern, int32_t rank, int64_t pid) {
  std::string path = pattern;
  const bool has_rank = path.find("%r") != std::string::npos;
  common::replace_all(path, "%r", std::to_string(rank));
  common::replace_all(path, "%p", std::to_string(pid));
  if (has_rank) return path;
  // Insert before the file name's extension; a leading dot (".trace") is not an extension.
  const size_t name_start = path.find_last_of('/') + 1;  // npos + 1 == 0
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || dot <= name_start) dot = path.size();
  return path.substr(0, dot) + ".rank" + std::to_string(rank) + path.substr(dot);
}

}  // namespace mpsim::profiler
