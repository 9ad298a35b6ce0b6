#include "simulator/graph/comm_groups.h"

#include <gtest/gtest.h>

#include "tests/test_models.h"

namespace mpsim::graph {
namespace {

Op collective(Group group) {
  Op op;
  op.kind = OpKind::kAllReduce;
  op.group = group;
  return op;
}

TEST(CommGroups, RanksAndNodeSpans) {
  // TP 4 x DP 2 x PP 2 on nodes of 4 GPUs (tp-dp-pp order): a TP group fills one node, a DP
  // group spans two, stages 0 and 1 of one (tp, dp) are 8 ranks apart.
  const spec::ParallelConfig c = testing::config(4, 2, 2, 1, 8);
  const CommGroups groups(c, /*all_ranks=*/false, /*gpus_per_node=*/4);
  const std::vector<RankCoord> ranks = groups.simulated_ranks();
  ASSERT_EQ(ranks.size(), 2u);  // one representative rank per stage
  EXPECT_EQ(ranks[1].global_rank, 8);
  EXPECT_EQ(ranks[1].node, 2);
  EXPECT_EQ(groups.tp_nodes(ranks[0]), 1);
  EXPECT_EQ(groups.dp_nodes(ranks[0]), 2);
  EXPECT_EQ(groups.stage_pair_nodes(ranks[0], 0, 1), 2);
  EXPECT_EQ(CommGroups(c, true, 4).simulated_ranks().size(), 16u);
}

// The k-th collective of a group links the k-th of every simulated member; a collective with
// one simulated member gets no id.
TEST(CommGroups, LinksTheKthCollectiveOfEachMember) {
  const spec::ParallelConfig c = testing::config(2, 1, 1, 1, 2);
  CommGroups all(c, /*all_ranks=*/true, 8);
  const std::vector<RankCoord> ranks = all.simulated_ranks();
  ASSERT_EQ(ranks.size(), 2u);
  std::vector<int32_t> ids[2];
  for (int r = 0; r < 2; ++r) {
    all.begin_rank(ranks[r]);
    for (int k = 0; k < 3; ++k) {
      Op op = collective(Group::kTp);
      all.link(op);
      ids[r].push_back(op.collective);
    }
  }
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_EQ(all.num_collectives(), 3);
  EXPECT_NE(ids[0][0], ids[0][1]);

  CommGroups representative(c, /*all_ranks=*/false, 8);
  representative.begin_rank(representative.simulated_ranks()[0]);
  Op op = collective(Group::kTp);
  representative.link(op);
  EXPECT_EQ(op.collective, -1);
  Op send = collective(Group::kPp);
  representative.link(send);
  EXPECT_EQ(send.collective, -1);
  EXPECT_EQ(representative.num_collectives(), 0);
}

}  // namespace
}  // namespace mpsim::graph
