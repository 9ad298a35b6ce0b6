#include "executor/core/p2p_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace mpsim::executor {
namespace {

using schedule::PipelineSchedule;
using schedule::PipelineStep;

std::string label(const PipelineSchedule& s) {
  return std::string(s.name()) + " p=" + std::to_string(s.stages()) +
         " m=" + std::to_string(s.micro_batches()) + " v=" + std::to_string(s.chunks());
}

// The schedules the trainer runs, over the sizes of the brief (interleaving needs m % p == 0).
std::vector<std::unique_ptr<PipelineSchedule>> all_schedules() {
  std::vector<std::unique_ptr<PipelineSchedule>> out;
  for (int p : {2, 3, 4, 8}) {
    for (int m : {1, 2, 3, 4, 7, 8, 16}) {
      out.push_back(schedule::make_gpipe_schedule(p, m));
      out.push_back(schedule::make_one_f_one_b_schedule(p, m));
    }
  }
  for (int p : {2, 3, 4, 8}) {
    for (int v : {2, 3, 4}) {
      for (int k : {1, 2, 3, 4}) out.push_back(schedule::make_interleaved_schedule(p, k * p, v));
    }
  }
  return out;
}

// Index of the step (forward?, micro-batch, chunk) in rank `rank`'s list.
int step_index(const PipelineSchedule& s, int rank, bool forward, int micro_batch, int chunk) {
  const auto steps = s.steps(rank);
  const auto it = std::find(steps.begin(), steps.end(), PipelineStep{forward, micro_batch, chunk});
  return it == steps.end() ? -1 : static_cast<int>(it - steps.begin());
}

// Group g of a plan, g == before.size() being the group after the last step.
const P2pGroup& group_at(const StagePlan& plan, int g) {
  return g < static_cast<int>(plan.before.size()) ? plan.before[g] : plan.after;
}

TEST(P2pPlan, EveryScheduleRunsWithoutDeadlockOrMismatch) {
  for (const auto& s : all_schedules()) EXPECT_EQ(check_p2p_plans(*s), "") << label(*s);
}

// (c): a send sits after the step producing its tensor, a recv before the step consuming it, and
// every peer is the rank of the neighbouring virtual stage.
TEST(P2pPlan, ReceivesPrecedeConsumersAndSendsFollowProducers) {
  for (const auto& s : all_schedules()) {
    const int p = s->stages(), last_vs = p * s->chunks() - 1;
    const auto plans = make_p2p_plans(*s);
    ASSERT_EQ(plans.size(), static_cast<size_t>(p));
    for (int r = 0; r < p; ++r) {
      ASSERT_EQ(plans[r].before.size(), s->steps(r).size()) << label(*s);
      for (int g = 0; g <= static_cast<int>(plans[r].before.size()); ++g) {
        for (const P2pTransfer& t : group_at(plans[r], g).transfers) {
          // Activations leave and enter through forwards, gradients through backwards.
          const int step = step_index(*s, r, t.activation, t.micro_batch, t.chunk);
          ASSERT_GE(step, 0) << label(*s);
          if (t.send) {
            EXPECT_GT(g, step) << label(*s) << " rank " << r;
          } else {
            EXPECT_LE(g, step) << label(*s) << " rank " << r;
          }
          const int vs = t.chunk * p + r;
          const int other = vs + (t.activation == t.send ? 1 : -1);
          ASSERT_TRUE(other >= 0 && other <= last_vs) << label(*s);
          EXPECT_EQ(t.peer, other % p) << label(*s);
        }
      }
    }
  }
}

// Every rank sends and receives m tensors per chunk boundary it touches, and every boundary
// tensor (kind, micro-batch, producing virtual stage) crosses exactly once.
TEST(P2pPlan, EachTensorCrossesOnce) {
  for (const auto& s : all_schedules()) {
    const int p = s->stages(), m = s->micro_batches(), v = s->chunks(), last_vs = p * v - 1;
    const auto plans = make_p2p_plans(*s);
    std::multiset<std::tuple<bool, int, int>> sent, received;  // (activation, mb, producer vs)
    for (int r = 0; r < p; ++r) {
      int expected_sends = 0, expected_recvs = 0;
      for (int c = 0; c < v; ++c) {
        const int vs = c * p + r;
        expected_sends += m * ((vs < last_vs) + (vs > 0));
        expected_recvs += m * ((vs > 0) + (vs < last_vs));
      }
      int sends = 0, recvs = 0;
      for (int g = 0; g <= static_cast<int>(plans[r].before.size()); ++g) {
        for (const P2pTransfer& t : group_at(plans[r], g).transfers) {
          const int vs = t.chunk * p + r;
          if (t.send) {
            ++sends;
            sent.insert({t.activation, t.micro_batch, vs});
          } else {
            ++recvs;
            received.insert({t.activation, t.micro_batch, t.activation ? vs - 1 : vs + 1});
          }
        }
      }
      EXPECT_EQ(sends, expected_sends) << label(*s) << " rank " << r;
      EXPECT_EQ(recvs, expected_recvs) << label(*s) << " rank " << r;
    }
    std::multiset<std::tuple<bool, int, int>> expected;
    for (int mb = 0; mb < m; ++mb) {
      for (int vs = 0; vs < last_vs; ++vs) expected.insert({true, mb, vs});
      for (int vs = 1; vs <= last_vs; ++vs) expected.insert({false, mb, vs});
    }
    EXPECT_EQ(sent, expected) << label(*s);
    EXPECT_EQ(received, expected) << label(*s);
  }
}

// GPipe and 1F1B get Megatron-LM's grouping exactly: each send right after its producer, each
// recv right before its consumer (send_forward_recv_backward / send_backward_recv_forward).
TEST(P2pPlan, GpipeAndOneFOneBUseMegatronPairs) {
  for (const auto& s : all_schedules()) {
    if (s->chunks() > 1) continue;
    const auto plans = make_p2p_plans(*s);
    for (int r = 0; r < s->stages(); ++r) {
      for (int g = 0; g <= static_cast<int>(plans[r].before.size()); ++g) {
        for (const P2pTransfer& t : group_at(plans[r], g).transfers) {
          const int step = step_index(*s, r, t.activation, t.micro_batch, t.chunk);
          EXPECT_EQ(g, t.send ? step + 1 : step) << label(*s) << " rank " << r;
        }
      }
    }
  }
}

// 1F1B, p = 2, m = 3, written out by hand. Rank 0 runs F0 F1 B0 F2 B1 B2, rank 1 F0 B0 F1 B1 F2 B2.
TEST(P2pPlan, OneFOneBTwoStagesByHand) {
  const auto s = schedule::make_one_f_one_b_schedule(2, 3);
  const auto plans = make_p2p_plans(*s);
  using G = std::vector<P2pTransfer>;
  const P2pTransfer send_act0{true, true, 1, 0, 0}, send_act1{true, true, 1, 1, 0},
      send_act2{true, true, 1, 2, 0}, recv_grad0{false, false, 1, 0, 0},
      recv_grad1{false, false, 1, 1, 0}, recv_grad2{false, false, 1, 2, 0};
  const P2pTransfer recv_act0{false, true, 0, 0, 0}, recv_act1{false, true, 0, 1, 0},
      recv_act2{false, true, 0, 2, 0}, send_grad0{true, false, 0, 0, 0},
      send_grad1{true, false, 0, 1, 0}, send_grad2{true, false, 0, 2, 0};
  // Sends and recvs of one group go opposite ways, so their order inside the group is free.
  const auto sorted = [](G g) {
    std::sort(g.begin(), g.end(), [](const P2pTransfer& a, const P2pTransfer& b) {
      return std::make_tuple(a.send, a.activation, a.micro_batch) <
             std::make_tuple(b.send, b.activation, b.micro_batch);
    });
    return g;
  };
  const std::vector<G> rank0 = {
      {}, {send_act0}, {send_act1, recv_grad0}, {}, {send_act2, recv_grad1}, {recv_grad2}, {}};
  const std::vector<G> rank1 = {
      {recv_act0}, {}, {send_grad0, recv_act1}, {}, {send_grad1, recv_act2}, {}, {send_grad2}};
  for (int g = 0; g < 7; ++g) {
    EXPECT_EQ(sorted(group_at(plans[0], g).transfers), sorted(rank0[g])) << "rank 0 group " << g;
    EXPECT_EQ(sorted(group_at(plans[1], g).transfers), sorted(rank1[g])) << "rank 1 group " << g;
  }
  EXPECT_EQ(make_p2p_plan(*s, 1).before.size(), 6u);
  EXPECT_EQ(make_p2p_plan(*s, 1).after.transfers, G{send_grad2});
}

// The rule the plan replaces: send of step i and recv of step i+1 in one group, always.
std::vector<StagePlan> naive_merge(const PipelineSchedule& s) {
  const int p = s.stages(), last_vs = p * s.chunks() - 1;
  std::vector<StagePlan> plans(p);
  for (int r = 0; r < p; ++r) {
    const auto steps = s.steps(r);
    plans[r].before.resize(steps.size());
    auto group = [&](int g) -> P2pGroup& {
      return g < static_cast<int>(steps.size()) ? plans[r].before[g] : plans[r].after;
    };
    for (int i = 0; i < static_cast<int>(steps.size()); ++i) {
      const PipelineStep& st = steps[i];
      const int vs = st.chunk * p + r;
      const int in_vs = st.forward ? vs - 1 : vs + 1, out_vs = st.forward ? vs + 1 : vs - 1;
      if (in_vs >= 0 && in_vs <= last_vs) {
        group(i).transfers.push_back({false, st.forward, in_vs % p, st.micro_batch, st.chunk});
      }
      if (out_vs >= 0 && out_vs <= last_vs) {
        group(i + 1).transfers.push_back({true, st.forward, out_vs % p, st.micro_batch, st.chunk});
      }
    }
  }
  return plans;
}

TEST(P2pPlan, NaiveMergeIsFineWithoutInterleavingButNotWith) {
  const auto one_f_one_b = schedule::make_one_f_one_b_schedule(4, 8);
  EXPECT_EQ(check_plans(naive_merge(*one_f_one_b), *one_f_one_b), "");
  // Interleaved: every rank, rank 0 included (its second chunk), sends a gradient to its previous
  // rank, which is itself waiting to send one: a ring of sends.
  const auto interleaved = schedule::make_interleaved_schedule(4, 8, 2);
  const std::string msg = check_plans(naive_merge(*interleaved), *interleaved);
  EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
  for (int r = 0; r < 4; ++r) {
    EXPECT_NE(msg.find("rank " + std::to_string(r) + " waits"), std::string::npos) << msg;
  }
  const auto two = schedule::make_interleaved_schedule(2, 4, 2);
  EXPECT_NE(check_plans(naive_merge(*two), *two), "");
}

// GPipe, p = 2, m = 2: both ranks run F0 F1 B0 B1.
std::vector<StagePlan> gpipe_two_by_two(std::vector<std::vector<P2pTransfer>> rank0,
                                        std::vector<std::vector<P2pTransfer>> rank1) {
  std::vector<StagePlan> plans(2);
  for (int g = 0; g < 5; ++g) {
    (g < 4 ? plans[0].before.emplace_back() : plans[0].after).transfers = rank0[g];
    (g < 4 ? plans[1].before.emplace_back() : plans[1].after).transfers = rank1[g];
  }
  return plans;
}

TEST(P2pPlan, DetectsAReceivePostedTooEarly) {
  const auto s = schedule::make_gpipe_schedule(2, 2);
  const P2pTransfer send_act0{true, true, 1, 0, 0}, send_act1{true, true, 1, 1, 0},
      recv_grad0{false, false, 1, 0, 0}, recv_grad1{false, false, 1, 1, 0};
  const P2pTransfer recv_act0{false, true, 0, 0, 0}, recv_act1{false, true, 0, 1, 0},
      send_grad0{true, false, 0, 0, 0}, send_grad1{true, false, 0, 1, 0};
  // Good: Megatron's pairs.
  EXPECT_EQ(
      check_plans(gpipe_two_by_two({{}, {send_act0}, {send_act1, recv_grad0}, {recv_grad1}, {}},
                                   {{recv_act0}, {recv_act1}, {}, {send_grad0}, {send_grad1}}),
                  *s),
      "");
  // Rank 0 waits for gradient 0 before sending activation 1, which rank 1 needs first.
  const std::string msg =
      check_plans(gpipe_two_by_two({{}, {send_act0, recv_grad0}, {send_act1}, {recv_grad1}, {}},
                                   {{recv_act0}, {recv_act1}, {}, {send_grad0}, {send_grad1}}),
                  *s);
  EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rank 0 waits in before[1] (F mb 1 chunk 0) to recv gradient mb 0"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("rank 1 waits in before[1] (F mb 1 chunk 0) to recv activation mb 1"),
            std::string::npos)
      << msg;
}

