#include "executor/core/p2p_plan.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace mpsim::executor {
namespace {

using schedule::PipelineSchedule;
using schedule::PipelineStep;

// Reference timeline of make_p2p_plans: only the order of start times matters.
constexpr int64_t kForwardTime = 1;
constexpr int64_t kBackwardTime = 2;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// A tensor crossing a virtual-stage boundary: the activation that virtual stage `producer` sends
// to producer + 1, or the gradient that it sends to producer - 1.
struct TensorId {
  bool activation = true;
  int micro_batch = 0;
  int producer = 0;  // virtual stage
  bool operator==(const TensorId&) const = default;
  auto key() const { return std::make_tuple(!activation, micro_batch, producer); }
};

std::string step_name(const PipelineStep& step) {
  return std::string(step.forward ? "F" : "B") + " mb " + std::to_string(step.micro_batch) +
         " chunk " + std::to_string(step.chunk);
}

// Every rank's steps and where each (pass, micro-batch, virtual stage) runs. Throws
// std::invalid_argument when a step is out of range, repeated or missing, or a backward runs
// before its forward.
class ScheduleIndex {
 public:
  struct Where {
    int rank = -1, index = -1;
  };

  explicit ScheduleIndex(const PipelineSchedule& s)
      : stages(s.stages()), micro_batches(s.micro_batches()), chunks(s.chunks()) {
    if (stages < 1 || micro_batches < 1 || chunks < 1) {
      throw std::invalid_argument("pipeline schedule '" + std::string(s.name()) +
                                  "' has no stage, micro-batch or chunk");
    }
    virtual_stages = stages * chunks;
    where_.resize(2 * static_cast<size_t>(micro_batches) * virtual_stages);
    steps.resize(stages);
    for (int r = 0; r < stages; ++r) {
      steps[r] = s.steps(r);
      for (int i = 0; i < static_cast<int>(steps[r].size()); ++i) {
        const PipelineStep& step = steps[r][i];
        const std::string at = "rank " + std::to_string(r) + " step " + std::to_string(i) + ": ";
        if (step.micro_batch < 0 || step.micro_batch >= micro_batches || step.chunk < 0 ||
            step.chunk >= chunks) {
          throw std::invalid_argument(at + step_name(step) + " is out of range");
        }
        Where& w = slot(step.forward, step.micro_batch, virtual_stage(r, step.chunk));
        if (w.rank >= 0) throw std::invalid_argument(at + step_name(step) + " runs twice");
        if (!step.forward && find(true, step.micro_batch, virtual_stage(r, step.chunk)).rank < 0) {
          throw std::invalid_argument(at + step_name(step) + " runs before its forward");
        }
        w = {r, i};
      }
      if (steps[r].size() != 2 * static_cast<size_t>(micro_batches) * chunks) {
        throw std::invalid_argument("rank " + std::to_string(r) + " runs " +
                                    std::to_string(steps[r].size()) + " steps, expected " +
                                    std::to_string(2 * micro_batches * chunks));
      }
    }
  }

  int virtual_stage(int rank, int chunk) const { return chunk * stages + rank; }
  int rank_of(int vs) const { return vs % stages; }
  int chunk_of(int vs) const { return vs / stages; }
  Where find(bool forward, int micro_batch, int vs) const {
    return where_[index(forward, micro_batch, vs)];
  }
  // The step that sends `t` and the one that receives it.
  Where producer(const TensorId& t) const { return find(t.activation, t.micro_batch, t.producer); }
  Where consumer(const TensorId& t) const {
    return find(t.activation, t.micro_batch, t.producer + (t.activation ? 1 : -1));
  }
  // Every tensor that crosses a virtual-stage boundary, in a fixed order.
  std::vector<TensorId> tensors() const {
    std::vector<TensorId> out;
    for (int mb = 0; mb < micro_batches; ++mb) {
      for (int vs = 0; vs + 1 < virtual_stages; ++vs) out.push_back({true, mb, vs});
      for (int vs = 1; vs < virtual_stages; ++vs) out.push_back({false, mb, vs});
    }
    return out;
  }

