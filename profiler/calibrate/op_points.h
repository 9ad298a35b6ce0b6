// Forwarding header: the calibration fit moved to calibration/fit (this header to
// calibration/fit/op_points.h). Kept so that `mpsim validate` (tools/mpsim/validate_command.cpp)
// builds unchanged; remove once it includes the new path.
#pragma once

#include "calibration/fit/op_points.h"
