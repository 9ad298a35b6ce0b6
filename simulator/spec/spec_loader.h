// Loading and validating specs.
//
// Model specs and hardware profiles are protobuf text format files. A name without a slash or
// extension ("gpt3-175b", "h100-sxm") is looked up as models/<name>.textproto or
// hw_profiles/<name>.textproto under $MPSIM_DATA_DIR, then the current directory, then the
// source tree mpsim was built from. Every failure throws SpecError with the file, the line (of
// the offending field where the parser can tell it) and what was expected.
//
// Parallel configs come from flags; validate_parallel_config() checks them against the model and
// hardware and throws FlagError naming the flag and the constraint (heads divisible by TP, layers
// by PP x VPP, GPUs = TP x PP x DP, global batch divisible by micro-batch x DP, ...).
#pragma once

#include <string>

#include "simulator/spec/hardware.h"
#include "simulator/spec/hardware_profile.pb.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"
#include "simulator/spec/spec_error.h"

namespace mpsim::spec {

// Resolves a model or profile name to a file path (see above); throws SpecError if none exists.
std::string resolve_spec_path(const std::string& name_or_path, const std::string& folder);

// Parses and validates; fills defaults (ffn_hidden_size = 4h, num_kv_heads = heads).
ModelSpec load_model_spec(const std::string& name_or_path);
ModelSpec parse_model_spec(const std::string& text, const std::string& file_for_errors);

HardwareProfile load_hardware_profile(const std::string& name_or_path);
HardwareProfile parse_hardware_profile(const std::string& text, const std::string& file_for_errors);
// Converts to SI units; file_for_errors names the profile in messages.
Hardware to_hardware(const HardwareProfile& profile, const std::string& file_for_errors);
Hardware load_hardware(const std::string& name_or_path);

// Fills defaults (data_parallel from num_gpus, schedule 1F1B or interleaved when vpp > 1,
// recompute none, rank order TP_DP_PP, bucket 40M params) and checks every constraint.
// Throws FlagError naming the flag ("--tp", "--gbs", ...).
ParallelConfig validate_parallel_config(const ParallelConfig& config, const ModelSpec& model,
                                        const Hardware& hardware);

}  // namespace mpsim::spec