  int stages, micro_batches, chunks, virtual_stages = 0;
  std::vector<std::vector<PipelineStep>> steps;

 private:
  size_t index(bool forward, int micro_batch, int vs) const {
    return (static_cast<size_t>(forward ? 0 : 1) * micro_batches + micro_batch) * virtual_stages +
           vs;
  }
  Where& slot(bool forward, int micro_batch, int vs) {
    return where_[index(forward, micro_batch, vs)];
  }
  std::vector<Where> where_;
};

// Start time of every step when communication is free and each step starts as soon as the step
// before it on its rank and the step producing its input have finished. Throws
// std::invalid_argument when no step can start (the schedule waits on itself).
std::vector<std::vector<int64_t>> reference_timeline(const ScheduleIndex& idx) {
  std::vector<std::vector<int64_t>> start(idx.stages), finish(idx.stages);
  std::vector<int> next(idx.stages, 0);
  auto duration = [](const PipelineStep& s) { return s.forward ? kForwardTime : kBackwardTime; };
  int remaining = 0;
  for (const auto& steps : idx.steps) remaining += static_cast<int>(steps.size());
  while (remaining > 0) {
    bool progress = false;
    for (int r = 0; r < idx.stages; ++r) {
      while (next[r] < static_cast<int>(idx.steps[r].size())) {
        const PipelineStep& step = idx.steps[r][next[r]];
        int64_t ready = next[r] > 0 ? finish[r].back() : 0;
        const int vs = idx.virtual_stage(r, step.chunk);
        const int input_vs = step.forward ? vs - 1 : vs + 1;
        if (input_vs >= 0 && input_vs < idx.virtual_stages) {
          const ScheduleIndex::Where w = idx.find(step.forward, step.micro_batch, input_vs);
          if (w.index >= static_cast<int>(finish[w.rank].size())) break;  // not run yet
          ready = std::max(ready, finish[w.rank][w.index]);
        }
        start[r].push_back(ready);
        finish[r].push_back(ready + duration(step));
        ++next[r];
        --remaining;
        progress = true;
      }
    }
    if (!progress) {
      std::ostringstream msg;
      msg << "the schedule waits on itself:";
      for (int r = 0; r < idx.stages; ++r) {
        if (next[r] < static_cast<int>(idx.steps[r].size())) {
          msg << " rank " << r << " at step " << next[r] << " (" << step_name(idx.steps[r][next[r]])
              << ");";
        }
      }
      throw std::invalid_argument(msg.str());
    }
  }
  return start;
}

std::string describe(const P2pTransfer& t) {
  return std::string(t.send ? "send " : "recv ") + (t.activation ? "activation" : "gradient") +
         " mb " + std::to_string(t.micro_batch) + " chunk " + std::to_string(t.chunk) +
         (t.send ? " to rank " : " from rank ") + std::to_string(t.peer);
}

std::string group_name(const ScheduleIndex& idx, int rank, int group) {
  const auto& steps = idx.steps[rank];
  if (group == static_cast<int>(steps.size())) return "after";
  return "before[" + std::to_string(group) + "] (" + step_name(steps[group]) + ")";
}

}  // namespace

