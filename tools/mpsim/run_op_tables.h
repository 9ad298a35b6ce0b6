// Forwarding header: learning op times from runs moved to calibration/runs/run_op_tables.h
// (namespace mpsim::calibration). Kept so that `mpsim validate` (validate_command.cpp) builds
// unchanged; remove once it includes the new header.
#pragma once

#include "calibration/runs/run_op_tables.h"

namespace mpsim::cli {

using calibration::measured_seconds_by_graph_rank;

}  // namespace mpsim::cli
