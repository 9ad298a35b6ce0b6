#include "simulator/graph/rank_program.h"

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

#include "simulator/graph/comm_groups.h"
#include "simulator/graph/layer_ops.h"
#include "simulator/graph/op_emitter.h"
#include "simulator/graph/step_folder.h"
#include "simulator/schedule/pipeline_schedule.h"

namespace mpsim::graph {
namespace {

constexpr double kGradBytes = 4;           // Megatron reduces bf16 models' gradients in fp32
constexpr double kAdamBytesPerParam = 30;  // grad 4 + (master, m, v) read+write 24 + bf16 param 2
constexpr double kAdamFlopsPerParam = 12;
constexpr double kLinearsPerLayer = 4;  // QKV, projection, fc1, fc2: the FP8 GEMMs' layers
constexpr double kAmaxBytes = 4;        // one fp32 amax per FP8 tensor
// Units of parameters besides layers, for the parameter-gather overlap.
constexpr int64_t kEmbeddingUnit = -1;
constexpr int64_t kHeadUnit = -2;

// Where a pipeline transfer's receiver waits: the send op, or (as an edge delay) the last op of
// the producing step.
struct SendEnd {
  OpVertex vertex = kNoOp;
  double delay = 0;
};

// What every rank's program reads (the config and its sizes) and the state they share (the
// op sink, communication groups, op count and pipeline sends).
struct Build {
  Build(const spec::ModelSpec& model, const spec::ParallelConfig& config,
        const GraphOptions& options)
      : config(config), options(options), groups(config, options.all_ranks, options.gpus_per_node) {
    out.dims = model_dims(model);
    const ModelDims& d = out.dims;
    t = config.tensor_parallel();
    p = config.pipeline_parallel();
    cp = std::max<int64_t>(1, config.context_parallel());
    // Gradients are reduced, and the optimizer sharded, over DP x CP (Megatron-Core's data
    // parallel group with context parallelism); the micro-batches are the DP rank's.
    dp = config.data_parallel() * cp;
    v = std::max<int64_t>(1, config.virtual_pipeline_stages());
    m = config.global_batch_size() / (config.micro_batch_size() * config.data_parallel());
    zero = config.zero_stage();
    interleaved = config.schedule() == spec::INTERLEAVED_1F1B;
    layers_per_chunk = d.layers / (p * v);
    out.micro_batches = m;
    out.padded_vocab = padded_vocab(d.vocab, t);
    shapes = layer_shapes(d, config, out.padded_vocab);
    layer_params_local = static_cast<double>(layer_parameters_local(d, t));
  }

  bool fold_enabled() const {
    return options.fold != nullptr && !options.all_ranks && !(zero == 3 && dp > 1);
  }
  double embedding_params() const {
    const ModelDims& d = out.dims;
    return static_cast<double>(shapes.vocab) * d.hidden +
           (d.learned_positions ? static_cast<double>(d.seq) * d.hidden : 0.0);
  }
  double head_params() const {
    const ModelDims& d = out.dims;
    const double norm = static_cast<double>(norm_parameters(d));
    const bool own_weight = !d.tied || p > 1;  // tied with PP > 1: the last stage keeps a copy
    return norm + (own_weight ? static_cast<double>(shapes.vocab) * d.hidden : 0.0);
  }

  const spec::ParallelConfig& config;
  GraphOptions options;
  TrainingGraph out;  // ranks, dims and counts; the graph itself is made at the end
  LayerShapes shapes;
  int64_t t = 1, p = 1, dp = 1, cp = 1, v = 1, m = 1, layers_per_chunk = 1, zero = 0;
  bool interleaved = false;
  double layer_params_local = 0;
  CommGroups groups;
  OpSink sink;
  int64_t op_count = 0;
  std::vector<SendEnd> sends;  // indexed by RankProgram::send_index
};

// One simulated rank's program, emitted in issue order.
class RankProgram {
 public:
  RankProgram(Build& b, int32_t rank)
      : b_(b),
        c_(b.out.ranks[rank]),
        rank_(rank),
        last_vstage_(b.p * b.v - 1),
        tp_nodes_(b.groups.tp_nodes(c_)),
        dp_nodes_(b.groups.dp_nodes(c_)),
        cp_nodes_(b.groups.cp_nodes(c_)),
        emit_(b.sink, b.groups, b.op_count, rank) {}

