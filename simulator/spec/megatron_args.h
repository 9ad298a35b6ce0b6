// Megatron-LM command lines in and out: the arguments of Megatron-LM's pretrain_gpt.py read into
// a ModelSpec and a ParallelConfig, and a configuration written back as those arguments.
//
// Reading. The text is an argument list as a shell passes it: words split at white space, `#`
// comments to the end of a line, backslash-newline continuations, single and double quotes,
// `--flag=value`; the brackets of a bash array (`ARGS=(`, `)`) and array expansions
// (`${ARGS[@]}`) are skipped, so a launcher script's argument arrays can be pasted as they are.
// Every flag lands in one of four lists, none silently dropped:
//   modelled     it sets a field (the table in megatron_args.cpp says which);
//   not modelled it changes speed or memory in a way mpsim does not model (yet), e.g.
//                the FP8 recipe's details;
//   no effect    it does not change one iteration's time or memory (learning rate, data paths,
//                logging, checkpointing);
//   unknown      mpsim does not know it (reported by name);
// and a word that is no flag's value is listed too. Megatron-LM's defaults apply to what is
// left out (LayerNorm, GeLU, learned positions, tied embeddings, biases, dropout 0.1, fp32, no
// recompute, no overlap of the gradient reduction, flash attention through Transformer Engine).
// The GPU count is not among Megatron's flags: the caller gives it, or torchrun's
// --nproc_per_node x --nnodes in the text do.
//
// Errors (spec::SpecError naming the source, the line and the Megatron flag): a value that is not
// a number or not one of the allowed words, a value mpsim cannot represent (--rotary-percent
// other than 1, --kv-channels other than hidden / heads, recomputing some layers only, context
// parallelism, mixture of experts), two flags that contradict each other (both named), a missing
// required flag. Constraints between fields are left to spec::validate_parallel_config (its
// FieldError can be named by Megatron flag with megatron_flag_of_field).
//
// Writing. megatron_args() gives the flags that make Megatron-LM run a configuration, or nothing
// where Megatron-LM cannot (ZeRO-2/3, GPipe, a DP gradient bucket it cannot express);
// framework_for() names the framework that can. The flags read back into the same
// configuration (tested on every row of a sweep).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::spec {

struct MegatronNotes {
  std::vector<std::string> not_modelled;  // flags as written, e.g. "--fp8-recipe"
  std::vector<std::string> no_effect;
  std::vector<std::string> unknown;
  std::vector<std::string> stray_words;  // words no flag took as its value
  std::vector<std::string> adjusted;     // sentences: what was read differently from the text
};

struct MegatronRun {
  ModelSpec model;
  ParallelConfig config;  // not yet validated (spec::validate_parallel_config)
  MegatronNotes notes;
};

// `source` names the text in errors: a file path, or e.g. "--megatron-args". `gpus`: the GPU
// count, or 0 to take it from torchrun's flags in the text (an error when they are absent).
MegatronRun parse_megatron_args(const std::string& text, const std::string& source, int64_t gpus);

// The Megatron-LM flag a ModelSpec or ParallelConfig field is read from ("tensor_parallel" ->
// "--tensor-model-parallel-size"), or "" for a field no flag sets (num_gpus, data_parallel).
std::string megatron_flag_of_field(const std::string& field);

// The pretrain_gpt.py flags of a validated configuration, one line, or std::nullopt when
// Megatron-LM cannot run it.
std::optional<std::string> megatron_args(const ModelSpec& model, const ParallelConfig& config);

// "megatron-lm" where megatron_args() gives flags; otherwise the framework that runs the
// configuration: "deepspeed" (ZeRO-2), "deepspeed-or-fsdp" (ZeRO-3), "gpipe" (the GPipe
// schedule: torchgpipe, PiPPy).
std::string framework_for(const ParallelConfig& config);

}  // namespace mpsim::spec
