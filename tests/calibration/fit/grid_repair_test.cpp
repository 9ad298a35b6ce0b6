// Completing measured grids by dropping axis values (grid_repair.h): complete grids are kept as
// they are; a hole costs the axis value with the most missing combinations, ties the larger.
#include "calibration/fit/grid_repair.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace mpsim::calibration {
namespace {

using Keys = std::vector<double>;

spec::CalibratedTable table(const std::vector<Keys>& points) {
  spec::CalibratedTable t;
  t.set_op("gemm.bf16.fwd");
  for (const char* name : {"m", "n", "k"}) t.add_key_names(name);
  for (const Keys& keys : points) {
    spec::CalibratedPoint* p = t.add_points();
    for (double k : keys) p->add_key(k);
    p->set_seconds(1e-6 * keys[0]);
  }
  return t;
}

std::vector<Keys> full(const Keys& m, const Keys& n, const Keys& k) {
  std::vector<Keys> points;
  for (double a : m)
    for (double b : n)
      for (double c : k) points.push_back({a, b, c});
  return points;
}

std::set<Keys> keys_of(const spec::CalibratedTable& t) {
  std::set<Keys> out;
  for (const auto& p : t.points()) out.emplace(p.key().begin(), p.key().end());
  return out;
}

TEST(GridRepairTest, CompleteGridIsKept) {
  spec::CalibratedTable t = table(full({1, 2}, {3, 4, 5}, {6, 7}));
  const spec::CalibratedTable before = t;
  EXPECT_TRUE(complete_grid(t).empty());
  EXPECT_EQ(t.SerializeAsString(), before.SerializeAsString());
}

// One missing point, (2, 5, 7): each of m=2, n=5, k=7 misses one combination; the largest value
// is dropped: k = 7 (values tie at one missing each: 7 > 5 > 2).
TEST(GridRepairTest, OneHoleDropsTheLargestValueThroughIt) {
  std::vector<Keys> points = full({1, 2}, {3, 4, 5}, {6, 7});
  std::erase(points, Keys{2, 5, 7});
  spec::CalibratedTable t = table(points);
  EXPECT_EQ(complete_grid(t),
            std::vector<std::string>{"k=7 (1 of 6 combinations missing, 5 points dropped)"});
  const std::vector<Keys> left = full({1, 2}, {3, 4, 5}, {6});
  EXPECT_EQ(keys_of(t), (std::set<Keys>(left.begin(), left.end())));
}

// The bench skipping every shape with m = 16 and n >= 4 (too large): m = 16 misses the most.
TEST(GridRepairTest, TheValueWithTheMostHolesGoes) {
  std::vector<Keys> points = full({4, 8, 16}, {1, 2, 4, 8}, {1, 2});
  std::erase_if(points, [](const Keys& x) { return x[0] == 16 && x[1] >= 4; });
  spec::CalibratedTable t = table(points);
  EXPECT_EQ(complete_grid(t),
            std::vector<std::string>{"m=16 (4 of 8 combinations missing, 4 points dropped)"});
  EXPECT_EQ(t.points_size(), 2 * 4 * 2);
}

TEST(GridRepairTest, PointsWithTheWrongKeyCountGo) {
  spec::CalibratedTable t = table(full({1, 2}, {3, 4}, {5, 6}));
  t.mutable_points(0)->mutable_key()->RemoveLast();
  const std::vector<std::string> dropped = complete_grid(t);
  ASSERT_FALSE(dropped.empty());
  EXPECT_EQ(dropped.front(), "1 point(s) without 3 keys");
  // Then (1, 3, 5) is a hole; m=1, n=3 and k=5 miss one each and k=5, the largest, goes.
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_EQ(dropped[1], "k=5 (1 of 4 combinations missing, 3 points dropped)");
  EXPECT_EQ(t.points_size(), 4);
}

}  // namespace
}  // namespace mpsim::calibration
