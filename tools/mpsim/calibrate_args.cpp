// Parsing of `mpsim calibrate` flags; see calibrate_args.h. Each flag is declared once below.
#include "tools/mpsim/calibrate_args.h"

#include <boost/program_options.hpp>
#include <filesystem>
#include <sstream>

#include "simulator/spec/spec_error.h"
#include "tools/mpsim/flag_parsing.h"

namespace mpsim::cli {
namespace {

namespace po = boost::program_options;
using spec::FlagError;

po::options_description flag_descriptions() {
  po::options_description d("mpsim calibrate flags");
  // clang-format off
  d.add_options()
      ("help,h", "print this help")
      ("from", po::value<std::vector<std::string>>()->value_name("DB"),
       "a trace database recorded by `mpsim profile -- calibration_bench` (repeatable); "
       "without it, calibration_bench is run and profiled on this machine")
      ("base", po::value<std::string>()->default_value("h100-sxm")->value_name("H"),
       "base profile whose datasheet numbers are kept: a name in hw_profiles/ or a path")
      ("output,o", po::value<std::string>()->value_name("FILE"),
       "the profile to write (protobuf text), e.g. hw_profiles/h100-sxm-measured.textproto")
      ("name", po::value<std::string>()->value_name("NAME"),
       "the profile's name (default: the -o file's name without .textproto)")
      ("quick", "measure the bench's --quick set (a smoke test in seconds; not with --from)");
  // clang-format on
  return d;
}

const std::string& non_empty(const po::variables_map& vm, const char* key, const char* flag) {
  const std::string& value = vm[key].as<std::string>();
  if (value.empty()) throw FlagError(flag, "empty; expected a value");
  return value;
}

}  // namespace

CalibrateRequest parse_calibrate_args(const std::vector<std::string>& args) {
  const po::variables_map vm = parse_flags(args, flag_descriptions(), "calibrate");
  CalibrateRequest request;
  request.help = vm.count("help") > 0;
  if (request.help) return request;
  if (vm.count("from")) {
    request.from = vm["from"].as<std::vector<std::string>>();
    for (const std::string& db : request.from) {
      if (db.empty()) throw FlagError("--from", "empty; expected a database file");
    }
  }
  request.base = non_empty(vm, "base", "--base");
  if (!vm.count("output")) {
    throw FlagError("-o",
                    "missing; expected the profile to write, e.g. "
                    "-o hw_profiles/h100-sxm-measured.textproto");
  }
  request.output = non_empty(vm, "output", "-o");
  if (std::filesystem::path(request.output).filename().empty()) {
    throw FlagError("-o", "'" + request.output + "' names a directory; expected a file");
  }
  if (vm.count("name")) {
    request.name = non_empty(vm, "name", "--name");
  } else {
    request.name = std::filesystem::path(request.output).filename().string();
    if (request.name.ends_with(".textproto")) {
      request.name.resize(request.name.size() - std::string(".textproto").size());
    }
  }
  request.quick = vm.count("quick") > 0;
  if (request.quick && !request.from.empty()) {
    throw FlagError("--quick",
                    "only applies when measuring; --from fits databases already "
                    "recorded");
  }
  return request;
}

std::string calibrate_help() {
  std::ostringstream text;
  text << "usage: mpsim calibrate --from DB [--from DB2 ...] [--base H] -o FILE [--name NAME]\n"
          "       mpsim calibrate -o FILE [--base H] [--name NAME] [--quick]\n\n"
          "Fits the calibration microbenchmarks' kernel times (CUPTI, per NVTX range calib/...)\n"
          "into a hardware profile: the base profile's datasheet numbers with measured GEMM,\n"
          "attention, memory-op and NCCL tables, and the efficiency and NVLink numbers they\n"
          "define. Without --from, runs `mpsim profile -- calibration_bench` on this machine's\n"
          "GPUs first (the bench is found at <mpsim dir>/../../profiler/bench/calibration_bench)\n"
          "and keeps its database and output in a temporary folder, whose path is printed.\n"
          "What is fitted, and how: profiler/calibrate/README.md.\n\n"
       << flag_descriptions();
  return text.str();
}

}  // namespace mpsim::cli
