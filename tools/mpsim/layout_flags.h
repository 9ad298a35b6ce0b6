// The layout flags (--model --hw --gpus --tp --pp --dp --mbs --gbs --sp --no-sp --vpp --schedule
// --recompute --zero --no-overlap-dp --rank-order --attention), declared once: each with the
// ModelSpec or ParallelConfig field it sets, its value name and its help. A command declares the
// ones it takes, with its own defaults, through add_layout_flags(), and reads them back with
// read_layout_flags().
//
// The same table turns the spec layer's errors, which name fields (spec::FieldError
// "tensor_parallel: ..."), into errors naming the flag the field was parsed from
// (spec::FlagError "--tp: ..."): flag_error_from() and checked_layout(). Only tools/ knows flag
// names.
//
// Failure: read_layout_flags() throws spec::FlagError naming the flag for a value that is not an
// integer of the range, not one of the allowed words, or for --sp with --no-sp;
// checked_layout() throws spec::FlagError for every constraint the layout breaks (and lets
// spec::SpecError pass).
#pragma once

#include <boost/program_options.hpp>
#include <optional>
#include <string>
#include <vector>

#include "simulator/spec/hardware.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"
#include "simulator/spec/spec_error.h"

namespace mpsim::cli {

enum class LayoutFlag {
  kModel,
  kHw,
  kGpus,
  kTp,
  kPp,
  kCp,
  kDp,
  kMbs,
  kGbs,
  kSp,
  kNoSp,
  kVpp,
  kSchedule,
  kRecompute,
  kZero,
  kNoOverlapDp,
  kRankOrder,
  kAttention,
  kOverlapParamGather,
  kTpCommOverlap,
  kOptimizerOffload,
  kDpBucketParams,
};

struct LayoutFlagInfo {
  LayoutFlag id;
  const char* name;        // as declared, without "--": "tp"
  const char* field;       // the ParallelConfig field it sets ("tensor_parallel"), or "model"
  const char* value_name;  // "T"; nullptr for a switch
  const char* help;
};

// The declaration of `id`.
const LayoutFlagInfo& layout_flag(LayoutFlag id);

// One command's use of a layout flag: its default (none: the flag is optional) and, where the
// command means something more by it, its own value name or help.
struct LayoutFlagUse {
  LayoutFlag id;
  std::optional<std::string> fallback = std::nullopt;
  const char* help = nullptr;        // replaces the declared help
  const char* value_name = nullptr;  // replaces the declared value name (a switch gets a value)
};

// Declares the flags of `uses`, in that order, as text values (or switches).
void add_layout_flags(boost::program_options::options_description& d,
                      const std::vector<LayoutFlagUse>& uses);

// Reads --gpus --tp --pp --dp --mbs --gbs --vpp --schedule (default 1f1b, or interleaved with
// --vpp > 1) --recompute (and --attention where declared) into `config`, as simulate and train
// declare them (all with defaults);
// What --optimizer-offload's fraction is of, for its errors.
inline constexpr const char* kOptimizerOffloadWhat = "the optimizer state offloaded";

// --sp and --no-sp may not both be given. sequence_parallel is left to the caller, whose defaults
// differ.
void read_layout_flags(const boost::program_options::variables_map& vm,
                       spec::ParallelConfig& config);

// The flag a field of the spec layer's errors was parsed from: "--tp" for "tensor_parallel",
// "--model" for "model" and every ModelSpec field, "--hw" for the hardware's ("gpu.peak_bf16");
// empty for a field no flag sets.
// The `mpsim simulate` command line that simulates `config` (validated) of `model` on `hardware`
// (names or paths as the user gave them): every layout flag written out.
std::string simulate_command(const std::string& model, const std::string& hardware,
                             const spec::ParallelConfig& config);

std::string flag_of_field(const std::string& field);

// `error` as a FlagError naming the flag of its field ("--tp: <message>"), or naming the field
// itself when no flag sets it (the text is then error.what() unchanged).
spec::FlagError flag_error_from(const spec::FieldError& error);

// spec::validate_parallel_config(), its field errors named by flag.
spec::ParallelConfig checked_layout(const spec::ParallelConfig& config,
                                    const spec::ModelSpec& model, const spec::Hardware& hardware);

}  // namespace mpsim::cli
