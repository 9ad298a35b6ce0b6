// Point-to-point plans for pipeline parallelism over NCCL. A pipeline rank exchanges activations
// (forward) and activation gradients (backward) with its neighbours, and NCCL gives no tags:
// between an ordered pair of ranks the k-th ncclSend meets the k-th ncclRecv, whatever tensor each
// meant. A group (ncclGroupStart/End) runs on the compute stream and completes only when every
// operation in it has met its partner, so a badly placed group either hangs the pipeline or, worse,
// delivers one micro-batch's activations as another's. A StagePlan says, for one rank, which
// transfers form the group posted before each compute step of the schedule and which the group
// posted after the last one; the plans of all ranks are built together, so they agree by
// construction.
//
// The rule. Megatron-LM posts the send of step i's output and the receive of step i+1's input as
// one group (send_forward_recv_backward, send_backward_recv_forward); done naively for the
// interleaved schedule that rule deadlocks (every rank, rank 0 included, starts by sending a
// gradient to a rank that first sends its own), and with two ranks activations and gradients
// share one tag-less pair, so only the posting order keeps them apart. So the plan places
// transfers by time instead:
//   1. Reference timeline: run the schedule with free communication, a forward taking 1 unit and a
//      backward 2 (the usual ratio; only the order of start times matters). start_r(i) is when step
//      i of rank r starts; it strictly increases with i.
//   2. Each transfer, produced by step i on rank A and consumed by step j on rank B, gets a meeting
//      time tau in (start_A(i), start_B(j)]: tau = min(start_A(i+1), start_B(j)) when that is
//      later than start_B(j-1) (then the send sits right after its producer and the receive right
//      before its consumer: Megatron's pairs, which every GPipe and 1F1B transfer gets in the
//      tests); otherwise tau = start_B(j) (receive right before the consumer, the send posted
//      later on A). A missing step i+1 or j-1 counts as +infinity or -infinity.
//   3. On every rank, the group before step g holds the transfers with tau in
//      (start(g-1), start(g)]; the group after the last step those with tau > start(last). Inside
//      a group, transfers are sorted by (tau, kind, micro-batch, virtual stage).
// Why this is safe. (b) FIFO: the groups of a rank cover disjoint, increasing ranges of tau, so on
// every ordered pair both sides post their transfers in increasing (tau, kind, micro-batch,
// virtual stage) order: the k-th send and the k-th receive carry the same tensor. (c) tau >
// start_A(i) puts the send after its producer; tau <= start_B(j) puts the receive at or before
// its consumer. (a) No deadlock: give the group before step g on rank r the label start_r(g-1)
// (minus infinity for g = 0). Posting the next group needs this one to complete, i.e. this one
// and each partner group posted; a partner group's label is below tau, and tau is at most
// start_r(g), the next group's label. So posting a group waits only on groups with smaller labels,
// finitely many: by induction every group is posted, hence completes.
// With two ranks and interleaving the ranks cannot always meet without one waiting (the timeline
// may keep one busy whenever the other is free); the plan still stays correct, it only stalls.
//
// make_p2p_plan() throws std::invalid_argument when the schedule is inconsistent (a step missing,
// repeated or out of range, a backward before its forward, dependencies that cannot all be met) or
// the stage is out of range. check_p2p_plans() never throws: it returns "" for a sound set of
// plans and otherwise one line per problem, meant to be asserted at start-up.
#pragma once

#include <string>
#include <vector>

#include "simulator/schedule/pipeline_schedule.h"

namespace mpsim::executor {

struct P2pTransfer {
  bool send = true;
  bool activation = true;  // true: forward activations, false: activation gradients
  int peer = 0;            // pipeline rank on the other end
  int micro_batch = 0;
  int chunk = 0;  // the chunk on THIS rank that produces (send) or consumes (recv) the tensor
  bool operator==(const P2pTransfer&) const = default;
};

// Posted as one ncclGroupStart/End, in this order (the order matters between the same two ranks).
struct P2pGroup {
  std::vector<P2pTransfer> transfers;
};

struct StagePlan {
  std::vector<P2pGroup> before;  // before[i]: group posted just before step i (may be empty)
  P2pGroup after;                // posted after the last step
};

// The plan of pipeline rank `stage` (0 = first) for the rule above.
StagePlan make_p2p_plan(const schedule::PipelineSchedule& schedule, int stage);
// Plans of all ranks, indexed by pipeline rank.
std::vector<StagePlan> make_p2p_plans(const schedule::PipelineSchedule& schedule);

// Builds every rank's plan and runs check_plans() on them.
std::string check_p2p_plans(const schedule::PipelineSchedule& schedule);

// Checks any set of plans (one per pipeline rank) against `schedule`: every needed tensor sent and
// received exactly once, by the right ranks, receives before their consumer and sends after their
// producer; then matches the k-th send with the k-th receive of every ordered pair (mismatched
// tensors are reported) and simulates the groups under NCCL's semantics (a group completes once
// every partner operation is posted; a rank posts its groups in order). Returns "" when every rank
// finishes, otherwise what went wrong (for a deadlock: where each stuck rank waits, on what).
std::string check_plans(const std::vector<StagePlan>& plans,
                        const schedule::PipelineSchedule& schedule);

}  // namespace mpsim::executor
