// One rank of the reference trainer; see trainer.h.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>

#include "executor/core/gpt_params.h"
#include "executor/core/p2p_plan.h"
#include "executor/core/range_names.h"
#include "executor/core/rank_layout.h"
#include "executor/core/token_data.h"
#include "executor/cuda/comm.h"
#include "executor/cuda/cuda_check.h"
#include "executor/cuda/device_memory.h"
#include "executor/cuda/gemm.h"
#include "executor/cuda/gpt_model.h"
#include "executor/cuda/kernels.h"
#include "executor/cuda/nvtx_range.h"
#include "executor/cuda/param_store.h"
#include "executor/cuda/run_mark_emit.h"
#include "executor/cuda/trainer.h"
#include "simulator/graph/layer_ops.h"
#include "simulator/graph/model_math.h"
#include "simulator/schedule/pipeline_schedule.h"

namespace mpsim::executor {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kDefaultBucketParams = 40'000'000;  // Megatron-LM's DDP bucket size

class Stream {
 public:
  Stream() { CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  Event() { CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~Event() {
    if (event_ != nullptr) cudaEventDestroy(event_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  // `waiter` runs nothing enqueued after this call before `source`'s work enqueued so far.
  void order(cudaStream_t source, cudaStream_t waiter) const {
    CUDA_CHECK(cudaEventRecord(event_, source));
    CUDA_CHECK(cudaStreamWaitEvent(waiter, event_, 0));
  }

 private:
  cudaEvent_t event_ = nullptr;
};

std::unique_ptr<TokenSource> make_source(const TrainOptions& o, int64_t vocab, int64_t seq) {
  if (o.synthetic) return make_synthetic_source(vocab, seq, o.seed);
  if (vocab < 256) {
    throw std::invalid_argument("byte-level text needs a vocabulary of at least 256 tokens; " +
                                o.model.name() + " has " + std::to_string(vocab) +
                                " (use --synthetic)");
  }
  return make_text_source(o.data_path, seq, o.seed);
}

// NCCL connects point-to-point peers lazily, at the first send or receive between them, and
// that set-up needs both sides inside a matching call. The pipeline plan posts the first
// gradient receive in a group whose peer sends it later in a group of its own, which then
// waits forever on the connection (seen with GPipe on 2 GPUs). One symmetric exchange with
// both neighbours at start-up connects every pair in both directions.
void connect_pipeline(const Communicator& pp, const RankLayout& layout, DeviceMemory& memory,
                      cudaStream_t stream) {
  if (layout.pp < 2) return;
  DeviceBuffer scratch(memory, MemoryCategory::kWorkspace, 4 * sizeof(float), stream);
  float* buffer = scratch.as<float>();
  const int next = (layout.pp_rank + 1) % layout.pp,
            previous = (layout.pp_rank + layout.pp - 1) % layout.pp;
  NCCL_CHECK(ncclGroupStart());
  pp.send(buffer, 1, ncclFloat32, next, stream);
  pp.recv(buffer + 1, 1, ncclFloat32, previous, stream);
  pp.send(buffer + 2, 1, ncclFloat32, previous, stream);
  pp.recv(buffer + 3, 1, ncclFloat32, next, stream);
  NCCL_CHECK(ncclGroupEnd());
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace

struct Trainer::State {
  TrainOptions options;
  GptCatalogue catalogue;
  RankLayout layout;
  std::unique_ptr<schedule::PipelineSchedule> schedule;
  StagePlan plan;
  int64_t micro_batches = 1, tokens = 0;
  Stream compute, tp_stream, dp_stream;
  Event bucket_ready, dp_done;
  std::unique_ptr<DeviceMemory> memory;
  Communicators comm;
  std::unique_ptr<Gemm> gemm;
  std::unique_ptr<FlashAttention> flash;
  std::unique_ptr<Fp8Gemm> fp8_gemm;
  std::unique_ptr<ParamStore> params;
  std::unique_ptr<GptStage> stage;
  std::unique_ptr<TokenSource> data;
  DeviceBuffer stats;  // float[2]: summed token losses, squared gradient norm
  int64_t optimizer_steps = 0;

  // Pipeline tensors between steps, keyed by (activation?, micro-batch, chunk on this rank).
  std::map<std::tuple<bool, int, int>, DeviceBuffer> incoming, outgoing;
  int buckets_launched = 0;

  bool nvtx() const { return options.nvtx; }
  void post(const P2pGroup& group);
  void launch_bucket(int bucket);
  void unit_done(int unit);
  void finish_gradients();
  double gradient_norm_and_loss(double* loss);
  void optimizer_step(int64_t step, double grad_norm);
  // This DP rank's share of the global batch for `step`, on the GPU: the inputs of every
  // micro-batch ([micro-batch][position][sequence]), then their targets.
  DeviceBuffer load_tokens(int64_t step);
  // The pipeline schedule's steps of one iteration on this rank, with their transfers.
  void run_pipeline(const int32_t* inputs, const int32_t* targets, float grad_scale);
  // Every rank's memory peaks, gathered: the largest per category into `report`, and each
  // rank's total.
  void gather_peak_memory(IterationReport& report);
};

void Trainer::State::post(const P2pGroup& group) {
  if (group.transfers.empty()) return;
  const bool interleaved = layout.chunks > 1;
  const P2pTransfer* named = &group.transfers.front();
  for (const P2pTransfer& t : group.transfers)
    if (t.send) {
      named = &t;
      break;
    }
  NvtxRange range(nvtx(), pp_range(named->send, named->activation, named->micro_batch,
                                   interleaved ? named->chunk : -1));
  const int64_t elements = stage->boundary_elements();
  std::vector<DeviceBuffer> sent;
  // Receive buffers are allocated before the group (stream order on the compute stream).
  for (const P2pTransfer& t : group.transfers) {
    if (t.send) continue;
    incoming[{t.activation, t.micro_batch, t.chunk}] = DeviceBuffer(
        *memory, t.activation ? MemoryCategory::kActivations : MemoryCategory::kWorkspace,
        elements * 2, compute.get());
  }
  NCCL_CHECK(ncclGroupStart());
  for (const P2pTransfer& t : group.transfers) {
    const auto key = std::make_tuple(t.activation, t.micro_batch, t.chunk);
    if (t.send) {
      auto it = outgoing.find(key);
      if (it == outgoing.end())
        throw std::logic_error("pipeline send of a tensor not produced yet");
      comm.pp.send(it->second.get(), elements, ncclBfloat16, t.peer, compute.get());
      sent.push_back(std::move(it->second));
      outgoing.erase(it);
    } else {
      comm.pp.recv(incoming[key].get(), elements, ncclBfloat16, t.peer, compute.get());
    }
  }
  NCCL_CHECK(ncclGroupEnd());
  // `sent` is released here, after the sends in stream order.
}

void Trainer::State::launch_bucket(int b) {
  const GradBucket& bucket = params->buckets()[static_cast<size_t>(b)];
  bucket_ready.order(compute.get(), dp_stream.get());
  const int64_t shard = bucket.shard_size() / layout.dp;
  float* begin = params->grads() + bucket.begin;
  NvtxRange range(nvtx(), dp_range(b, params->sharded() ? "reducescatter" : ""));
  if (params->sharded()) {
    comm.dp.reduce_scatter(begin, begin + layout.dp_rank * shard, shard, ncclFloat32,
                           dp_stream.get());
  } else {
    comm.dp.all_reduce(begin, bucket.shard_size(), ncclFloat32, ncclSum, dp_stream.get());
  }
  ++buckets_launched;
}

void Trainer::State::unit_done(int unit) {
  if (layout.dp < 2 || unit < 0) return;
  const int b = params->units()[static_cast<size_t>(unit)].bucket;
  if (params->buckets()[static_cast<size_t>(b)].last_unit == unit) launch_bucket(b);
}

// After the pipeline: tied embeddings summed over first and last stage, the remaining DP buckets,
// and, under sequence parallelism, the TP sum of replicated parameters' partial gradients.
void Trainer::State::finish_gradients() {
  if (params->word_unit() >= 0) {
    {
      NvtxRange range(nvtx(), "comm/embed/allreduce");
      const ParamEntry& word = params->entry("embed.word");
      comm.embedding.all_reduce(params->grads() + word.offset, word.count, ncclFloat32, ncclSum,
                                compute.get());
    }
    unit_done(params->word_unit());
  }
  if (layout.dp > 1) {
    if (buckets_launched != static_cast<int>(params->buckets().size()))
      throw std::logic_error("not every DP bucket was reduced");
    dp_done.order(dp_stream.get(), compute.get());
  }
  if (options.config.sequence_parallel() && layout.tp > 1) {
    NvtxRange range(nvtx(), "comm/tp/sequence_parallel_grads");
    NCCL_CHECK(ncclGroupStart());
    for (const ParamEntry& e : params->entries())
      if (e.spec->sequence_parallel_grad)
        comm.tp.all_reduce(params->grads() + e.offset, e.count, ncclFloat32, ncclSum,
                           compute.get());
    NCCL_CHECK(ncclGroupEnd());
  }
}

// Each distinct gradient element is counted once over the run: TP-replicated tensors by TP rank 0,
// tied copies by the first stage, and DP replicas by DP rank 0 (or, with the distributed
// optimizer, each DP rank its own shard). Returns the global norm; `loss` gets the mean loss.
double Trainer::State::gradient_norm_and_loss(double* loss) {
  float* s = stats.as<float>();
  cudaStream_t c = compute.get();
  if (!params->sharded()) {
    if (layout.dp_rank == 0) {
      for (const ParamEntry& e : params->entries())
        if (e.norm_owner) kernels::sum_squares(params->grads() + e.offset, e.count, s + 1, c);
    }
  } else {
    const int64_t dp = layout.dp;
    for (const GradBucket& b : params->buckets()) {
      const int64_t shard = b.shard_size() / dp;
      const int64_t lo = b.begin + layout.dp_rank * shard, hi = lo + shard;
      for (const ParamEntry& e : params->entries()) {
        if (!e.norm_owner) continue;
        const int64_t from = std::max(lo, e.offset), to = std::min(hi, e.offset + e.count);
        if (from < to) kernels::sum_squares(params->grads() + from, to - from, s + 1, c);
      }
    }
  }
  if (layout.tp_rank != 0) kernels::fill_fp32(s, 0.0f, 1, c);  // TP peers hold the same loss
  {
    NvtxRange range(nvtx(), "comm/world/stats.allreduce");
    comm.world.all_reduce(s, 2, ncclFloat32, ncclSum, c);
  }
  float host[2] = {0, 0};
  CUDA_CHECK(cudaMemcpyAsync(host, s, sizeof(host), cudaMemcpyDeviceToHost, c));
  CUDA_CHECK(cudaStreamSynchronize(c));
  *loss = host[0] / static_cast<double>(tokens * micro_batches * layout.dp);
  return std::sqrt(static_cast<double>(host[1]));
}

void Trainer::State::optimizer_step(int64_t step, double grad_norm) {
  const TrainOptions& o = options;
  const float scale = o.clip_grad > 0 && grad_norm > o.clip_grad
                          ? static_cast<float>(o.clip_grad / (grad_norm + 1e-6))
                          : 1.0f;
  const float lr = static_cast<float>(learning_rate(o, step));
  ++optimizer_steps;
  cudaStream_t c = compute.get();
  ParamStore& p = *params;
  {
    NvtxRange range(nvtx(), "optimizer");
    auto adam = [&](int64_t state_offset, int64_t flat_offset, int64_t n) {
      kernels::adamw_step(
          p.master() + state_offset, p.grads() + flat_offset, p.adam_m() + state_offset,
          p.adam_v() + state_offset, p.model() + flat_offset, p.decay_bits(), flat_offset, n, lr,
          static_cast<float>(o.beta1), static_cast<float>(o.beta2), static_cast<float>(o.adam_eps),
          static_cast<float>(o.weight_decay), optimizer_steps, scale, c);
    };
    if (!p.sharded()) {
      adam(0, 0, p.size());
    } else {
      for (const GradBucket& b : p.buckets()) {
        const int64_t shard = b.shard_size() / layout.dp;
        adam(b.shard_offset, b.begin + layout.dp_rank * shard, shard);
      }
    }
  }
  if (p.sharded()) {
    for (size_t i = 0; i < p.buckets().size(); ++i) {
      const GradBucket& b = p.buckets()[i];
      const int64_t shard = b.shard_size() / layout.dp;
      NvtxRange range(nvtx(), dp_range(static_cast<int>(i), "allgather"));
      comm.dp.all_gather(p.model() + b.begin + layout.dp_rank * shard, p.model() + b.begin, shard,
                         ncclBfloat16, c);
    }
  }
}

Trainer::Trainer(const TrainOptions& options, int rank, const std::vector<uint8_t>& nccl_id)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.options = options;
  emit_run_mark(options);  // the database it is profiled into says what this run trains
  const spec::ParallelConfig& config = options.config;
  const graph::ModelDims dims = graph::model_dims(options.model);
  s.catalogue =
      make_gpt_catalogue(dims, static_cast<int>(config.tensor_parallel()), options.init_std);
  s.layout = make_rank_layout(config, dims.layers, dims.tied, rank);
  const int64_t sequences = config.global_batch_size() / config.data_parallel();
  if (config.global_batch_size() % (config.micro_batch_size() * config.data_parallel()) != 0) {
    throw std::invalid_argument("global batch (" + std::to_string(config.global_batch_size()) +
                                ") is not a multiple of micro-batch x DP");
  }
  s.micro_batches = sequences / config.micro_batch_size();
  s.tokens = dims.seq * config.micro_batch_size();
  s.schedule = schedule::make_pipeline_schedule(
      config.schedule() == spec::SCHEDULE_UNSPECIFIED ? spec::ONE_F_ONE_B : config.schedule(),
      s.layout.pp, static_cast<int>(s.micro_batches), s.layout.chunks);
  if (s.layout.pp > 1) {
    // The plans of all ranks are checked together (matching, ordering, no deadlock) before any
    // transfer: a wrong plan would hang or silently swap tensors.
    if (const std::string problem = check_p2p_plans(*s.schedule); !problem.empty())
      throw std::logic_error("pipeline transfer plan: " + problem);
    s.plan = make_p2p_plan(*s.schedule, s.layout.pp_rank);
  } else {
    s.plan.before.resize(s.schedule->steps(0).size());
  }
  if (nccl_id.size() != sizeof(ncclUniqueId)) throw std::invalid_argument("bad NCCL id size");
  ncclUniqueId id;
  std::memcpy(&id, nccl_id.data(), sizeof(id));
  s.comm = make_communicators(s.layout, id);
  s.memory = std::make_unique<DeviceMemory>();
  connect_pipeline(s.comm.pp, s.layout, *s.memory, s.compute.get());
  s.gemm = std::make_unique<Gemm>(*s.memory, s.compute.get());
  if (graph::is_flash(config.attention()))
    s.flash = std::make_unique<FlashAttention>(*s.memory, s.compute.get());
  if (dims.fp8) s.fp8_gemm = std::make_unique<Fp8Gemm>(*s.memory, s.compute.get());
  const int64_t bucket_params =
      config.dp_bucket_params() > 0 ? config.dp_bucket_params() : kDefaultBucketParams;
  s.params = std::make_unique<ParamStore>(s.catalogue, s.layout, *s.schedule, bucket_params,
                                          config.zero_stage() >= 1, options.seed, *s.memory,
                                          s.compute.get());
  StageResources r;
  r.catalogue = &s.catalogue;
  r.layout = &s.layout;
  r.config = &s.options.config;
  r.params = s.params.get();
  r.memory = s.memory.get();
  r.gemm = s.gemm.get();
  r.flash = s.flash.get();
  r.fp8_gemm = s.fp8_gemm.get();
  r.comm = &s.comm;
  r.compute = s.compute.get();
  r.tp_stream = s.tp_stream.get();
  r.nvtx = options.nvtx;
  s.stage = std::make_unique<GptStage>(r);
  s.data = make_source(options, dims.vocab, dims.seq);
  s.stats = DeviceBuffer(*s.memory, MemoryCategory::kWorkspace, 16, s.compute.get());
  CUDA_CHECK(cudaStreamSynchronize(s.compute.get()));
}

Trainer::~Trainer() {
  if (state_) cudaDeviceSynchronize();
}

DeviceBuffer Trainer::State::load_tokens(int64_t step) {
  const RankLayout& l = layout;
  cudaStream_t c = compute.get();
  const int64_t m = micro_batches, b = options.config.micro_batch_size(), seq = catalogue.dims.seq;
  std::vector<int32_t> raw(static_cast<size_t>(m * b * (seq + 1)));
  data->fill(step - 1, l.dp_rank * m * b, m * b, raw.data());
  std::vector<int32_t> host(static_cast<size_t>(2 * m * b * seq));
  for (int64_t mb = 0; mb < m; ++mb)
    for (int64_t i = 0; i < b; ++i)
      for (int64_t p = 0; p < seq; ++p) {
        const int32_t* sequence = raw.data() + (mb * b + i) * (seq + 1);
        host[static_cast<size_t>(mb * seq * b + p * b + i)] = sequence[p];
        host[static_cast<size_t>(m * seq * b + mb * seq * b + p * b + i)] = sequence[p + 1];
      }
  DeviceBuffer tokens(*memory, MemoryCategory::kWorkspace, static_cast<int64_t>(host.size()) * 4,
                      c);
  CUDA_CHECK(
      cudaMemcpyAsync(tokens.get(), host.data(), host.size() * 4, cudaMemcpyHostToDevice, c));
  return tokens;
}

void Trainer::State::run_pipeline(const int32_t* inputs, const int32_t* targets, float grad_scale) {
  const RankLayout& l = layout;
  const int64_t m = micro_batches;
  const std::vector<schedule::PipelineStep> steps = schedule->steps(l.pp_rank);
  auto done = [&](int unit) { unit_done(unit); };
  for (size_t i = 0; i < steps.size(); ++i) {
    post(plan.before[i]);
    const schedule::PipelineStep& st = steps[i];
    NvtxRange range(nvtx(),
                    pipeline_range(st.forward, st.micro_batch, l.chunks > 1 ? st.chunk : -1));
    const auto key = std::make_tuple(st.forward, st.micro_batch, st.chunk);
    DeviceBuffer in;
    if (auto it = incoming.find(key); it != incoming.end()) {
      in = std::move(it->second);
      incoming.erase(it);
    }
    if (st.forward) {
      DeviceBuffer out =
          stage->forward(st.micro_batch, st.chunk, std::move(in), inputs + st.micro_batch * tokens,
                         targets + st.micro_batch * tokens, stats.as<float>(), grad_scale);
      if (!l.last_virtual_stage(st.chunk)) outgoing[key] = std::move(out);
    } else {
      DeviceBuffer grad =
          stage->backward(st.micro_batch, st.chunk, std::move(in), st.micro_batch == m - 1, done);
      if (!l.first_virtual_stage(st.chunk)) outgoing[key] = std::move(grad);
    }
  }
  post(plan.after);
}

void Trainer::State::gather_peak_memory(IterationReport& report) {
  const RankLayout& l = layout;
  cudaStream_t c = compute.get();
  const MemoryUsage& u = memory->usage();
  std::vector<double> peaks(u.peak.begin(), u.peak.end());
  peaks.push_back(static_cast<double>(u.peak_total));
  peaks.push_back(static_cast<double>(memory->pool_reserved_high()));
  const int64_t per_rank = static_cast<int64_t>(peaks.size());
  std::vector<double> gathered(static_cast<size_t>(per_rank * l.world));
  DeviceBuffer peak_buffer(*memory, MemoryCategory::kWorkspace, per_rank * (1 + l.world) * 8, c);
  double* mine = peak_buffer.as<double>();
  double* all = mine + per_rank;
  CUDA_CHECK(cudaMemcpyAsync(mine, peaks.data(), per_rank * 8, cudaMemcpyHostToDevice, c));
  comm.world.all_gather(mine, all, per_rank, ncclFloat64, c);
  CUDA_CHECK(cudaMemcpyAsync(gathered.data(), all, gathered.size() * 8, cudaMemcpyDeviceToHost, c));
  CUDA_CHECK(cudaStreamSynchronize(c));
  for (int64_t r = 0; r < l.world; ++r)
    for (int64_t i = 0; i < per_rank; ++i)
      peaks[i] = std::max(peaks[i], gathered[static_cast<size_t>(r * per_rank + i)]);
  for (int i = 0; i < kMemoryCategories; ++i)
    report.peak_memory.push_back(static_cast<int64_t>(peaks[i]));
  report.peak_memory_total = static_cast<int64_t>(peaks[kMemoryCategories]);
  report.pool_reserved = static_cast<int64_t>(peaks[kMemoryCategories + 1]);
  for (int64_t r = 0; r < l.world; ++r)
    report.rank_peak_memory_total.push_back(
        static_cast<int64_t>(gathered[static_cast<size_t>(r * per_rank + kMemoryCategories)]));
}

IterationReport Trainer::run_iteration(int64_t step, bool update) {
  State& s = *state_;
  const Clock::time_point start = Clock::now();
  const RankLayout& l = s.layout;
  cudaStream_t c = s.compute.get();
  NvtxRange iteration_range(s.nvtx(), "iteration/" + std::to_string(step));
  s.memory->reset_peaks();
  kernels::fill_fp32(s.params->grads(), 0.0f, s.params->size(), c);
  kernels::fill_fp32(s.stats.as<float>(), 0.0f, 2, c);
  s.buckets_launched = 0;

  const int64_t m = s.micro_batches, seq = s.catalogue.dims.seq;
  DeviceBuffer tokens = s.load_tokens(step);
  const int32_t* inputs = tokens.as<int32_t>();
  const int32_t* targets = inputs + m * seq * s.options.config.micro_batch_size();
  const float grad_scale = 1.0f / static_cast<float>(s.tokens * m * l.dp);
  s.run_pipeline(inputs, targets, grad_scale);
  if (!s.incoming.empty() || !s.outgoing.empty() || s.stage->held() != 0)
    throw std::logic_error("pipeline tensors left over at the end of the iteration");
  s.stage->fp8_step();  // FP8 models: the recipe's amax reduction and new scales
  s.finish_gradients();

  IterationReport report;
  report.iteration = step;
  report.grad_norm = s.gradient_norm_and_loss(&report.loss);
  report.lr = learning_rate(s.options, step);
  if (update) {
    s.optimizer_step(step, report.grad_norm);
    s.stage->parameters_updated();
  }
  tokens.reset();
  CUDA_CHECK(cudaStreamSynchronize(c));
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  s.gather_peak_memory(report);

  const double global_tokens = static_cast<double>(s.options.config.global_batch_size()) * seq;
  report.tokens_per_s = global_tokens / report.seconds;
  const double flops =
      graph::model_flops_per_iteration(s.catalogue.dims, s.options.config.global_batch_size());
  report.model_tflops_per_gpu = flops / report.seconds / l.world / 1e12;
  report.mfu = flops / report.seconds / l.world / s.options.peak_flops;
  return report;
}

namespace {

std::map<std::string, std::vector<float>> copy_out(const ParamStore& p, bool gradients) {
  std::map<std::string, std::vector<float>> out;
  CUDA_CHECK(cudaDeviceSynchronize());
  for (const ParamEntry& e : p.entries()) {
    std::vector<float>& values = out[e.spec->name];
    values.resize(static_cast<size_t>(e.count));
    if (gradients) {
      CUDA_CHECK(
          cudaMemcpy(values.data(), p.grads() + e.offset, e.count * 4, cudaMemcpyDeviceToHost));
    } else {
      std::vector<__nv_bfloat16> raw(static_cast<size_t>(e.count));
      CUDA_CHECK(cudaMemcpy(raw.data(), p.model() + e.offset, e.count * 2, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < raw.size(); ++i) values[i] = __bfloat162float(raw[i]);
    }
  }
  return out;
}

}  // namespace

std::map<std::string, std::vector<float>> Trainer::weights() const {
  return copy_out(*state_->params, false);
}
std::map<std::string, std::vector<float>> Trainer::gradients() const {
  return copy_out(*state_->params, true);
}

std::vector<uint8_t> new_nccl_id() {
  ncclUniqueId id;
  NCCL_CHECK(ncclGetUniqueId(&id));
  std::vector<uint8_t> bytes(sizeof(id));
  std::memcpy(bytes.data(), &id, sizeof(id));
  return bytes;
}

int run_training_rank(const TrainOptions& options, const LaunchEnv& env, std::ostream& out,
                      std::ostream& err) {
  // Declared outside the try block so that a failure does not run its destructor: with NCCL
  // operations in flight towards peers that still wait, synchronising or destroying the
  // communicators would hang. The rank exits at once instead and the launcher stops the others.
  std::unique_ptr<Trainer> trainer;
  try {
    int devices = 0;
    CUDA_CHECK(cudaGetDeviceCount(&devices));
    // Under Slurm a task may see only the one GPU bound to it, whatever its local rank.
    const int device = devices == 1 ? 0 : env.local_rank;
    if (device >= devices) {
      throw std::invalid_argument("local rank " + std::to_string(env.local_rank) + " but only " +
                                  std::to_string(devices) + " GPU(s) visible on this node");
    }
    CUDA_CHECK(cudaSetDevice(device));
    std::vector<uint8_t> id;
    if (env.world_size == 1) {
      id = new_nccl_id();
    } else {
      id = rendezvous(env, env.rank == 0 ? new_nccl_id() : std::vector<uint8_t>{},
                      std::chrono::seconds(300));
    }
    trainer = std::make_unique<Trainer>(options, env.rank, id);
    std::ofstream file;
    std::ostream* log = &out;
    if (env.rank == 0 && !options.log_path.empty()) {
      file.open(options.log_path, std::ios::app);
      if (!file) throw std::runtime_error("cannot write the log " + options.log_path);
      log = &file;
    }
    for (int64_t step = 1; step <= options.steps; ++step) {
      const IterationReport r = trainer->run_iteration(step);
      if (env.rank != 0) continue;
      nlohmann::json line;
      line["iteration"] = r.iteration;
      line["loss"] = r.loss;
      line["grad_norm"] = r.grad_norm;
      line["lr"] = r.lr;
      line["iteration_s"] = r.seconds;
      line["tokens_per_s"] = r.tokens_per_s;
      line["model_tflops_per_gpu"] = r.model_tflops_per_gpu;
      line["mfu"] = r.mfu;
      nlohmann::json memory;
      for (int i = 0; i < kMemoryCategories; ++i)
        memory[std::string(memory_category_name(static_cast<MemoryCategory>(i)))] =
            r.peak_memory[i];
      memory["total"] = r.peak_memory_total;
      memory["pool_reserved"] = r.pool_reserved;
      line["peak_memory_bytes"] = memory;
      line["rank_peak_memory_bytes"] = r.rank_peak_memory_total;
      *log << line.dump() << std::endl;
    }
    return 0;
  } catch (const std::exception& e) {
    err << "mpsim train: rank " << env.rank << ": " << e.what() << std::endl;
    if (trainer) std::_Exit(1);
    return 1;
  }
}

}  // namespace mpsim::executor