  void build();

 private:
  struct Ready {
    double params;
    OpVertex vertex;
  };

  size_t send_index(int64_t vstage, int64_t mb, bool backward) const {
    const size_t slot = b_.options.all_ranks ? static_cast<size_t>(c_.tp * b_.dp + c_.dp) : 0;
    return (((slot * b_.p * b_.v + vstage) * b_.m + mb) * 2) + (backward ? 1 : 0);
  }
  void step_body(OpEmitter& emit, const schedule::PipelineStep& step, int64_t vstage, bool scratch);
  template <typename Body>
  void over_layers(OpEmitter& emit, int64_t first, int64_t count, bool reverse, Pass pass,
                   Body body);
  OpVertex zero3_gather(OpEmitter& emit);
  void grads_ready(OpEmitter& emit, double params, bool scratch);
  bool foldable(const schedule::PipelineStep& step) const;
  FoldedStep fold(const schedule::PipelineStep& step, int64_t vstage);
  void emit_folded(const schedule::PipelineStep& step, int64_t vstage);
  bool sends_fit_in_steps(bool backward);
  void send(int64_t vstage, const schedule::PipelineStep& step, bool backward, size_t index);
  void emit_buckets(OpVertex backward_end);
  void step_ops(double rank_params);
  // --overlap-param-gather (ZeRO-1 with DP): the previous optimizer step's parameter all-gathers,
  // one per DP bucket, issued at the start in the order the forward needs them; the first forward
  // op of a bucket's parameters (micro-batch 0) waits for its gather.
  bool gathers_overlap() const {
    return b_.config.overlap_param_gather() && b_.zero == 1 && b_.dp > 1;
  }
  void emit_param_gathers(const std::vector<schedule::PipelineStep>& steps);
  void wait_param_gather(OpEmitter& emit, int64_t vstage, int64_t unit);
  // The distributed optimizer's all-gather of one bucket's bf16 parameters, on the DP stream.
  OpVertex param_gather(size_t bucket, double params);
  // FP8 recipe: the once-per-iteration weight cast and amax reduction.
  void fp8_weight_cast();
  void fp8_amax_reduction();
  // Optimizer offload: the host's share of the step (see the definition).
  void offload_optimizer(double params, OpVertex grads_reduced);
  OpVertex offload_done_ = kNoOp;

