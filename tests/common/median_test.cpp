// The median: middle value, mean of the two middle values, 0 when empty; order does not matter.
#include "common/median.h"

#include <gtest/gtest.h>

namespace mpsim::common {
namespace {

TEST(Median, OddCountIsTheMiddleValue) {
  EXPECT_DOUBLE_EQ(median({2000, 300, 1000}), 1000);
  EXPECT_DOUBLE_EQ(median({7}), 7);
}

TEST(Median, EvenCountIsTheMeanOfTheTwoMiddleValues) {
  EXPECT_DOUBLE_EQ(median({500, 100}), 300);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median({5, 5, 1, 9}), 5);
}

TEST(Median, EmptySampleIsZero) { EXPECT_DOUBLE_EQ(median({}), 0); }

}  // namespace
}  // namespace mpsim::common
