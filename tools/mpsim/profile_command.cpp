#include "tools/mpsim/profile_command.h"

#include <glob.h>
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <ostream>
#include <stdexcept>

#include "common/process/child_process.h"
#include "profiler/store/trace_store.h"
#include "tools/mpsim/profile_args.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLibraryName = "libmpsim_inject.so";

// A glob matching every file rank_path() makes from `pattern`: the rank and pid become '*'.
std::string rank_glob(const std::string& pattern) {
  constexpr int32_t kRank = 918273645;
  constexpr int64_t kPid = 5463728190;
  std::string path = profiler::rank_path(pattern, kRank, kPid);
  for (const std::string& marker : {std::to_string(kRank), std::to_string(kPid)}) {
    for (size_t at; (at = path.find(marker)) != std::string::npos;)
      path.replace(at, marker.size(), "*");
  }
  return path;
}

}  // namespace

std::string find_inject_library(const std::string& self, const std::string& override_path) {
  if (!override_path.empty()) {
    if (fs::exists(override_path)) return fs::absolute(override_path).string();
    throw std::runtime_error("MPSIM_INJECT_LIB names '" + override_path +
                             "', which does not exist");
  }
  const fs::path dir = fs::path(self).parent_path();
  for (const fs::path& candidate : {dir / "../../profiler/cupti" / kLibraryName, dir / kLibraryName,
                                    dir / "../lib" / kLibraryName}) {
    if (fs::exists(candidate)) return fs::canonical(candidate).string();
  }
  throw std::runtime_error(std::string("cannot find ") + kLibraryName + " near " + self +
                           " (build the mpsim_inject target or set MPSIM_INJECT_LIB)");
}

std::vector<std::string> rank_databases(const std::string& pattern, long long since) {
  glob_t found{};
  std::vector<std::string> paths;
  if (glob(rank_glob(pattern).c_str(), 0, nullptr, &found) == 0) {
    for (size_t i = 0; i < found.gl_pathc; ++i) {
      struct stat info {};
      if (stat(found.gl_pathv[i], &info) == 0 && info.st_mtime >= since) {
        paths.emplace_back(found.gl_pathv[i]);  // a file of an earlier run is left out
      }
    }
  }
  globfree(&found);
  return paths;  // glob sorts
}

int run_profile(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const ProfileRequest request = parse_profile_args(args);
  if (request.help) {
    out << profile_help();
    return 0;
  }
  const char* override_path = std::getenv("MPSIM_INJECT_LIB");
  const std::string library = find_inject_library(fs::read_symlink("/proc/self/exe").string(),
                                                  override_path ? override_path : "");
  const std::string pattern = fs::absolute(request.output).string();
  const long long started = static_cast<long long>(std::time(nullptr)) - 1;
  common::ChildSpec child;
  child.argv = request.command;
  child.search_path = true;
  child.set = {{"CUDA_INJECTION64_PATH", library},
               {"NVTX_INJECTION64_PATH", library},
               {"MPSIM_PROFILE_OUTPUT", pattern}};
  child.exec_failure = "mpsim profile: cannot run '" + request.command.at(0) + "': ";
  child.shell_statuses = true;
  // SIGINT and SIGTERM are the child's to act on; this process waits for it to end.
  const int status = common::run_child(child, /*ignore_sigterm=*/true);
  if (!request.merge) return status;
  const std::vector<std::string> inputs = rank_databases(pattern, started);
  if (inputs.empty()) {
    err << "mpsim profile: no rank databases matching " << rank_glob(pattern)
        << " to merge (did the command use CUDA?)\n";
    return status != 0 ? status : 1;
  }
  profiler::merge_ranks(inputs, pattern);
  err << "mpsim profile: merged " << inputs.size() << " rank database(s) into " << pattern << "\n";
  return status;
}

}  // namespace mpsim::cli
