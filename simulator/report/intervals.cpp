#include "simulator/report/intervals.h"

#include <algorithm>
#include <cstddef>

namespace mpsim::report {

std::vector<Interval> merged(std::vector<Interval> intervals) {
  std::sort(intervals.begin(), intervals.end(),
            [](const Interval& a, const Interval& b) { return a.start < b.start; });
  std::vector<Interval> out;
  for (const Interval& i : intervals) {
    if (i.end <= i.start) continue;
    if (!out.empty() && i.start <= out.back().end) {
      out.back().end = std::max(out.back().end, i.end);
    } else {
      out.push_back(i);
    }
  }
  return out;
}

double total_length(const std::vector<Interval>& disjoint) {
  double sum = 0;
  for (const Interval& i : disjoint) sum += i.end - i.start;
  return sum;
}

double difference_length(const std::vector<Interval>& a, const std::vector<Interval>& b) {
  double out = 0;
  std::size_t j = 0;
  for (const Interval& i : a) {
    double cursor = i.start;
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

}  // namespace mpsim::report
