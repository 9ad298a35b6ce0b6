// One rank of the reference trainer: builds the rank's model stage, runs training iterations
// (the pipeline schedule with grouped NCCL send/recv, DP gradient buckets reduced on their own
// stream as soon as their gradients are final, the tied-embedding all-reduce, gradient clipping,
// AdamW, the parameter all-gather of the distributed optimizer) and reports each iteration.
//
// run_training_rank() is what `mpsim train` runs in every rank's process: it selects the GPU
// (local rank), bootstraps NCCL through the launcher's rendezvous, trains `options.steps`
// iterations and writes one JSON line per iteration (rank 0; see README) to the log. It returns
// the process exit status; errors are printed to `err` as `mpsim train: rank R: <what>`.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "executor/core/launch.h"
#include "executor/core/train_options.h"

namespace mpsim::executor {

struct IterationReport {
  int64_t iteration = 0;
  double loss = 0;       // mean token cross-entropy over the global batch (nats)
  double grad_norm = 0;  // global L2 norm before clipping
  double lr = 0;
  double seconds = 0;  // wall time of the iteration, GPUs synchronised at both ends
  double tokens_per_s = 0;
  double model_tflops_per_gpu = 0;
  double mfu = 0;                               // against options.peak_flops
  std::vector<int64_t> peak_memory;             // by MemoryCategory, max over ranks
  int64_t peak_memory_total = 0;                // max over ranks of the per-rank total
  int64_t pool_reserved = 0;                    // max over ranks of CUDA's pool high-water mark
  std::vector<int64_t> rank_peak_memory_total;  // per rank (global rank order): its total peak
};

class Trainer {
 public:
  // Collective over the ranks of the run: every rank constructs its Trainer with the same
  // options and the same 128-byte NCCL id.
  Trainer(const TrainOptions& options, int rank, const std::vector<uint8_t>& nccl_id);
  ~Trainer();

  // One iteration (step counts from 1). Without `update` the gradients are kept and the weights
  // are not changed (for tests).
  IterationReport run_iteration(int64_t step, bool update = true);

  // This rank's shard of every parameter it holds, as float: weights (bf16 values) or the fp32
  // gradients of the last iteration (after DP reduction).
  std::map<std::string, std::vector<float>> weights() const;
  std::map<std::string, std::vector<float>> gradients() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

int run_training_rank(const TrainOptions& options, const LaunchEnv& env, std::ostream& out,
                      std::ostream& err);

// Bytes of an ncclUniqueId; the launcher's rendezvous carries it.
std::vector<uint8_t> new_nccl_id();

}  // namespace mpsim::executor
