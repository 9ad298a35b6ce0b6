// Time intervals on one timeline: their union, its length, the length of a difference, and
// clipping to a window. Shared by the simulator's breakdown (seconds, double), the validation's
// op-kind accounting (seconds) and the profiler's GPU activity summary (ns, int64_t: CUPTI
// timestamps exceed the 2^53 a double holds exactly). Pure functions, header-only; nothing fails.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace mpsim::common {

// The half-open interval [start, end); empty when end <= start.
template <class T>
struct BasicInterval {
  T start = 0;
  T end = 0;
};
using Interval = BasicInterval<double>;

// The union of `intervals` as disjoint intervals sorted by start; empty intervals are dropped.
template <class T>
std::vector<BasicInterval<T>> merged(std::vector<BasicInterval<T>> intervals) {
  std::sort(intervals.begin(), intervals.end(),
            [](const BasicInterval<T>& a, const BasicInterval<T>& b) { return a.start < b.start; });
  std::vector<BasicInterval<T>> out;
  for (const BasicInterval<T>& i : intervals) {
    if (i.end <= i.start) continue;
    if (!out.empty() && i.start <= out.back().end) {
      out.back().end = std::max(out.back().end, i.end);
    } else {
      out.push_back(i);
    }
  }
  return out;
}

// Summed length of disjoint intervals.
template <class T>
T total_length(const std::vector<BasicInterval<T>>& disjoint) {
  T sum = 0;
  for (const BasicInterval<T>& i : disjoint) sum += i.end - i.start;
  return sum;
}

// Length of a \ b, both disjoint and sorted (as merged() returns them).
template <class T>
T difference_length(const std::vector<BasicInterval<T>>& a,
                    const std::vector<BasicInterval<T>>& b) {
  T out = 0;
  std::size_t j = 0;
  for (const BasicInterval<T>& i : a) {
    T cursor = i.start;
    while (j < b.size() && b[j].end <= cursor) ++j;
    std::size_t k = j;
    while (k < b.size() && b[k].start < i.end) {
      if (b[k].start > cursor) out += b[k].start - cursor;
      cursor = std::max(cursor, b[k].end);
      ++k;
    }
    if (cursor < i.end) out += i.end - cursor;
  }
  return out;
}

// Each interval cut to [lo, hi); those left empty stay (merged() drops them).
template <class T>
std::vector<BasicInterval<T>> clipped(std::vector<BasicInterval<T>> intervals, T lo, T hi) {
  for (BasicInterval<T>& i : intervals) {
    i.start = std::max(i.start, lo);
    i.end = std::min(i.end, hi);
  }
  return intervals;
}

}  // namespace mpsim::common
