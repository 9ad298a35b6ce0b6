// Text helpers: number formatting, joining, lower-casing, trimming and replacing.
#include "common/text.h"

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mpsim::common {
namespace {

TEST(Text, PrintfStringFormatsAnyLength) {
  EXPECT_EQ(printf_string("%.3f ms  (%.1f %%)", 12.3456, 42.04), "12.346 ms  (42.0 %)");
  const std::string long_text(1000, 'x');
  EXPECT_EQ(printf_string("<%s>", long_text.c_str()), "<" + long_text + ">");
  EXPECT_EQ(printf_string("%s", ""), "");
}

TEST(Text, FixedAndShortest) {
  EXPECT_EQ(fixed(2.345, 1), "2.3");
  EXPECT_EQ(fixed(1000, 0), "1000");
  EXPECT_EQ(fixed(-0.5, 2), "-0.50");
  EXPECT_EQ(shortest(2), "2");
  EXPECT_EQ(shortest(2.5), "2.5");
  EXPECT_EQ(shortest(0.1), "0.1");
  EXPECT_EQ(shortest(1e-7), "1e-07");
}

TEST(Text, JoinTakesStringsAndViews) {
  EXPECT_EQ(join(std::vector<std::string>{"a", "b", "c"}, ", "), "a, b, c");
  const std::vector<std::string_view> views = {"x"};
  EXPECT_EQ(join(std::span<const std::string_view>(views), " "), "x");
  EXPECT_EQ(join(std::vector<std::string>{}, ","), "");
}

TEST(Text, LowerTrimReplace) {
  EXPECT_EQ(lower("NCCL AllReduce_Sum 8B"), "nccl allreduce_sum 8b");
  EXPECT_EQ(trim("  \tkey: value \r\n"), "key: value");
  EXPECT_EQ(trim(" \t "), "");
  EXPECT_EQ(trim("a b", " "), "a b");
  std::string path = "run.%r.%r.sqlite";
  replace_all(path, "%r", "12");
  EXPECT_EQ(path, "run.12.12.sqlite");
  std::string again = "aa";
  replace_all(again, "a", "aa");  // the inserted text is not searched again
  EXPECT_EQ(again, "aaaa");
}

}  // namespace
}  // namespace mpsim::common