// 1F1B, p = 2, m = 2, with the steady-state pair split over two groups: rank 0 (F0 F1 B0 B1) waits
// for gradient 0 before sending activation 1; rank 1 (F0 B0 F1 B1) waits for activation 1 before
// sending gradient 0.
TEST(P2pPlan, DetectsASplitPair) {
  const auto s = schedule::make_one_f_one_b_schedule(2, 2);
  std::vector<StagePlan> plans(2);
  plans[0].before = {{},
                     {{{true, true, 1, 0, 0}}},
                     {{{false, false, 1, 0, 0}}},
                     {{{true, true, 1, 1, 0}, {false, false, 1, 1, 0}}}};
  plans[1].before = {
      {{{false, true, 0, 0, 0}}}, {{{false, true, 0, 1, 0}}}, {{{true, false, 0, 0, 0}}}, {}};
  plans[1].after = {{{true, false, 0, 1, 0}}};
  const std::string msg = check_plans(plans, *s);
  EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rank 0 waits"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rank 1 waits"), std::string::npos) << msg;
}

TEST(P2pPlan, DetectsTensorsMatchedOutOfOrder) {
  const auto s = schedule::make_gpipe_schedule(2, 2);
  auto plans = make_p2p_plans(*s);
  ASSERT_EQ(check_plans(plans, *s), "");
  // Rank 1 posts both activation receives before F0, in the wrong order: the tag-less first send
  // (activation 0) would land in the buffer meant for activation 1.
  plans[1].before[0].transfers = {{false, true, 0, 1, 0}, {false, true, 0, 0, 0}};
  plans[1].before[1].transfers.clear();
  const std::string msg = check_plans(plans, *s);
  EXPECT_NE(msg.find("mismatch between rank 0 and rank 1: send #0"), std::string::npos) << msg;
}

