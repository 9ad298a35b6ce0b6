// Loading and validating specs.
//
// Model specs and hardware profiles are protobuf text format files. A name without a slash or
// extension ("gpt3-175b", "h100-sxm") is looked up as models/<name>.textproto or
// hw_profiles/<name>.textproto under the data roots of data_paths.h ($MPSIM_DATA_DIR, then the
// current directory, then the source tree mpsim was built from). Every failure throws SpecError
// with the file, the line (of the offending field where the parser can tell it) and what was
// expected.
//
// A ParallelConfig is built in memory (the `mpsim` commands fill it from their flags);
// validate_parallel_config() checks it against the model and hardware and throws FieldError
// naming the field to change and the constraint it breaks (heads divisible by TP, layers by
// PP x VPP, GPUs = TP x PP x DP, global batch divisible by micro-batch x DP, ...). The field is
// one of ParallelConfig's (num_gpus, tensor_parallel, pipeline_parallel, data_parallel,
// sequence_parallel, virtual_pipeline_stages, micro_batch_size, global_batch_size, schedule,
// recompute, zero_stage, rank_order, dp_bucket_params), also when a model number breaks the rule
// ("num_attention_heads (96) is not divisible by tp (5)" names tensor_parallel); for a model that
// cannot be used at all, one of ModelSpec's (num_layers, hidden_size, num_attention_heads,
// seq_length, vocab_size, num_kv_heads, ffn_hidden_size, dtype); for hardware without a peak for
// the model's dtype, the HardwareProfile path of that peak (gpu.peak_fp8). Callers that know
// where a field came from (a flag, a file) say so; this layer knows no flag names.
#pragma once

#include <string>

#include "simulator/spec/hardware.h"
#include "simulator/spec/hardware_profile.pb.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"
#include "simulator/spec/spec_error.h"

namespace mpsim::spec {

// Resolves a model or profile name to a file path (see above); throws SpecError if none exists,
// listing the paths tried and the names available. Defined in data_paths.cpp.
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
// Throws FieldError naming the field (see above: "tensor_parallel", "global_batch_size", ...).
ParallelConfig validate_parallel_config(const ParallelConfig& config, const ModelSpec& model,
                                        const Hardware& hardware);

}  // namespace mpsim::spec
