#include "tools/mpsim/profile_args.h"

#include <algorithm>
#include <sstream>

#include "tools/mpsim/flag_parsing.h"

namespace mpsim::cli {
namespace {

namespace po = boost::program_options;

po::options_description profile_options() {
  po::options_description options("mpsim profile flags");
  options.add_options()("help,h", "print this help")(
      "output,o", po::value<std::string>()->default_value("mpsim_profile.sqlite"),
      "database path pattern: each rank writes <name>.rank<N>.<ext> (or the pattern with %r "
      "replaced by the rank and %p by the pid)")(
      "merge", "after the command exits, merge the rank databases into the -o path");
  return options;
}

}  // namespace

ProfileRequest parse_profile_args(const std::vector<std::string>& args) {
  const auto dashes = std::find(args.begin(), args.end(), "--");
  const po::variables_map vm = parse_flags({args.begin(), dashes}, profile_options(), "profile");
  ProfileRequest request;
  request.help = vm.count("help") > 0;
  if (request.help) return request;
  request.output = vm["output"].as<std::string>();
  request.merge = vm.count("merge") > 0;
  if (dashes == args.end() || dashes + 1 == args.end()) {
    throw spec::FlagError("--", "expected '-- <command...>' naming the program to profile");
  }
  request.command.assign(dashes + 1, args.end());
  if (request.merge && request.output.find('%') != std::string::npos) {
    throw spec::FlagError("--merge", "-o '" + request.output +
                                         "' holds a %r/%p pattern; give the merged file's name");
  }
  return request;
}

std::string profile_help() {
  std::ostringstream text;
  text << "usage: mpsim profile [-o run.sqlite] [--merge] -- <command...>\n\n"
          "Runs <command> with the CUPTI injection library (CUDA_INJECTION64_PATH,\n"
          "NVTX_INJECTION64_PATH); every process that uses CUDA writes its own database, named\n"
          "by its rank (RANK, LOCAL_RANK, SLURM_PROCID, OMPI_COMM_WORLD_RANK, else its pid).\n"
          "MPSIM_INJECT_LIB overrides the library's path. Exits with the command's status.\n\n"
       << profile_options();
  return text.str();
}

}  // namespace mpsim::cli
