#include "tools/mpsim/profile_command.h"

#include <glob.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <ostream>
#include <stdexcept>

#include "profiler/store/trace_store.h"
#include "tools/mpsim/profile_args.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLibraryName = "libmpsim_inject.so";

// execvp with `env` set in the child; returns the child's exit status.
int run_child(const std::vector<std::string>& command,
              const std::vector<std::pair<std::string, std::string>>& env) {
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& word : command) argv.push_back(const_cast<char*>(word.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    const int error = errno;
    dprintf(STDERR_FILENO, "mpsim profile: cannot run '%s': %s\n", argv[0], std::strerror(error));
    _exit(error == ENOENT ? 127 : 126);
  }
  // The terminal's Ctrl-C reaches the child (same process group); we wait for it to end.
  struct sigaction ignore {
  }, old_int{}, old_term{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGTERM, &ignore, &old_term);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

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
  const int status = run_child(request.command, {{"CUDA_INJECTION64_PATH", library},
                                                 {"NVTX_INJECTION64_PATH", library},
                                                 {"MPSIM_PROFILE_OUTPUT", pattern}});
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
