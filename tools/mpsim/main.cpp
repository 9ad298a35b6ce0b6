// The `mpsim` command: `mpsim <subcommand> [flags]`. Dispatches to one function per subcommand
// and maps failures to exit statuses: 0 success, 1 a failure that is not the user's input
// (I/O, internal error), 2 bad input (unknown subcommand or flag, bad value, bad spec file),
// 3 `simulate` of a configuration that does not fit in GPU memory (simulate_command.h).
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "simulator/spec/spec_error.h"
#include "tools/mpsim/layout_flags.h"
#include "tools/mpsim/simulate_command.h"
#ifdef MPSIM_HAVE_PROFILE
#include "tools/mpsim/profile_command.h"
#endif
#include "tools/mpsim/sweep_command.h"
#include "tools/mpsim/train_command.h"
#ifdef MPSIM_HAVE_CALIBRATE
#include "tools/mpsim/calibrate_command.h"
#include "tools/mpsim/validate_command.h"
#endif
#ifdef MPSIM_HAVE_PROFILER_ANALYZE
#include "tools/mpsim/stats_command.h"
#include "tools/mpsim/trace_command.h"
#endif

namespace {

constexpr int kBadInput = 2;
constexpr int kFailure = 1;

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
};

const Subcommand kSubcommands[] = {
    {"simulate", "predict one training iteration of a model under a parallel configuration",
     mpsim::cli::run_simulate},
    {"sweep", "simulate every valid parallel configuration that fits in memory and rank them",
     mpsim::cli::run_sweep},
    {"train", "train a GPT model with the reference CUDA/NCCL executor, one process per GPU",
     mpsim::cli::run_train},
#ifdef MPSIM_HAVE_PROFILER_ANALYZE
    {"stats", "summarise a profiled run: kernels, NVTX ranges, communication vs computation",
     mpsim::cli::run_stats},
    {"trace", "write a Chrome trace (Kineto layout) of a profiled run", mpsim::cli::run_trace},
#endif
#ifdef MPSIM_HAVE_PROFILE
    {"profile", "run a CUDA program under the CUPTI profiler, one database per rank",
     mpsim::cli::run_profile},
#endif
#ifdef MPSIM_HAVE_CALIBRATE
    {"calibrate", "fit profiled microbenchmarks into a measured hardware profile",
     mpsim::cli::run_calibrate},
    {"validate", "run configurations under the profiler and compare them with the simulator",
     mpsim::cli::run_validate},
#endif
};

std::string subcommand_names() {
  std::string names;
  for (const Subcommand& s : kSubcommands)
    names += (names.empty() ? "" : ", ") + std::string(s.name);
  return names;
}

void print_usage(std::ostream& out) {
  out << "usage: mpsim <subcommand> [flags]\n"
         "       mpsim <subcommand> --help\n\n"
         "mpsim predicts, measures and explains the performance of distributed transformer "
         "training.\n\n"
         "subcommands:\n";
  size_t width = 0;
  for (const Subcommand& s : kSubcommands) width = std::max(width, std::string(s.name).size());
  for (const Subcommand& s : kSubcommands) {
    out << "  " << s.name << std::string(width + 4 - std::string(s.name).size(), ' ') << s.summary
        << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty()) {
    print_usage(std::cerr);
    return kBadInput;
  }
  const std::string& name = words.front();
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(std::cout);
    return 0;
  }
  for (const Subcommand& s : kSubcommands) {
    if (name != s.name) continue;
    const std::string context = std::string("mpsim ") + s.name + ": ";
    try {
      return s.run({words.begin() + 1, words.end()}, std::cout, std::cerr);
    } catch (const mpsim::spec::FlagError& e) {
      std::cerr << context << e.what() << "\n";
      return kBadInput;
    } catch (const mpsim::spec::FieldError& e) {
      // A spec-layer check no command translated: still named by its flag.
      std::cerr << context << mpsim::cli::flag_error_from(e).what() << "\n";
      return kBadInput;
    } catch (const mpsim::spec::SpecError& e) {
      std::cerr << context << e.what() << "\n";
      return kBadInput;
    } catch (const std::exception& e) {
      std::cerr << context << e.what() << "\n";
      return kFailure;
    }
  }
  std::cerr << "mpsim: unknown subcommand '" << name << "'; subcommands: " << subcommand_names()
            << " (see mpsim --help)\n";
  return kBadInput;
}