std::vector<StagePlan> make_p2p_plans(const PipelineSchedule& schedule) {
  const ScheduleIndex idx(schedule);
  const std::vector<std::vector<int64_t>> start = reference_timeline(idx);

  struct Placed {
    int64_t tau;
    TensorId tensor;
    P2pTransfer transfer;
  };
  // placed[rank][group], group == steps.size() being the group after the last step.
  std::vector<std::vector<std::vector<Placed>>> placed(idx.stages);
  for (int r = 0; r < idx.stages; ++r) placed[r].resize(idx.steps[r].size() + 1);

  for (const TensorId& t : idx.tensors()) {
    const ScheduleIndex::Where a = idx.producer(t), b = idx.consumer(t);
    if (a.rank == b.rank) {
      throw std::invalid_argument("virtual stages " + std::to_string(t.producer) + " and its " +
                                  "neighbour sit on the same rank " + std::to_string(a.rank) +
                                  " (a pipeline of one stage has no chunks to interleave)");
    }
    const auto& sa = start[a.rank];
    const auto& sb = start[b.rank];
    const int64_t next_on_a = a.index + 1 < static_cast<int>(sa.size()) ? sa[a.index + 1] : kNever;
    const int64_t prev_on_b = b.index > 0 ? sb[b.index - 1] : std::numeric_limits<int64_t>::min();
    const int64_t paired = std::min(next_on_a, sb[b.index]);
    const int64_t tau = paired > prev_on_b ? paired : sb[b.index];
    // Group g covers (start(g-1), start(g)].
    const auto group_of = [tau](const std::vector<int64_t>& s) {
      return static_cast<int>(std::lower_bound(s.begin(), s.end(), tau) - s.begin());
    };
    const int chunk_a = idx.chunk_of(t.producer);
    const int chunk_b = idx.chunk_of(t.producer + (t.activation ? 1 : -1));
    placed[a.rank][group_of(sa)].push_back(
        {tau, t, {true, t.activation, b.rank, t.micro_batch, chunk_a}});
    placed[b.rank][group_of(sb)].push_back(
        {tau, t, {false, t.activation, a.rank, t.micro_batch, chunk_b}});
  }

  std::vector<StagePlan> plans(idx.stages);
  for (int r = 0; r < idx.stages; ++r) {
    const int n = static_cast<int>(idx.steps[r].size());
    plans[r].before.resize(n);
    for (int g = 0; g <= n; ++g) {
      auto& ops = placed[r][g];
      std::sort(ops.begin(), ops.end(), [](const Placed& x, const Placed& y) {
        return std::make_tuple(x.tau, x.tensor.key()) < std::make_tuple(y.tau, y.tensor.key());
      });
      P2pGroup& group = g < n ? plans[r].before[g] : plans[r].after;
      for (const Placed& p : ops) group.transfers.push_back(p.transfer);
    }
  }
  return plans;
}

StagePlan make_p2p_plan(const PipelineSchedule& schedule, int stage) {
  if (stage < 0 || stage >= schedule.stages()) {
    throw std::invalid_argument("pipeline rank " + std::to_string(stage) + " is out of range [0, " +
                                std::to_string(schedule.stages()) + ")");
  }
  return make_p2p_plans(schedule)[stage];
}

std::string check_p2p_plans(const PipelineSchedule& schedule) {
  std::vector<StagePlan> plans;
  try {
    plans = make_p2p_plans(schedule);
  } catch (const std::invalid_argument& e) {
    return std::string("no plan: ") + e.what();
  }
  return check_plans(plans, schedule);
}

namespace {

// check_plans' three phases over one set of plans, in order; each adds what it finds to errors_.
class PlanChecker {
 public:
  PlanChecker(const std::vector<StagePlan>& plans, const ScheduleIndex& idx)
      : plans_(plans), idx_(idx), p_(idx.stages) {}

  std::string run() {
    check_transfers();
    if (!errors_.str().empty()) return errors_.str();
    match_fifo();
    if (!errors_.str().empty()) return errors_.str();
    execute();
    return errors_.str();
  }

 private:
  struct Op {
    int group;
    P2pTransfer transfer;
    TensorId tensor;
  };
  struct Ref {
    int rank, group, pos;
  };

  size_t slot(const TensorId& t) const {
    return (static_cast<size_t>(t.activation ? 0 : 1) * idx_.micro_batches + t.micro_batch) *
               idx_.virtual_stages +
           t.producer;
  }