  Build& b_;
  const RankCoord c_;
  const int32_t rank_;
  const int64_t last_vstage_;
  const int32_t tp_nodes_, dp_nodes_, cp_nodes_;
  OpEmitter emit_;
  std::vector<Ready> ready_;      // last micro-batch: gradients ready, in backward order
  std::vector<OpVertex> dp_ops_;  // DP collectives the optimizer waits for
  std::vector<double> buckets_;   // parameters per DP bucket
  // With gathers_overlap(): the buckets as planned before the backward cut them, each unit's
  // bucket ((vstage, layer, or kEmbeddingUnit / kHeadUnit) -> index), the gathers, and whether
  // the forward has waited for each.
  std::vector<double> planned_buckets_;
  std::map<std::pair<int64_t, int64_t>, size_t> unit_bucket_;
  std::vector<OpVertex> param_gathers_;
  std::vector<bool> gather_waited_;
  std::array<bool, 2> sends_as_delays_{};  // per direction (forward, backward)
};

void RankProgram::build() {
  b_.groups.begin_rank(c_);
  const auto schedule = schedule::make_pipeline_schedule(
      b_.config.schedule(), static_cast<int>(b_.p), static_cast<int>(b_.m), static_cast<int>(b_.v));
  if (b_.fold_enabled() && b_.p > 1)
    sends_as_delays_ = {sends_fit_in_steps(false), sends_fit_in_steps(true)};
  double rank_params = 0;
  const auto steps = schedule->steps(static_cast<int>(c_.pp));
  if (gathers_overlap()) emit_param_gathers(steps);
  if (b_.out.dims.fp8) fp8_weight_cast();
  for (const schedule::PipelineStep& step : steps) {
    const int64_t vstage = step.chunk * b_.p + c_.pp;
    Op& ctx = emit_.context();
    ctx = Op{};
    ctx.micro_batch = step.micro_batch;
    ctx.chunk = b_.interleaved ? step.chunk : -1;
    if (step.forward && vstage > 0)
      emit_.receive_next(send_index(vstage - 1, step.micro_batch, false));
    if (!step.forward && vstage < last_vstage_)
      emit_.receive_next(send_index(vstage + 1, step.micro_batch, true));
    if (foldable(step)) {
      emit_folded(step, vstage);
    } else {
      step_body(emit_, step, vstage, /*scratch=*/false);
    }
    if (step.forward && vstage < last_vstage_)
      send(vstage, step, false, send_index(vstage, step.micro_batch, false));
    if (!step.forward && vstage > 0)
      send(vstage, step, true, send_index(vstage, step.micro_batch, true));
    if (!step.forward && step.micro_batch == 0) {
      rank_params += b_.layers_per_chunk * b_.layer_params_local;
      if (vstage == 0) rank_params += b_.embedding_params();
      if (vstage == last_vstage_) rank_params += b_.head_params();
    }
  }
  step_ops(rank_params);
}

// The compute and TP ops of one pipeline step (no sends), in program order; in a scratch
// graph (step folding) without the DP work the step triggers.
void RankProgram::step_body(OpEmitter& emit, const schedule::PipelineStep& step, int64_t vstage,
                            bool scratch) {
  LayerOps ops(emit, b_.shapes, b_.out.dims, b_.config.recompute(), b_.config.attention(),
               tp_nodes_, cp_nodes_);
  const int64_t first_layer = vstage * b_.layers_per_chunk;
  const int64_t count = b_.layers_per_chunk;
  if (step.forward) {
    emit.context().pass = Pass::kForward;
    if (vstage == 0) {
      wait_param_gather(emit, vstage, kEmbeddingUnit);
      ops.embedding(false);
    }
    over_layers(emit, first_layer, count, false, Pass::kForward, [&](int64_t layer) {
      wait_param_gather(emit, vstage, layer);
      ops.forward_layer(layer, Pass::kForward);
    });
    if (vstage == last_vstage_) {
      wait_param_gather(emit, vstage, kHeadUnit);
      ops.head(false);
    }
    return;
  }
  emit.context().pass = Pass::kBackward;
  if (vstage == last_vstage_) {
    ops.head(true);
    grads_ready(emit, b_.head_params(), scratch);
  }
  over_layers(emit, first_layer, count, true, Pass::kBackward, [&](int64_t layer) {
    ops.backward_layer(layer);
    grads_ready(emit, b_.layer_params_local, scratch);
  });
  if (vstage == 0) {
    emit.context().pass = Pass::kBackward;
    ops.embedding(true);
    grads_ready(emit, b_.embedding_params(), scratch);
  }
}

// Runs `body(layer)` over a chunk's layers; with ZeRO-3 each layer waits for its weights,
// gathered one layer ahead.
template <typename Body>
void RankProgram::over_layers(OpEmitter& emit, int64_t first, int64_t count, bool reverse,
                              Pass pass, Body body) {
  OpVertex next_gather = kNoOp;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t layer = reverse ? first + count - 1 - i : first + i;
    if (b_.zero == 3 && b_.dp > 1) {
      Op& ctx = emit.context();
      ctx.site = Site::kLayer;
      ctx.pass = pass;
      ctx.layer = static_cast<int32_t>(layer);
      emit.wait(i == 0 ? zero3_gather(emit) : next_gather);
      if (i + 1 < count) {
        ctx.layer = static_cast<int32_t>(reverse ? layer - 1 : layer + 1);
        next_gather = zero3_gather(emit);
      }
    }
    body(layer);
  }
}

OpVertex RankProgram::zero3_gather(OpEmitter& emit) {
  Op op = emit.make(OpKind::kAllGather, OpLabel::kWeightsAllGather);
  op.group = Group::kDp;
  op.bytes = b_.layer_params_local * b_.shapes.e;
  op.group_size = static_cast<int32_t>(b_.dp);
  op.group_nodes = dp_nodes_;
  return emit.communicate(op, Stream::kDpComm);
}

// Gradients of `params` parameters have just been computed (by the last compute op).
void RankProgram::grads_ready(OpEmitter& emit, double params, bool scratch) {
  if (b_.dp < 2 || scratch) return;
  if (b_.zero >= 2) {  // ZeRO-2/3: gradients reduce-scattered every micro-batch
    Op op = emit.make(OpKind::kReduceScatter, OpLabel::kGradsReduceScatter);
    op.group = Group::kDp;
    op.bytes = params * kGradBytes;
    op.group_size = static_cast<int32_t>(b_.dp);
    op.group_nodes = dp_nodes_;
    dp_ops_.push_back(emit.communicate(op, Stream::kDpComm));
    return;
  }
  if (emit.context().micro_batch == b_.m - 1) ready_.push_back({params, emit.last_compute()});
}

// ---- step folding (see step_folder.h) --------------------------------------------------------

bool RankProgram::foldable(const schedule::PipelineStep& step) const {
  if (!b_.fold_enabled()) return false;
  // The first micro-batch's forward waits, op by op, for the parameter gathers.
  if (gathers_overlap() && step.forward && step.micro_batch == 0) return false;
  if (step.forward || b_.dp < 2) return true;
  // Backward steps whose gradients DP waits on keep their ops.
  return b_.zero < 2 && step.micro_batch != b_.m - 1;
}

FoldedStep RankProgram::fold(const schedule::PipelineStep& step, int64_t vstage) {
  const StepKind kind{step.forward, vstage == 0, vstage == last_vstage_, tp_nodes_, cp_nodes_};
  return b_.options.fold->fold(kind, [&] {
    OpSink scratch_sink;
    OpEmitter scratch(scratch_sink, b_.groups, b_.op_count, rank_);
    scratch.context() = emit_.context();
    step_body(scratch, step, vstage, /*scratch=*/true);
    TrainingGraph g;
    g.ranks = b_.out.ranks;
    g.dims = b_.out.dims;
    g.micro_batches = b_.out.micro_batches;
    g.padded_vocab = b_.out.padded_vocab;
    g.graph = make_op_graph(std::move(scratch_sink.ops), scratch_sink.edges);
    return g;
  });
}

void RankProgram::emit_folded(const schedule::PipelineStep& step, int64_t vstage) {
  const FoldedStep folded = fold(step, vstage);
  Op op = emit_.make(OpKind::kStepBlock, OpLabel::kStep);
  op.pass = step.forward ? Pass::kForward : Pass::kBackward;
  op.site = Site::kLayer;
  op.layer = static_cast<int32_t>(vstage * b_.layers_per_chunk);
  op.last_layer = static_cast<int32_t>(op.layer + b_.layers_per_chunk - 1);
  op.duration_s = folded.seconds;
  op.alloc_bytes = folded.alloc;
  op.free_bytes = folded.free;
  op.flops = folded.flops;
  op.bytes = folded.bytes;
  op.comm_interference = folded.comm_interference;
  emit_.compute(op);
}

// Whether every pipeline send of this rank in one direction is no longer than the shortest
// step that produces one (then sends can be edge delays, see step_folder.h).
bool RankProgram::sends_fit_in_steps(bool backward) {
  Op probe = emit_.make(OpKind::kSend, OpLabel::kNone);
  probe.group = Group::kPp;
  probe.bytes = b_.shapes.activation_bytes_sp();
  probe.group_size = 2;
  double longest_send = 0;
  for (int32_t nodes : {1, 2}) {
    probe.group_nodes = nodes;
    longest_send = std::max(longest_send, b_.options.fold->send_seconds(probe));
  }
  double shortest_step = std::numeric_limits<double>::infinity();
  for (int64_t chunk = 0; chunk < b_.v; ++chunk) {
    const int64_t vstage = chunk * b_.p + c_.pp;
    const bool produces = backward ? vstage > 0 : vstage < last_vstage_;
    if (!produces) continue;
    const schedule::PipelineStep step{!backward, 0, static_cast<int>(chunk)};
    shortest_step = std::min(shortest_step, fold(step, vstage).seconds);
  }
  return longest_send <= shortest_step;
}

void RankProgram::send(int64_t vstage, const schedule::PipelineStep& step, bool backward,
                       size_t index) {
  Op op = emit_.make(OpKind::kSend, OpLabel::kNone);
  op.pass = backward ? Pass::kBackward : Pass::kForward;
  op.site = Site::kNone;
  op.layer = -1;
  op.group = Group::kPp;
  op.micro_batch = step.micro_batch;
  op.chunk = b_.interleaved ? step.chunk : -1;
  op.bytes = b_.shapes.activation_bytes_sp();
  op.group_size = 2;
  const int64_t peer_vstage = backward ? vstage - 1 : vstage + 1;
  const int32_t peer_stage = static_cast<int32_t>(peer_vstage % b_.p);
  op.group_nodes = b_.groups.stage_pair_nodes(c_, c_.pp, peer_stage);
  if (sends_as_delays_[backward ? 1 : 0]) {
    b_.sends[index] = {emit_.last_compute(), b_.options.fold->send_seconds(op)};
    return;
  }
  b_.sends[index] = {emit_.communicate(op, backward ? Stream::kPpBackward : Stream::kPpForward), 0};
}

// DP gradient buckets of the last micro-batch's gradients, in the order they became ready; each
// issues after the op that completed it when DP communication overlaps, else after the backward.
void RankProgram::emit_buckets(OpVertex backward_end) {
  if (b_.dp < 2) return;
  const double bucket_params = static_cast<double>(b_.config.dp_bucket_params());
  emit_.context() = Op{};
  emit_.context().pass = Pass::kStep;
  double accumulated = 0;
  for (size_t i = 0; i < ready_.size(); ++i) {
    accumulated += ready_[i].params;
    if (accumulated < bucket_params && i + 1 < ready_.size()) continue;
    Op op = emit_.make(b_.zero == 0 ? OpKind::kAllReduce : OpKind::kReduceScatter, OpLabel::kNone);
    op.group = Group::kDp;
    op.bucket = static_cast<int32_t>(buckets_.size());
    op.bytes = accumulated * kGradBytes;
    op.group_size = static_cast<int32_t>(b_.dp);
    op.group_nodes = dp_nodes_;
    emit_.set_last_compute(b_.config.overlap_dp_comm() ? ready_[i].vertex : backward_end);
    dp_ops_.push_back(emit_.communicate(op, Stream::kDpComm));
    buckets_.push_back(accumulated);
    accumulated = 0;
  }
  emit_.set_last_compute(backward_end);
}

// Once per iteration after the pipeline: DP gradient reduction, tied-embedding sync,
// optimizer, and the parameter all-gather of sharded optimizers.
void RankProgram::step_ops(double rank_params) {
  emit_buckets(emit_.last_compute());
  emit_.context() = Op{};
  emit_.context().pass = Pass::kStep;
  if (b_.out.dims.fp8) fp8_amax_reduction();
  const bool first = c_.pp == 0;
  const bool last = c_.pp == static_cast<int32_t>(last_vstage_ % b_.p);
  if (b_.out.dims.tied && b_.p > 1 && (first || last)) {
    Op op = emit_.make(OpKind::kAllReduce, OpLabel::kAllReduce);
    op.group = Group::kEmbedding;
    op.bytes = static_cast<double>(b_.shapes.vocab) * b_.out.dims.hidden * kGradBytes;
    op.group_size = 2;
    op.group_nodes = b_.groups.stage_pair_nodes(c_, 0, static_cast<int32_t>(b_.p - 1));
    dp_ops_.push_back(emit_.communicate(op, Stream::kDpComm));
  }
  for (OpVertex v : dp_ops_) emit_.wait(v);
  const double sharded = b_.zero >= 1 ? rank_params / static_cast<double>(b_.dp) : rank_params;
  const double offload = b_.config.optimizer_offload();
  const OpVertex grads_reduced = emit_.last_compute();
  Op optimizer = emit_.make(OpKind::kOptimizer, OpLabel::kOptimizer);
  optimizer.bytes = (1 - offload) * sharded * kAdamBytesPerParam;
  optimizer.flops = (1 - offload) * sharded * kAdamFlopsPerParam;
  emit_.compute(optimizer);
  if (offload > 0) offload_optimizer(offload * sharded, grads_reduced);
  if (b_.dp < 2 || b_.zero == 0 || b_.zero == 3) return;
  if (gathers_overlap()) {
    // Gathered at the start, overlapped with the forward (emit_param_gathers).
    if (buckets_ != planned_buckets_) throw std::logic_error("parameter-gather buckets differ");
    return;
  }
  for (size_t i = 0; i < buckets_.size(); ++i) param_gather(i, buckets_[i]);
}

// Transformer Engine caches each layer's FP8 weight (and, on Hopper, its transpose) across the
// micro-batches of an iteration: the rank's linear weights are cast once, before the first
// forward: BF16 read, the FP8 copy and its transpose written.
void RankProgram::fp8_weight_cast() {
  Op& ctx = emit_.context();
  ctx = Op{};
  ctx.pass = Pass::kForward;
  Op op = emit_.make(OpKind::kElementwise, OpLabel::kFp8WeightCast);
  const double weights = static_cast<double>(b_.layers_per_chunk * b_.v) *
                         static_cast<double>(layer_linear_weights_local(b_.out.dims, b_.t));
  op.bytes = weights * (b_.shapes.e + 2);
  emit_.compute(op);
}

// The delayed-scaling recipe's reduction of the FP8 tensors' amax values over the stage's TP x
// DP ranks, once per iteration: one fp32 value for each linear layer's input, weight and output
// gradient (Megatron-Core's amax reduction group). Nothing waits for it within the iteration.
void RankProgram::fp8_amax_reduction() {
  const int64_t ranks = b_.t * b_.dp;
  if (ranks < 2) return;
  Op op = emit_.make(OpKind::kAllReduce, OpLabel::kFp8Amax);
  op.group = Group::kDp;
  const double tensors = 3.0 * kLinearsPerLayer * static_cast<double>(b_.layers_per_chunk * b_.v);
  op.bytes = tensors * kAmaxBytes;
  op.group_size = static_cast<int32_t>(ranks);
  op.group_nodes = std::min<int32_t>(static_cast<int32_t>(ranks), tp_nodes_ * dp_nodes_);
  emit_.communicate(op, Stream::kDpComm);
}

// The offloaded share of the optimizer step (`params` of the rank's sharded parameters), on the
// host stream beside the GPU's share: the fp32 gradients to the host once reduced, the step
// through host memory (as the GPU's: kAdamBytesPerParam per parameter), the bf16 parameters
// back. The parameter all-gathers that follow wait for the copy back too (offload_done_).
void RankProgram::offload_optimizer(double params, OpVertex grads_reduced) {
  const OpVertex on_gpu = emit_.last_compute();
  emit_.set_last_compute(grads_reduced);
  Op grads = emit_.make(OpKind::kHostTransfer, OpLabel::kOffloadGrads);
  grads.bytes = params * kGradBytes;
  const OpVertex copied = emit_.communicate(grads, Stream::kHost);
  for (OpVertex v : dp_ops_) emit_.depend(v, copied);
  Op step = emit_.make(OpKind::kHostOptimizer, OpLabel::kHostOptimizer);
  step.bytes = params * kAdamBytesPerParam;
  step.flops = params * kAdamFlopsPerParam;
  emit_.communicate(step, Stream::kHost);
  Op back = emit_.make(OpKind::kHostTransfer, OpLabel::kOffloadParams);
  back.bytes = params * b_.shapes.e;
  offload_done_ = emit_.communicate(back, Stream::kHost);
  emit_.set_last_compute(on_gpu);
}

OpVertex RankProgram::param_gather(size_t bucket, double params) {
  Op op = emit_.make(OpKind::kAllGather, OpLabel::kNone);
  op.group = Group::kDp;
  op.bucket = static_cast<int32_t>(bucket);
  op.bytes = params * b_.shapes.e;
  op.group_size = static_cast<int32_t>(b_.dp);
  op.group_nodes = dp_nodes_;
  const OpVertex v = emit_.communicate(op, Stream::kDpComm);
  if (offload_done_ != kNoOp) emit_.depend(offload_done_, v);
  return v;
}

// The units of the rank's parameters in the order the last micro-batch's backward completes
// their gradients (emit_buckets' order), cut into buckets as emit_buckets cuts them; the gathers
// then go out last bucket first, the order in which the forward needs them.
void RankProgram::emit_param_gathers(const std::vector<schedule::PipelineStep>& steps) {
  std::vector<std::pair<std::pair<int64_t, int64_t>, double>> units;
  for (const schedule::PipelineStep& step : steps) {
    if (step.forward || step.micro_batch != b_.m - 1) continue;
    const int64_t vstage = step.chunk * b_.p + c_.pp;
    if (vstage == last_vstage_) units.push_back({{vstage, kHeadUnit}, b_.head_params()});
    for (int64_t i = b_.layers_per_chunk - 1; i >= 0; --i)
      units.push_back({{vstage, vstage * b_.layers_per_chunk + i}, b_.layer_params_local});
    if (vstage == 0) units.push_back({{vstage, kEmbeddingUnit}, b_.embedding_params()});
  }
  const double bucket_params = static_cast<double>(b_.config.dp_bucket_params());
  double accumulated = 0;
  for (size_t i = 0; i < units.size(); ++i) {
    accumulated += units[i].second;
    unit_bucket_[units[i].first] = planned_buckets_.size();
    if (accumulated < bucket_params && i + 1 < units.size()) continue;
    planned_buckets_.push_back(accumulated);
    accumulated = 0;
  }
  emit_.context() = Op{};
  emit_.context().pass = Pass::kStep;
  param_gathers_.assign(planned_buckets_.size(), kNoOp);
  gather_waited_.assign(planned_buckets_.size(), false);
  for (size_t k = planned_buckets_.size(); k-- > 0;)
    param_gathers_[k] = param_gather(k, planned_buckets_[k]);
}

void RankProgram::wait_param_gather(OpEmitter& emit, int64_t vstage, int64_t unit) {
  if (!gathers_overlap() || emit.context().micro_batch != 0) return;
  const auto it = unit_bucket_.find({vstage, unit});
  if (it == unit_bucket_.end() || gather_waited_[it->second]) return;
  gather_waited_[it->second] = true;
  emit.wait(param_gathers_[it->second]);
}

}  // namespace

