// Time intervals on one rank: their union and its length, shared by the simulator's breakdown
// (simulation.h) and the validation's op-kind accounting (validation/comparison.h). Pure.
#pragma once

#include <vector>

namespace mpsim::report {

struct Interval {
  double start = 0;
  double end = 0;
};

// The union of `intervals` as disjoint intervals sorted by start; empty intervals (end <= start)
// are dropped.
std::vector<Interval> merged(std::vector<Interval> intervals);

// Summed length of disjoint intervals.
double total_length(const std::vector<Interval>& disjoint);

// Length of a \ b, both disjoint and sorted (as merged() returns them).
double difference_length(const std::vector<Interval>& a, const std::vector<Interval>& b);

}  // namespace mpsim::report