  // 1. Every operation on its own: the right peer, placed after its producer or before its
  //    consumer, each tensor sent once and received once.
  void check_transfers() {
    ops_.resize(p_);
    const size_t tensor_slots = 2 * static_cast<size_t>(idx_.micro_batches) * idx_.virtual_stages;
    std::vector<int> sent(tensor_slots, 0), received(tensor_slots, 0);
    for (int r = 0; r < p_; ++r) {
      const int n = static_cast<int>(idx_.steps[r].size());
      if (static_cast<int>(plans_[r].before.size()) != n) {
        errors_ << "rank " << r << ": " << plans_[r].before.size()
                << " groups before steps, expected " << n << "\n";
        continue;
      }
      ops_[r].resize(n + 1);
      for (int g = 0; g <= n; ++g) {
        const P2pGroup& group = g < n ? plans_[r].before[g] : plans_[r].after;
        for (const P2pTransfer& t : group.transfers) {
          const std::optional<TensorId> tensor = check_transfer(r, g, t);
          if (!tensor) continue;
          ++(t.send ? sent : received)[slot(*tensor)];
          ops_[r][g].push_back({g, t, *tensor});
        }
      }
    }
    for (const TensorId& t : idx_.tensors()) {
      const std::string what = std::string(t.activation ? "activation" : "gradient") + " mb " +
                               std::to_string(t.micro_batch) + " of virtual stage " +
                               std::to_string(t.producer);
      if (sent[slot(t)] != 1) errors_ << what << " is sent " << sent[slot(t)] << " times\n";
      if (received[slot(t)] != 1)
        errors_ << what << " is received " << received[slot(t)] << " times\n";
    }
  }

  // One transfer of rank r's group g: the tensor it moves, or nothing when it cannot be placed
  // (the error says why). A transfer posted on the wrong side of its step is reported but kept.
  std::optional<TensorId> check_transfer(int r, int g, const P2pTransfer& t) {
    const std::string at =
        "rank " + std::to_string(r) + " " + group_name(idx_, r, g) + ": " + describe(t) + ": ";
    if (t.micro_batch < 0 || t.micro_batch >= idx_.micro_batches || t.chunk < 0 ||
        t.chunk >= idx_.chunks) {
      errors_ << at << "micro-batch or chunk out of range\n";
      return std::nullopt;
    }
    const int vs = idx_.virtual_stage(r, t.chunk);
    // Whether this rank's virtual stage sends towards the next (activation) or previous one.
    const int other_vs = vs + ((t.activation == t.send) ? 1 : -1);
    if (other_vs < 0 || other_vs >= idx_.virtual_stages) {
      errors_ << at << "virtual stage " << vs << " has no such neighbour\n";
      return std::nullopt;
    }
    if (t.peer == r) {
      errors_ << at << "a rank never sends to itself\n";
      return std::nullopt;
    }
    if (t.peer != idx_.rank_of(other_vs)) {
      errors_ << at << "the peer of virtual stage " << vs << " is rank " << idx_.rank_of(other_vs)
              << "\n";
      return std::nullopt;
    }
    const TensorId tensor{t.activation, t.micro_batch, t.send ? vs : other_vs};
    const ScheduleIndex::Where step = t.send ? idx_.producer(tensor) : idx_.consumer(tensor);
    if (t.send && g <= step.index) {
      errors_ << at << "posted before step " << step.index << " produces it\n";
    } else if (!t.send && g > step.index) {
      errors_ << at << "posted after step " << step.index << " consumes it\n";
    }
    return tensor;
  }

  const Op& op_at(const Ref& x) const { return ops_[x.rank][x.group][x.pos]; }