TrainingGraph build_rank_programs(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                                  const GraphOptions& options) {
  Build b(model, config, options);
  b.out.ranks = b.groups.simulated_ranks();
  const size_t slots = options.all_ranks ? static_cast<size_t>(b.t * b.dp) : 1;
  b.sends.assign(slots * b.p * b.v * b.m * 2, SendEnd{});
  // Reserving avoids re-copying every vertex's edge lists as the graph grows (a folded graph is
  // small enough not to need it).
  size_t reserve = static_cast<size_t>(std::min(estimate_ops(model, config, options), kMaxOps));
  if (b.fold_enabled()) {
    // A step block and a send per step, the unfolded last backward under DP, step ops.
    const size_t ranks = b.out.ranks.size();
    reserve = ranks * static_cast<size_t>(4 * b.m * b.v +
                                          (b.dp > 1 ? 48 * b.v * b.layers_per_chunk : 0) + 64);
  }
  b.sink.ops.reserve(reserve);
  b.sink.edges.reserve(reserve);
  b.sink.delays.reserve(reserve);
  for (size_t r = 0; r < b.out.ranks.size(); ++r) RankProgram(b, static_cast<int32_t>(r)).build();
  for (const auto& [key, vertex] : b.sink.receives) {
    const SendEnd& send = b.sends[key];
    if (send.vertex == kNoOp) throw std::logic_error("pipeline send missing");
    b.sink.edge(send.vertex, vertex, send.delay);
  }
  b.out.graph = make_op_graph(std::move(b.sink.ops), b.sink.edges, b.sink.delays);
  b.out.num_collectives = b.groups.num_collectives();
  return std::move(b.out);
}

}  // namespace mpsim::graph
