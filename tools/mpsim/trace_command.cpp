// `mpsim trace`; see trace_command.h.
#include "tools/mpsim/trace_command.h"

#include <boost/program_options.hpp>
#include <limits>
#include <optional>
#include <ostream>

#include "profiler/analyze/kineto_export.h"
#include "simulator/spec/spec_error.h"
#include "tools/mpsim/flag_parsing.h"
#include "tools/mpsim/stats_command.h"

namespace mpsim::cli {
namespace {

namespace po = boost::program_options;

po::options_description flag_descriptions() {
  po::options_description d("mpsim trace <run.sqlite> -o out.json [flags]");
  // clang-format off
  d.add_options()
      ("help,h", "print this help")
      ("database", po::value<std::string>()->value_name("FILE"),
       "trace store written by mpsim profile (positional)")
      ("output,o", po::value<std::string>()->value_name("FILE"),
       "Chrome trace to write (JSON, times in us from the earliest record)")
      ("rank", po::value<std::string>()->value_name("R"), "export only rank R (default: all)");
  // clang-format on
  return d;
}

}  // namespace

int run_trace(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const po::variables_map vm = parse_flags(args, flag_descriptions(), "trace", "database");
  if (vm.count("help")) {
    out << "usage: mpsim trace <run.sqlite> -o out.json [--rank R]\n\n"
           "Chrome trace (Kineto layout: Perfetto, chrome://tracing, Holistic Trace Analysis)\n"
           "of a profiled run.\n\n"
        << flag_descriptions();
    return 0;
  }
  if (!vm.count("database")) {
    throw spec::FlagError("<run.sqlite>", "missing (see mpsim trace --help)");
  }
  if (!vm.count("output")) throw spec::FlagError("-o", "is required (the JSON file to write)");
  std::optional<int32_t> rank;
  if (vm.count("rank")) {
    rank = static_cast<int32_t>(parse_integer("--rank", vm["rank"].as<std::string>(), 0,
                                              std::numeric_limits<int32_t>::max()));
  }
  const std::string path = vm["output"].as<std::string>();
  profiler::export_chrome_trace(load_ranks(vm["database"].as<std::string>(), rank), path);
  out << "trace written to " << path << "\n";
  return 0;
}

}  // namespace mpsim::cli