  // 2. FIFO matching per ordered pair: the k-th send from a to b meets the k-th recv on b from a.
  void match_fifo() {
    std::vector<std::vector<Ref>> sends(p_ * p_), recvs(p_ * p_);  // [src * p + dst]
    for (int r = 0; r < p_; ++r) {
      for (int g = 0; g < static_cast<int>(ops_[r].size()); ++g) {
        for (int k = 0; k < static_cast<int>(ops_[r][g].size()); ++k) {
          const P2pTransfer& t = ops_[r][g][k].transfer;
          (t.send ? sends[r * p_ + t.peer] : recvs[t.peer * p_ + r]).push_back({r, g, k});
        }
      }
    }
    partner_.resize(p_);
    for (int r = 0; r < p_; ++r) {
      partner_[r].resize(ops_[r].size());
      for (size_t g = 0; g < ops_[r].size(); ++g) partner_[r][g].resize(ops_[r][g].size());
    }
    for (int pair = 0; pair < p_ * p_; ++pair) {
      // Step 1 made the counts equal; a mismatch is a difference in order.
      for (size_t k = 0; k < sends[pair].size() && k < recvs[pair].size(); ++k) {
        const Ref s = sends[pair][k], v = recvs[pair][k];
        if (!(op_at(s).tensor == op_at(v).tensor)) {
          errors_ << "mismatch between rank " << s.rank << " and rank " << v.rank << ": send #" << k
                  << " (rank " << s.rank << " " << group_name(idx_, s.rank, s.group) << ": "
                  << describe(op_at(s).transfer) << ") meets recv #" << k << " (rank " << v.rank
                  << " " << group_name(idx_, v.rank, v.group) << ": " << describe(op_at(v).transfer)
                  << ")\n";
        }
        partner_[s.rank][s.group][s.pos] = v;
        partner_[v.rank][v.group][v.pos] = s;
      }
    }
  }

  // 3. Execution: each rank posts its groups in order; a group completes once every partner
  //    operation has been posted (its rank has reached or passed the partner's group).
  void execute() {
    std::vector<int> at(p_, 0);  // group each rank is at; ops_[r].size() when finished
    const auto complete = [&](int r) {
      const int g = at[r];
      for (size_t k = 0; k < ops_[r][g].size(); ++k) {
        const Ref other = partner_[r][g][k];
        if (at[other.rank] < other.group) return false;
      }
      return true;
    };
    for (bool progress = true; progress;) {
      progress = false;
      for (int r = 0; r < p_; ++r) {
        while (at[r] < static_cast<int>(ops_[r].size()) && complete(r)) {
          ++at[r];
          progress = true;
        }
      }
    }
    for (int r = 0; r < p_; ++r) {
      if (at[r] >= static_cast<int>(ops_[r].size())) continue;
      const int g = at[r];
      for (size_t k = 0; k < ops_[r][g].size(); ++k) {
        const Ref other = partner_[r][g][k];
        if (at[other.rank] >= other.group) continue;
        errors_ << "deadlock: rank " << r << " waits in " << group_name(idx_, r, g) << " to "
                << describe(ops_[r][g][k].transfer) << "; its partner is in rank " << other.rank
                << "'s " << group_name(idx_, other.rank, other.group) << ", but rank " << other.rank
                << " waits in " << group_name(idx_, other.rank, at[other.rank]) << "\n";
        break;
      }
    }
  }

  const std::vector<StagePlan>& plans_;
  const ScheduleIndex& idx_;
  const int p_;
  std::ostringstream errors_;
  std::vector<std::vector<std::vector<Op>>> ops_;       // ops_[rank][group], in posting order
  std::vector<std::vector<std::vector<Ref>>> partner_;  // where each op's matching op sits
};

}  // namespace

std::string check_plans(const std::vector<StagePlan>& plans, const PipelineSchedule& schedule) {
  std::optional<ScheduleIndex> maybe_idx;
  try {
    maybe_idx.emplace(schedule);
  } catch (const std::invalid_argument& e) {
    return std::string("invalid schedule: ") + e.what();
  }
  const int p = maybe_idx->stages;
  if (static_cast<int>(plans.size()) != p) {
    return std::to_string(plans.size()) + " plans for " + std::to_string(p) + " pipeline ranks";
  }
  return PlanChecker(plans, *maybe_idx).run();
}

}  // namespace mpsim::executor
