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
       "a trace database recorded by `mpsim profile -- calibration_bench`, or a profiled "
       "executor run (`mpsim profile -o run.sqlite -- mpsim train ...`: its op times are "
       "learned at the graph's exact shapes); repeatable; without it, calibration_bench is run "
       "and profiled on this machine")
      ("base", po::value<std::string>()->default_value("h100-sxm")->value_name("H"),
       "base profile whose datasheet numbers are kept: a name in hw_profiles/ or a path")
      ("output,o", po::value<std::string>()->value_name("FILE"),
       "the profile to write (protobuf text), e.g. hw_profiles/h100-sxm-measured.textproto")
      ("name", po::value<std::string>()->value_name("NAME"),
       "the profile's name (default: the -o file's name without .textproto)")
      ("quick", "measure the bench's --quick set (a smoke test in seconds; not with --from)")
      ("bench", po::value<std::string>()->value_name("PATH"),
       "the calibration_bench to run (default: <mpsim dir>/../../calibration/bench/calibration_bench "
       "in a build tree, else <mpsim dir>/calibration_bench; not with --from)")
      ("models", po::value<std::string>()->value_name("DIR"),
       "the model specs whose GEMM shapes set the bench's GEMM grid (default: the models/ folder "
       "of $MPSIM_DATA_DIR, the current directory, the checkout above mpsim's build tree or the "
       "source tree, the first that exists; not with --from)")
      ("gpus", po::value<std::string>()->value_name("N"),
       "the local GPUs the models' exact shapes are listed for (TP 1..N, collective groups up "
       "to N; calibration/fit/model_points.h) and the bench runs on (default: the number of "
       "/dev/nvidia<N> devices, at least 1; not with --from)");
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
  if (vm.count("bench")) request.bench = non_empty(vm, "bench", "--bench");
  if (vm.count("models")) request.models = non_empty(vm, "models", "--models");
  if (vm.count("gpus")) {
    request.gpus = parse_integer("--gpus", vm["gpus"].as<std::string>(), 1, 1024);
  }
  for (const auto& [given, flag] :
       {std::pair{request.quick, "--quick"}, std::pair{!request.bench.empty(), "--bench"},
        std::pair{!request.models.empty(), "--models"}, std::pair{request.gpus > 0, "--gpus"}}) {
    if (given && !request.from.empty()) {
      throw FlagError(flag, "only applies when measuring; --from fits databases already recorded");
    }
  }
  return request;
}

std::string calibrate_help() {
  std::ostringstream text;
  text << "usage: mpsim calibrate --from DB [--from DB2 ...] [--base H] -o FILE [--name NAME]\n"
          "       mpsim calibrate -o FILE [--base H] [--name NAME] [--quick] [--bench PATH]\n"
          "                       [--models DIR] [--gpus N]\n\n"
          "Fits the calibration microbenchmarks' kernel times (CUPTI, per NVTX range calib/...)\n"
          "into a hardware profile: the base profile's datasheet numbers with measured GEMM,\n"
          "attention, memory-op and NCCL tables, and the efficiency and NVLink numbers they\n"
          "define. Without --from, runs `mpsim profile -- calibration_bench` on this machine's\n"
          "GPUs first (see --bench) and keeps its database and output in a temporary folder,\n"
          "whose path is printed. The bench's GEMM grid (--gemm-m/n/k) comes from the GEMMs\n"
          "the simulator's graph builds for the models of --models with 1e8 to 1e10\n"
          "parameters, at TP 1, 2, 4, ... up to the base profile's GPUs per node and\n"
          "micro-batches 1 to 16, at most 8 values per axis up to 32768\n"
          "(calibration/fit/model_gemm_grid.h); --quick keeps the bench's own small set.\n"
          "After the grids the bench also measures the exact GEMM, attention and collective\n"
          "shapes of those models' graphs on --gpus GPUs (calibration_bench --points;\n"
          "calibration/fit/model_points.h), written into the profile's .exact tables.\n"
          "What is fitted, and how: calibration/fit/README.md.\n\n"
       << flag_descriptions();
  return text.str();
}

TrainRequest train_request_from_command(const std::string& command, const std::string& source) {
  std::istringstream in(command);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  size_t at = 0;
  while (at < words.size() && words[at] != "train") ++at;
  if (at == words.size())
    throw spec::SpecError(source, 0, "command",
                          "'" + command +
                              "' is not an `mpsim train` run; expected a database "
                              "recorded by `mpsim profile -- mpsim train ...`");
  try {
    return parse_train_args({words.begin() + static_cast<long>(at) + 1, words.end()});
  } catch (const spec::FlagError& e) {
    throw spec::SpecError(source, 0, "command", e.what());
  }
}

}  // namespace mpsim::cli
