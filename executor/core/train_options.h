// What one `mpsim train` run does, independent of how it was launched: the model, the parallel
// configuration, the optimizer's hyper-parameters, the data and the length of the run. Filled by
// the command's flag parser (tools/mpsim/train_args.h); read by every rank's trainer.
#pragma once

#include <cstdint>
#include <string>

#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::executor {

struct TrainOptions {
  spec::ModelSpec model;
  spec::ParallelConfig config;  // data_parallel resolved (never 0)
  int64_t steps = 20;           // iterations
  std::string data_path;        // byte-level text corpus; empty with synthetic = true
  bool synthetic = false;       // uniform random tokens instead of the corpus
  uint64_t seed = 1234;         // initialisation and data order
  double init_std = 0.02;
  double lr = 6e-4;          // peak learning rate
  double min_lr = 6e-5;      // cosine decay floor, reached at the last step
  int64_t warmup_steps = 0;  // linear warm-up from 0
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double clip_grad = 1.0;        // global gradient-norm clip; 0 = off
  std::string log_path;          // JSON lines; empty = standard output (rank 0 only)
  double peak_flops = 989.4e12;  // per GPU, for MFU: H100 SXM dense bf16 (datasheet)
  bool nvtx = true;              // NVTX ranges named as the simulator's ops
};

// Learning rate of iteration `step` (from 1): linear warm-up, then cosine to min_lr at `steps`.
double learning_rate(const TrainOptions& options, int64_t step);

}  // namespace mpsim::executor
