// Parsing of `mpsim validate` flags and configuration lists; see validate_args.h.
#include "tools/mpsim/validate_args.h"

#include <boost/program_options.hpp>
#include <set>
#include <sstream>

#include "simulator/spec/spec_error.h"
#include "tools/mpsim/flag_parsing.h"

namespace mpsim::cli {
namespace {

namespace po = boost::program_options;
using spec::FlagError;

po::options_description flag_descriptions() {
  po::options_description d("mpsim validate flags");
  auto text = [](const char* name) { return po::value<std::string>()->value_name(name); };
  // clang-format off: one flag per entry reads as a table
  d.add_options()("help,h", "print this help")(
      "configs", text("FILE"), "configuration list: one `<name> <mpsim train flags>` per line")(
      "hw", text("PROFILE"),
      "hardware profile calibrated by microbenchmarks only (a name in hw_profiles/ or a path)")(
      "out", text("DIR")->default_value("docs/validation"),
      "report folder: report.md, results.csv, traces/<config>.json")(
      "runs", text("DIR"), "measurements of the runs, <config>.json (default: <out>/runs)")(
      "only", text("A,B,..."), "run and report only these configurations")(
      "warmup", text("W")->default_value("2"), "iterations excluded from the measurement")(
      "steps", text("S")->default_value("4"), "measured iterations per configuration")(
      "report-only", "never run the executor: report the measurements in --runs")(
      "remeasure", "run every configuration, even where a measurement exists")(
      "keep-databases", "keep each run's profiled SQLite databases beside its measurement")(
      "no-leave-one-out", "skip the prediction calibrated by the other configurations' runs");
  // clang-format on
  return d;
}

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

}  // namespace

ValidateRequest parse_validate_args(const std::vector<std::string>& args) {
  const po::variables_map vm = parse_flags(args, flag_descriptions(), "validate");
  ValidateRequest r;
  if (vm.count("help")) {
    r.help = true;
    return r;
  }
  auto text = [&](const char* flag) {
    const std::string value = vm[flag].as<std::string>();
    if (value.empty()) throw FlagError(std::string("--") + flag, "must not be empty");
    return value;
  };
  if (!vm.count("configs")) throw FlagError("--configs", "is required: the configuration list");
  if (!vm.count("hw")) throw FlagError("--hw", "is required: the calibrated hardware profile");
  r.configs = text("configs");
  r.hw = text("hw");
  r.out = text("out");
  r.runs = vm.count("runs") ? text("runs") : r.out + "/runs";
  if (vm.count("only")) {
    std::stringstream list(text("only"));
    for (std::string name; std::getline(list, name, ',');) {
      if (!valid_name(name))
        throw FlagError("--only", "'" + name + "' is not a configuration name");
      r.only.push_back(name);
    }
  }
  r.warmup = parse_integer("--warmup", text("warmup"), 1, 1000);
  r.steps = parse_integer("--steps", text("steps"), 1, 1000);
  r.report_only = vm.count("report-only") > 0;
  r.remeasure = vm.count("remeasure") > 0;
  if (r.report_only && r.remeasure) throw FlagError("--remeasure", "conflicts with --report-only");
  r.keep_databases = vm.count("keep-databases") > 0;
  r.leave_one_out = vm.count("no-leave-one-out") == 0;
  return r;
}

std::string validate_help() {
  std::ostringstream out;
  out << "usage: mpsim validate --configs FILE --hw PROFILE [flags]\n\n"
         "For each configuration of the list, runs the executor under the profiler\n"
         "(`mpsim profile -- mpsim train <flags> --steps W+S`), measures it (warm-up iterations\n"
         "excluded), simulates the same configuration with the calibrated profile and, with the\n"
         "profile plus the op times learned from the other configurations' runs (leave one out),\n"
         "and writes report.md, results.csv and a side-by-side Chrome trace per configuration.\n"
         "Measurements already in --runs are reused unless --remeasure is given.\n\n"
      << flag_descriptions();
  return out.str();
}

std::vector<ValidationConfig> parse_validation_configs(const std::string& text,
                                                       const std::string& file) {
  std::vector<ValidationConfig> configs;
  std::set<std::string> names;
  std::istringstream lines(text);
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string word; words >> word;) w.push_back(word);
    if (w.empty() || w.front().front() == '#') continue;
    ValidationConfig c;
    c.name = w.front();
    c.line = number;
    c.flags.assign(w.begin() + 1, w.end());
    if (!valid_name(c.name))
      throw spec::SpecError(
          file, number, "name",
          "'" + c.name + "' is not a configuration name (letters, digits, '.', '_', '-')");
    if (!names.insert(c.name).second)
      throw spec::SpecError(file, number, "name", "configuration '" + c.name + "' is given twice");
    for (const std::string& f : c.flags)
      if (f == "--steps" || f.rfind("--steps=", 0) == 0 || f == "--log" ||
          f.rfind("--log=", 0) == 0 || f == "--dry-run")
        throw spec::SpecError(file, number, c.name,
                              f + " is set by mpsim validate; remove it from the list");
    try {
      c.request = parse_train_args(c.flags);
    } catch (const FlagError& e) {
      throw spec::SpecError(file, number, c.name, e.what());
    }
    if (c.request.help)
      throw spec::SpecError(file, number, c.name, "--help is not a configuration");
    configs.push_back(std::move(c));
  }
  if (configs.empty())
    throw spec::SpecError(file, 0, "", "no configuration (expected `<name> <flags>` lines)");
  return configs;
}

}  // namespace mpsim::cli
