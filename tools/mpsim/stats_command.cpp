// `mpsim stats`; see stats_command.h.
#include "tools/mpsim/stats_command.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <filesystem>
#include <limits>
#include <ostream>

#include "profiler/analyze/trace_stats.h"
#include "simulator/spec/spec_error.h"
#include "tools/mpsim/flag_parsing.h"

namespace mpsim::cli {
namespace {

namespace po = boost::program_options;

po::options_description flag_descriptions() {
  po::options_description d("mpsim stats <run.sqlite> [flags]");
  // clang-format off
  d.add_options()
      ("help,h", "print this help")
      ("database", po::value<std::string>()->value_name("FILE"),
       "trace store written by mpsim profile (positional)")
      ("rank", po::value<std::string>()->value_name("R"), "summarise only rank R (default: all)");
  // clang-format on
  return d;
}

// The store's message without a leading "<path>: ", which SpecError adds back.
std::string without_path(const std::string& message, const std::string& path) {
  const std::string prefix = path + ": ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

std::string rank_list(const std::vector<int32_t>& ranks) {
  std::string text;
  for (int32_t r : ranks) text += (text.empty() ? "" : ", ") + std::to_string(r);
  return text.empty() ? "none" : text;
}

}  // namespace

std::vector<profiler::RankTrace> load_ranks(const std::string& path,
                                            const std::optional<int32_t>& rank) {
  if (!std::filesystem::exists(path)) throw spec::SpecError(path, 0, "", "no such file");
  try {
    const profiler::TraceReader reader(path);
    if (!rank) return reader.read_all();
    const std::vector<int32_t> ranks = reader.ranks();
    if (std::find(ranks.begin(), ranks.end(), *rank) == ranks.end()) {
      throw spec::FlagError("--rank", "no rank " + std::to_string(*rank) + " in " + path +
                                          " (ranks: " + rank_list(ranks) + ")");
    }
    return {reader.read_rank(*rank)};
  } catch (const profiler::StoreError& e) {
    throw spec::SpecError(path, 0, "", without_path(e.what(), path));
  }
}

int run_stats(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const po::variables_map vm = parse_flags(args, flag_descriptions(), "stats", "database");
  if (vm.count("help")) {
    out << "usage: mpsim stats <run.sqlite> [--rank R]\n\n"
           "Kernel, NVTX-range and GPU-activity summaries of a profiled run.\n\n"
        << flag_descriptions();
    return 0;
  }
  if (!vm.count("database")) {
    throw spec::FlagError("<run.sqlite>", "missing (see mpsim stats --help)");
  }
  std::optional<int32_t> rank;
  if (vm.count("rank")) {
    rank = static_cast<int32_t>(parse_integer("--rank", vm["rank"].as<std::string>(), 0,
                                              std::numeric_limits<int32_t>::max()));
  }
  out << profiler::format_stats(
      profiler::compute_stats(load_ranks(vm["database"].as<std::string>(), rank)));
  return 0;
}

}  // namespace mpsim::cli
