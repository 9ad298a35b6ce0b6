// The median of a sample, the one median of the project's analyses and fits: its middle value,
// or the mean of the two middle values for an even count; 0 for an empty sample. Pure.
#pragma once

#include <vector>

namespace mpsim::common {

double median(std::vector<double> values);

}  // namespace mpsim::common
