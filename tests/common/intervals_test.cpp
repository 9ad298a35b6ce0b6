// Intervals: union, lengths, difference and clipping, in seconds (double) and in ns (int64_t,
// exact beyond 2^53), against lengths worked out by hand in the comments.
#include "common/intervals.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace mpsim::common {
namespace {

TEST(Intervals, MergedIsTheSortedUnionWithoutEmptyIntervals) {
  // [5,7) and [6,9) overlap; [1,2) and [2,3) touch; [4,4) and [8,3) are empty.
  const std::vector<Interval> u =
      merged(std::vector<Interval>{{5, 7}, {2, 3}, {4, 4}, {6, 9}, {1, 2}, {8, 3}});
  ASSERT_EQ(u.size(), 2u);
  EXPECT_DOUBLE_EQ(u[0].start, 1);
  EXPECT_DOUBLE_EQ(u[0].end, 3);
  EXPECT_DOUBLE_EQ(u[1].start, 5);
  EXPECT_DOUBLE_EQ(u[1].end, 9);
  EXPECT_DOUBLE_EQ(total_length(u), 2 + 4);
  EXPECT_TRUE(merged(std::vector<Interval>{}).empty());
}

TEST(Intervals, DifferenceLengthCountsWhatBDoesNotCover) {
  // a = [0,10) ∪ [20,30); b = [2,4) ∪ [8,22) ∪ [25,26): a \ b = [0,2) [4,8) [22,25) [26,30).
  const std::vector<Interval> a = merged(std::vector<Interval>{{0, 10}, {20, 30}});
  const std::vector<Interval> b = merged(std::vector<Interval>{{2, 4}, {8, 22}, {25, 26}});
  EXPECT_DOUBLE_EQ(difference_length(a, b), 2 + 4 + 3 + 4);
  EXPECT_DOUBLE_EQ(difference_length(b, a), 10);  // [10,20)
  EXPECT_DOUBLE_EQ(difference_length(a, {}), 20);
  EXPECT_DOUBLE_EQ(difference_length({}, b), 0);
}

TEST(Intervals, ClippedCutsToTheWindowAndKeepsTheEmptyOnes) {
  const std::vector<Interval> c =
      clipped(std::vector<Interval>{{-5, 3}, {8, 20}, {30, 40}}, 0.0, 10.0);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_DOUBLE_EQ(c[0].start, 0);
  EXPECT_DOUBLE_EQ(c[0].end, 3);
  EXPECT_DOUBLE_EQ(c[1].end, 10);
  EXPECT_LE(c[2].end, c[2].start);  // outside the window: empty, dropped by merged()
  EXPECT_DOUBLE_EQ(total_length(merged(c)), 3 + 2);
}

TEST(Intervals, Int64NanosecondsStayExactBeyondADoublesMantissa) {
  using Ns = BasicInterval<int64_t>;
  const int64_t t = int64_t{1} << 60;  // a CUPTI timestamp's magnitude
  const std::vector<Ns> u = merged(std::vector<Ns>{{t + 3, t + 4}, {t, t + 1}, {t + 1, t + 2}});
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(total_length(u), 3);
  EXPECT_EQ(difference_length(u, merged(std::vector<Ns>{{t + 1, t + 3}})), 2);
}

}  // namespace
}  // namespace mpsim::common