TEST(P2pPlan, DetectsMissingMisplacedAndMisdirectedTransfers) {
  const auto s = schedule::make_one_f_one_b_schedule(3, 4);
  const auto good = make_p2p_plans(*s);
  ASSERT_EQ(check_plans(good, *s), "");

  auto missing = good;  // rank 2 never sends gradient 3
  auto& after = missing[2].after.transfers;
  ASSERT_FALSE(after.empty());
  after.pop_back();
  EXPECT_NE(check_plans(missing, *s).find("is sent 0 times"), std::string::npos);

  auto late = good;  // rank 1 receives activation 0 only after F0
  auto& first = late[1].before[0].transfers;
  ASSERT_EQ(first.size(), 1u);
  late[1].before[1].transfers.push_back(first[0]);
  first.clear();
  EXPECT_NE(check_plans(late, *s).find("posted after step 0 consumes it"), std::string::npos)
      << check_plans(late, *s);

  auto early = good;  // rank 0 sends activation 0 before F0 produced it
  early[0].before[0].transfers = early[0].before[1].transfers;
  early[0].before[1].transfers.clear();
  EXPECT_NE(check_plans(early, *s).find("posted before step 0 produces it"), std::string::npos)
      << check_plans(early, *s);

  auto wrong_peer = good;
  wrong_peer[1].before[0].transfers[0].peer = 2;
  EXPECT_NE(check_plans(wrong_peer, *s).find("the peer of virtual stage 1 is rank 0"),
            std::string::npos)
      << check_plans(wrong_peer, *s);

  auto short_plan = good;
  short_plan[0].before.pop_back();
  EXPECT_NE(check_plans(short_plan, *s), "");
  EXPECT_NE(check_plans({good[0], good[1]}, *s), "");
}

