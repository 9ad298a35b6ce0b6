// Pipeline schedules as objects. A schedule says, for one pipeline rank, the order in which its
// compute stream runs the forward and backward passes of (micro-batch, model chunk) pairs. The
// graph builder turns each step into ops; dependencies between stages come from the graph (a
// stage's forward needs the previous stage's activations), not from the schedule.
//
//   GPipe: all forwards, then all backwards.
//   1F1B (PipeDream-Flush, Narayanan et al. 2021): p - r - 1 warm-up forwards on rank r, then
//     alternate one forward / one backward, then drain the backwards.
//   Interleaved 1F1B (Megatron-LM): v model chunks per rank, micro-batches taken in groups of p
//     per chunk; warm-up of (p - r - 1) * 2 + (v - 1) * p steps.
//
// With m micro-batches, uniform per-stage times t_f, t_b and free communication, GPipe and 1F1B
// take (m + p - 1)(t_f + t_b); interleaving with v chunks shrinks the bubble to (p - 1)(t_f +
// t_b)/v. make_pipeline_schedule() throws std::invalid_argument on inconsistent sizes.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::schedule {

struct PipelineStep {
  bool forward = true;
  int micro_batch = 0;
  int chunk = 0;  // model chunk on this rank; virtual stage = chunk * stages + rank
  bool operator==(const PipelineStep&) const = default;
};

class PipelineSchedule {
 public:
  PipelineSchedule(int stages, int micro_batches, int chunks)
      : stages_(stages), micro_batches_(micro_batches), chunks_(chunks) {}
  virtual ~PipelineSchedule() = default;

  virtual std::string_view name() const = 0;
  // Steps of pipeline rank `stage` (0 = first), in the order its compute stream runs them.
  // Every (micro-batch, chunk) appears once forward and once backward, forward first.
  virtual std::vector<PipelineStep> steps(int stage) const = 0;

  int stages() const { return stages_; }
  int micro_batches() const { return micro_batches_; }
  int chunks() const { return chunks_; }

 protected:
  int stages_;
  int micro_batches_;
  int chunks_;
};

std::unique_ptr<PipelineSchedule> make_gpipe_schedule(int stages, int micro_batches);
std::unique_ptr<PipelineSchedule> make_one_f_one_b_schedule(int stages, int micro_batches);
std::unique_ptr<PipelineSchedule> make_interleaved_schedule(int stages, int micro_batches,
                                                            int chunks);
std::unique_ptr<PipelineSchedule> make_pipeline_schedule(spec::Schedule schedule, int stages,
                                                         int micro_batches, int chunks);

}  // namespace mpsim::schedule
