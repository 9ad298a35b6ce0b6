#include "tools/mpsim/flag_parsing.h"

#include <charconv>
#include <cmath>

#include "common/text.h"

namespace mpsim::cli {

namespace po = boost::program_options;
using spec::FlagError;

const Choices<spec::Schedule> kScheduleChoices = {
    {"gpipe", spec::GPIPE}, {"1f1b", spec::ONE_F_ONE_B}, {"interleaved", spec::INTERLEAVED_1F1B}};
const Choices<spec::Recompute> kRecomputeChoices = {{"none", spec::RECOMPUTE_NONE},
                                                    {"selective", spec::RECOMPUTE_SELECTIVE},
                                                    {"full", spec::RECOMPUTE_FULL}};
const Choices<spec::RankOrder> kRankOrderChoices = {{"tp-dp-pp", spec::TP_DP_PP},
                                                    {"tp-pp-dp", spec::TP_PP_DP}};
const Choices<spec::Attention> kAttentionChoices = {{"flash", spec::ATTENTION_FLASH},
                                                    {"unfused", spec::ATTENTION_UNFUSED}};
const Choices<int64_t> kZeroChoices = {{"0", 0}, {"1", 1}, {"2", 2}, {"3", 3}};
const Choices<bool> kOnOffChoices = {{"on", true}, {"off", false}};

double parse_real(const std::string& flag, const std::string& text, double min, bool exclusive) {
  double result = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, result);
  if (text.empty() || error != std::errc() || ptr != end || !std::isfinite(result)) {
    throw FlagError(flag, "'" + text + "' is not a number");
  }
  if (exclusive ? result <= min : result < min) {
    throw FlagError(flag, "'" + text + "' must be " + (exclusive ? "above " : "at least ") +
                              common::shortest(min));
  }
  return result;
}

double parse_memory_headroom(const std::string& flag, const std::string& text) {
  const double headroom = parse_real(flag, text, 0, false);
  if (headroom >= 1) {
    throw FlagError(flag, "'" + text +
                              "' must be below 1: the fraction of the GPU's usable memory kept "
                              "free, e.g. 0.05");
  }
  return headroom;
}

double parse_fraction(const std::string& flag, const std::string& text, const std::string& what) {
  const double f = parse_real(flag, text, 0, false);
  if (f > 1) {
    throw FlagError(flag,
                    "'" + text + "' is above 1: expected the fraction of " + what + ", 0 to 1");
  }
  return f;
}

int64_t parse_integer(const std::string& flag, const std::string& text, int64_t min, int64_t max) {
  int64_t result = 0;
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, result);
  if (error == std::errc::result_out_of_range || (error == std::errc() && result > max)) {
    throw FlagError(flag, "'" + text + "' is out of range");
  }
  if (error != std::errc() || ptr != end || text.empty()) {
    throw FlagError(flag, "'" + text + "' is not an integer");
  }
  if (result < min) {
    throw FlagError(flag, "'" + text + "' must be at least " + std::to_string(min));
  }
  return result;
}

namespace {

// Parses with `positional_name` (or none, when empty) taking the first word that is not a flag.
po::variables_map parse_words(const std::vector<std::string>& args,
                              const po::options_description& options, const std::string& command,
                              const std::string& positional_name) {
  po::options_description all = options;
  all.add_options()("unexpected", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  if (!positional_name.empty()) positional.add(positional_name.c_str(), 1);
  positional.add("unexpected", -1);
  const int style = po::command_line_style::default_style &
                    ~po::command_line_style::allow_guessing;  // no "--sched" for --schedule
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).style(style).run(),
              vm);
  } catch (const po::unknown_option& e) {
    throw FlagError(e.get_option_name(), "unknown flag (see mpsim " + command + " --help)");
  } catch (const po::multiple_occurrences& e) {
    throw FlagError(e.get_option_name(), "given more than once");
  } catch (const po::invalid_command_line_syntax& e) {
    if (e.kind() == po::invalid_command_line_syntax::missing_parameter ||
        e.kind() == po::invalid_command_line_syntax::empty_adjacent_parameter) {
      throw FlagError(e.get_option_name(), "needs a value");
    }
    if (e.kind() == po::invalid_command_line_syntax::extra_parameter) {
      throw FlagError(e.get_option_name(), "takes no value");
    }
    throw FlagError(e.get_option_name(), e.what());
  } catch (const po::error_with_option_name& e) {
    throw FlagError(e.get_option_name(), e.what());
  } catch (const po::error& e) {
    throw FlagError(command, e.what());
  }
  if (vm.count("unexpected")) {
    const std::string word = vm["unexpected"].as<std::vector<std::string>>().front();
    const std::string takes =
        positional_name.empty() ? "only flags" : "one " + positional_name + " and flags";
    throw FlagError(word, "unexpected argument; mpsim " + command + " takes " + takes);
  }
  return vm;
}

}  // namespace

po::variables_map parse_flags(const std::vector<std::string>& args,
                              const po::options_description& options, const std::string& command) {
  return parse_words(args, options, command, "");
}

po::variables_map parse_flags(const std::vector<std::string>& args,
                              const po::options_description& options, const std::string& command,
                              const std::string& positional_name) {
  return parse_words(args, options, command, positional_name);
}

}  // namespace mpsim::cli