// A schedule whose own order cannot run: rank 0 runs B0 before F1, but rank 1 runs F1 before B0.
class CyclicSchedule final : public PipelineSchedule {
 public:
  CyclicSchedule() : PipelineSchedule(2, 2, 1) {}
  std::string_view name() const override { return "cyclic"; }
  std::vector<PipelineStep> steps(int stage) const override {
    if (stage == 0) return {{true, 0, 0}, {false, 0, 0}, {true, 1, 0}, {false, 1, 0}};
    return {{true, 0, 0}, {true, 1, 0}, {false, 0, 0}, {false, 1, 0}};
  }
};

TEST(P2pPlan, RejectsBadSchedulesAndStages) {
  const CyclicSchedule cyclic;
  EXPECT_THROW(make_p2p_plans(cyclic), std::invalid_argument);
  EXPECT_NE(check_p2p_plans(cyclic).find("waits on itself"), std::string::npos);
  const auto s = schedule::make_one_f_one_b_schedule(4, 4);
  EXPECT_THROW(make_p2p_plan(*s, 4), std::invalid_argument);
  EXPECT_THROW(make_p2p_plan(*s, -1), std::invalid_argument);
  // One stage, no chunks: nothing to send.
  const auto single = schedule::make_one_f_one_b_schedule(1, 3);
  EXPECT_EQ(check_p2p_plans(*single), "");
  EXPECT_TRUE(make_p2p_plan(*single, 0).after.transfers.empty());
}

}  // namespace
}  // namespace mpsim::executor
