// Flag parsing shared by the subcommands: Boost.Program_Options with GNU-style flags, no
// abbreviations, and every error turned into spec::FlagError naming the flag as typed, in one
// style: `--schedule: 'foo' is not one of gpipe, 1f1b, interleaved`.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "simulator/spec/parallel_config.pb.h"
#include "simulator/spec/spec_error.h"

namespace mpsim::cli {

// A flag's allowed words and the value each maps to.
template <typename Value>
using Choices = std::vector<std::pair<std::string, Value>>;

extern const Choices<spec::Schedule> kScheduleChoices;    // gpipe, 1f1b, interleaved
extern const Choices<spec::Recompute> kRecomputeChoices;  // none, selective, full
extern const Choices<spec::RankOrder> kRankOrderChoices;  // tp-dp-pp, tp-pp-dp
extern const Choices<spec::Attention> kAttentionChoices;  // flash, unfused
extern const Choices<int64_t> kZeroChoices;               // 0, 1, 2, 3
extern const Choices<bool> kOnOffChoices;                 // on, off

template <typename Value>
Value choose(const std::string& flag, const std::string& word, const Choices<Value>& choices) {
  std::string allowed;
  for (const auto& [name, value] : choices) {
    if (name == word) return value;
    allowed += (allowed.empty() ? "" : ", ") + name;
  }
  throw spec::FlagError(flag, "'" + word + "' is not one of " + allowed);
}

// A whole-string decimal integer in [min, max].
int64_t parse_integer(const std::string& flag, const std::string& text, int64_t min,
                      int64_t max = std::numeric_limits<int64_t>::max());

// A whole-string finite decimal number, at least `min` (above it when `exclusive`).
double parse_real(const std::string& flag, const std::string& text, double min, bool exclusive);

// A fraction of the GPU's usable memory to keep free: a number in [0, 1).
double parse_memory_headroom(const std::string& flag, const std::string& text);
// A fraction from 0 to 1 (both included), e.g. --optimizer-offload's; `what` says of what.
double parse_fraction(const std::string& flag, const std::string& text, const std::string& what);

// Parses `args` (the words after the subcommand) against `options`; words that are not flags
// are errors. `command` names the subcommand in messages ("simulate").
boost::program_options::variables_map parse_flags(
    const std::vector<std::string>& args,
    const boost::program_options::options_description& options, const std::string& command);

// The same, with one positional argument: the first word that is not a flag is stored under
// `positional_name`, which `options` must declare (e.g. "database"); further words are errors.
boost::program_options::variables_map parse_flags(
    const std::vector<std::string>& args,
    const boost::program_options::options_description& options, const std::string& command,
    const std::string& positional_name);

}  // namespace mpsim::cli
