// The run mark: one NVTX mark every rank of `mpsim train` emits before its first iteration, whose
// message states the model and the parallel configuration the run trains, so that a database the
// run was profiled into (profiler/store) says what ran without its command line being parsed
// again. The message is the prefix kRunMarkPrefix followed by one JSON object:
//
//   mpsim/run/{"model":<ModelSpec>,"parallel":<ParallelConfig>}
//
// each field the protobuf message in protobuf's JSON mapping (proto field names). The model is
// the spec the trainer was given (before the executor drops dropout); the configuration is the
// validated one, data_parallel resolved. format_run_mark writes the message (the executor emits
// it, executor/cuda/run_mark_emit.h); parse_run_mark reads it back (calibration/runs).
//
// Failure: parse_run_mark returns nullopt for a text that does not start with the prefix and
// throws std::invalid_argument, saying what is wrong, for one that does but is not the JSON
// object above (unknown fields included). format_run_mark throws std::runtime_error only if
// protobuf cannot print a message (it does not for valid messages).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::executor {

inline constexpr std::string_view kRunMarkPrefix = "mpsim/run/";

struct RunMark {
  spec::ModelSpec model;
  spec::ParallelConfig parallel;
};

std::string format_run_mark(const spec::ModelSpec& model, const spec::ParallelConfig& parallel);

std::optional<RunMark> parse_run_mark(std::string_view text);

}  // namespace mpsim::executor
