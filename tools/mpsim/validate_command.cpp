// `mpsim validate`; see validate_command.h.
#include "tools/mpsim/validate_command.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>

#include "common/process/child_process.h"
#include "simulator/spec/spec_error.h"
#include "tools/mpsim/file_output.h"
#include "tools/mpsim/layout_flags.h"
#include "tools/mpsim/validate_args.h"
#include "validation/validation_pipeline.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) throw spec::FlagError(flag, "cannot read '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The pipeline's child processes (this binary's `profile` and `train`), files and notes.
class CommandHost : public validation::ValidationHost {
 public:
  explicit CommandHost(std::ostream& err) : err_(err) {}

  int run_profiled_training(const std::string& config, const std::vector<std::string>& train_flags,
                            const std::string& database, const std::string& stdout_path) override {
    const std::string self = fs::read_symlink("/proc/self/exe").string();
    std::vector<std::string> argv = {self, "profile", "-o", database, "--", self, "train"};
    argv.insert(argv.end(), train_flags.begin(), train_flags.end());
    err_ << "mpsim validate: " << config << ": " << common::command_line(argv) << "\n"
         << std::flush;
    common::ChildSpec child;
    child.argv = std::move(argv);
    child.stdout_path = stdout_path;
    // The message `mpsim calibrate` prints too (this binary is the program run).
    child.exec_failure = "mpsim calibrate: cannot run '" + self + "': ";
    return common::run_child(child);
  }

  void write_file(const std::string& path, const std::string& text,
                  validation::OutputFolder folder) override {
    write_atomically(path, text, folder == validation::OutputFolder::kRuns ? "--runs" : "--out");
  }

  void note(const std::string& line) override { err_ << "mpsim validate: " << line << "\n"; }

 private:
  std::ostream& err_;
};

// The configurations of --configs, restricted to --only.
std::vector<ValidationConfig> selected_configs(const ValidateRequest& request) {
  std::vector<ValidationConfig> configs =
      parse_validation_configs(read_text(request.configs, "--configs"), request.configs);
  if (request.only.empty()) return configs;
  std::set<std::string> known;
  for (const ValidationConfig& c : configs) known.insert(c.name);
  for (const std::string& name : request.only)
    if (!known.count(name))
      throw spec::FlagError("--only", "'" + name + "' is not in " + request.configs);
  std::erase_if(configs, [&](const ValidationConfig& c) {
    return std::find(request.only.begin(), request.only.end(), c.name) == request.only.end();
  });
  return configs;
}

}  // namespace

int run_validate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const ValidateRequest request = parse_validate_args(args);
  if (request.help) {
    out << validate_help();
    return 0;
  }
  std::vector<validation::ValidationCase> cases;
  for (const ValidationConfig& c : selected_configs(request))
    cases.push_back({c.name, c.flags, c.request.model, c.request.options.config, c.request.fp8});
  validation::ValidationSettings settings;
  settings.hardware = request.hw;
  settings.out = request.out;
  settings.runs = request.runs;
  settings.warmup = request.warmup;
  settings.steps = request.steps;
  settings.report_only = request.report_only;
  settings.remeasure = request.remeasure;
  settings.keep_databases = request.keep_databases;
  settings.leave_one_out = request.leave_one_out;
  settings.command = "mpsim validate " + common::command_line(args);
  CommandHost host(err);
  validation::ValidationOutcome outcome;
  try {
    outcome = validation::run_validation(cases, settings, host);
  } catch (const spec::FieldError& e) {
    throw flag_error_from(e);  // a layout the model or hardware rejects, named by its flag
  }

  const validation::ErrorSummary s = validation::iteration_summary(outcome.rows);
  out << "validated " << outcome.rows.size() << " configurations: iteration time MAPE "
      << 100 * s.mape << " %, worst " << 100 * s.worst << " % (" << s.worst_config << ")";
  if (const auto l = validation::loo_iteration_summary(outcome.rows))
    out << "; leave-one-out MAPE " << 100 * l->mape << " %, worst " << 100 * l->worst << " %";
  out << "\nreport: " << outcome.report_path << "\n";
  for (const std::string& f : outcome.failures)
    err << "mpsim validate: not reported: " << f << "\n";
  return outcome.failures.empty() ? 0 : 1;
}

}  // namespace mpsim::cli
