// Checking a ParallelConfig against a model and hardware (validate_parallel_config in
// spec_loader.h). Each check throws FieldError naming the ParallelConfig field the user would
// change (for a model or hardware that cannot be used at all, the ModelSpec field or the
// HardwareProfile field path at fault).
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "common/text.h"
#include "simulator/spec/spec_loader.h"
#include "simulator/spec/text_format.h"

namespace mpsim::spec {
namespace {

namespace pb = google::protobuf;

// Limits. Larger values are refused as typos rather than simulated for hours.
constexpr int64_t kMaxGpus = 1048576;
constexpr int64_t kMaxGlobalBatch = 16777216;
constexpr int64_t kMaxMicroBatches = 1048576;
constexpr int64_t kMaxZeroStage = 3;
// Megatron-LM's default DP gradient bucket: max(40M, 1M x dp) parameters.
constexpr int64_t kMinBucketParams = 40'000'000;
constexpr int64_t kBucketParamsPerDpRank = 1'000'000;

[[noreturn]] void field_fail(const std::string& field, const std::string& message) {
  throw FieldError(field, message);
}

// A field that must lie in [min, max]; `what` is how the message names it.
void check_range(const char* field, const char* what, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    field_fail(field, what + (" (" + number_text(value) + ") is out of range; expected " +
                              number_text(min) + " to " + number_text(max)));
  }
}

// The model must be usable even when built in code rather than loaded (no zero divisors). The
// error names the ModelSpec field at fault.
void check_model_usable(const ModelSpec& m) {
  const std::pair<const char*, int64_t> sizes[] = {{"num_layers", m.num_layers()},
                                                   {"hidden_size", m.hidden_size()},
                                                   {"num_attention_heads", m.num_attention_heads()},
                                                   {"seq_length", m.seq_length()},
                                                   {"vocab_size", m.vocab_size()}};
  for (const auto& [field, value] : sizes) {
    if (value <= 0) {
      field_fail(field, std::string(field) + " (" + number_text(value) +
                            ") is not positive; expected "
                            "a model that passed load_model_spec");
    }
  }
  if (m.num_kv_heads() < 0 || m.ffn_hidden_size() < 0) {
    field_fail(m.num_kv_heads() < 0 ? "num_kv_heads" : "ffn_hidden_size",
               "num_kv_heads or ffn_hidden_size is negative; expected 0 or a count");
  }
}

void check_counts(const ParallelConfig& c) {
  const int64_t gpus = c.num_gpus();
  check_range("num_gpus", "num_gpus", gpus, 1, kMaxGpus);
  check_range("tensor_parallel", "tp", c.tensor_parallel(), 1, gpus);
  check_range("pipeline_parallel", "pp", c.pipeline_parallel(), 1, gpus);
  if (c.context_parallel() < 0 || c.context_parallel() > gpus) {
    field_fail("context_parallel", "cp (" + number_text(c.context_parallel()) +
                                       ") is out of range; expected 1 to num_gpus (" +
                                       number_text(gpus) + "), or 0 for none");
  }
  if (c.data_parallel() != 0) check_range("data_parallel", "dp", c.data_parallel(), 1, gpus);
  check_range("global_batch_size", "global batch size", c.global_batch_size(), 1, kMaxGlobalBatch);
  check_range("micro_batch_size", "micro-batch size", c.micro_batch_size(), 1,
              c.global_batch_size());
  if (c.virtual_pipeline_stages() < 0) {
    field_fail("virtual_pipeline_stages",
               "vpp (" + number_text(c.virtual_pipeline_stages()) +
                   ") is negative; expected 1 or more model chunks per pipeline rank");
  }
  if (c.dp_bucket_params() < 0) {
    field_fail("dp_bucket_params", "dp_bucket_params (" + number_text(c.dp_bucket_params()) +
                                       ") is negative; expected a count, or 0 for the default");
  }
}

// Derives or checks dp so that num_gpus = tp x pp x dp.
int64_t data_parallel_size(const ParallelConfig& c) {
  const int64_t cp = std::max<int64_t>(1, c.context_parallel());
  const int64_t tp = c.tensor_parallel() * cp, pp = c.pipeline_parallel(), gpus = c.num_gpus();
  const std::string tp_text = cp > 1 ? "tp x cp" : "tp";
  const std::string tp_value =
      cp > 1 ? number_text(c.tensor_parallel()) + " x " + number_text(cp) : number_text(tp);
  if (c.data_parallel() == 0) {
    if (gpus % (tp * pp) != 0) {
      field_fail("num_gpus", "num_gpus (" + number_text(gpus) + ") is not divisible by " + tp_text +
                                 " x pp (" + tp_value + " x " + number_text(pp) + " = " +
                                 number_text(tp * pp) + "); expected a multiple");
    }
    return gpus / (tp * pp);
  }
  const int64_t dp = c.data_parallel();
  if (tp * pp * dp != gpus) {
    field_fail("data_parallel", tp_text + " x pp x dp (" + tp_value + " x " + number_text(pp) +
                                    " x " + number_text(dp) + " = " + number_text(tp * pp * dp) +
                                    ") does not equal num_gpus (" + number_text(gpus) +
                                    "); expected dp = num_gpus / (" + tp_text + " x pp)");
  }
  return dp;
}

void check_divides(const char* field, const char* what, int64_t value, const char* by_what,
                   int64_t by) {
  if (value % by != 0) {
    field_fail(field, std::string(what) + " (" + number_text(value) + ") is not divisible by " +
                          by_what + " (" + number_text(by) + "); expected " + by_what +
                          " to divide " + number_text(value));
  }
}

// TP splits heads, kv heads and the MLP; PP x VPP splits the layers.
void check_model_split(const ParallelConfig& c, const ModelSpec& m) {
  const int64_t tp = c.tensor_parallel();
  const int64_t kv = m.num_kv_heads() == 0 ? m.num_attention_heads() : m.num_kv_heads();
  const int64_t ffn = m.ffn_hidden_size() == 0 ? 4 * m.hidden_size() : m.ffn_hidden_size();
  check_divides("tensor_parallel", "num_attention_heads", m.num_attention_heads(), "tp", tp);
  check_divides("tensor_parallel", "num_kv_heads", kv, "tp", tp);
  check_divides("tensor_parallel", "ffn_hidden_size", ffn, "tp", tp);
  const int64_t pp = c.pipeline_parallel(), vpp = c.virtual_pipeline_stages();
  if (vpp > m.num_layers()) {
    field_fail("virtual_pipeline_stages",
               "vpp (" + number_text(vpp) + ") is larger than num_layers (" +
                   number_text(m.num_layers()) + "); expected at most one chunk per layer");
  }
  if (vpp == 1) {
    check_divides("pipeline_parallel", "num_layers", m.num_layers(), "pp", pp);
  } else {
    check_divides("virtual_pipeline_stages", "num_layers", m.num_layers(), "pp x vpp", pp * vpp);
  }
}

// Returns the number of micro-batches each pipeline runs per iteration.
int64_t check_batch(const ParallelConfig& c, int64_t dp) {
  const int64_t gbs = c.global_batch_size(), mbs = c.micro_batch_size();
  if (gbs % (mbs * dp) != 0) {
    field_fail("global_batch_size", "global batch size (" + number_text(gbs) +
                                        ") is not divisible by mbs x dp (" + number_text(mbs) +
                                        " x " + number_text(dp) + " = " + number_text(mbs * dp) +
                                        "); expected a multiple");
  }
  const int64_t micro_batches = gbs / (mbs * dp);
  if (micro_batches > kMaxMicroBatches) {
    field_fail("global_batch_size", "micro-batches per pipeline (" + number_text(micro_batches) +
                                        ") exceed the limit " + number_text(kMaxMicroBatches) +
                                        "; expected a larger --mbs or a smaller --gbs");
  }
  return micro_batches;
}

// Fills the schedule when unspecified and checks it against vpp, pp and micro-batches.
Schedule check_schedule(const ParallelConfig& c, int64_t micro_batches) {
  const int64_t vpp = c.virtual_pipeline_stages(), pp = c.pipeline_parallel();
  Schedule s = c.schedule();
  if (s == SCHEDULE_UNSPECIFIED) s = vpp > 1 ? INTERLEAVED_1F1B : ONE_F_ONE_B;
  if (!Schedule_IsValid(s)) {
    field_fail("schedule", "unknown schedule (" + number_text(int64_t{s}) +
                               "); expected gpipe, 1f1b or interleaved");
  }
  if (s != INTERLEAVED_1F1B) {
    if (vpp > 1) {
      field_fail("virtual_pipeline_stages",
                 "vpp (" + number_text(vpp) + ") needs the interleaved schedule, not " +
                     (s == GPIPE ? "gpipe" : "1f1b") + "; expected vpp 1");
    }
    return s;
  }
  if (vpp < 2) {
    field_fail("virtual_pipeline_stages",
               "the interleaved schedule needs vpp >= 2 model chunks per pipeline rank "
               "(got " +
                   number_text(vpp) + ")");
  }
  if (pp < 2) {
    field_fail("pipeline_parallel",
               "the interleaved schedule needs pp >= 2 (got " + number_text(pp) + ")");
  }
  if (micro_batches % pp != 0) {
    field_fail("global_batch_size",
               "micro-batches per pipeline (" + number_text(micro_batches) +
                   ") is not divisible by pp (" + number_text(pp) +
                   "); the interleaved schedule expects a multiple (as Megatron-LM)");
  }
  return s;
}

void check_sequence_parallel(const ParallelConfig& c, const ModelSpec& m) {
  if (!c.sequence_parallel()) return;
  const int64_t tp = c.tensor_parallel();
  if (tp < 2) {
    field_fail("sequence_parallel", "sequence parallelism needs tp > 1 (got tp " + number_text(tp) +
                                        "); expected --tp 2 or more, or no --sp");
  }
  check_divides("sequence_parallel", "seq_length", m.seq_length(), "tp", tp);
}

void check_param_gather_overlap(const ParallelConfig& c) {
  if (!c.overlap_param_gather()) return;
  if (c.zero_stage() != 1) {
    field_fail("overlap_param_gather",
               "overlaps the distributed optimizer's parameter all-gather, but zero stage is " +
                   number_text(c.zero_stage()) + "; expected zero stage 1");
  }
  if (!c.overlap_dp_comm()) {
    field_fail("overlap_param_gather",
               "needs the gradient reduction overlapped too (as Megatron-LM asks); expected "
               "overlap_dp_comm");
  }
}

void check_context_parallel(const ParallelConfig& c, const ModelSpec& m) {
  const int64_t cp = c.context_parallel();
  if (cp < 0 || cp > kMaxGpus) {
    field_fail("context_parallel", "cp (" + number_text(cp) + ") is out of range; expected 1 to " +
                                       number_text(kMaxGpus) + ", or 0 for none");
  }
  if (cp <= 1) return;
  if (c.attention() == ATTENTION_UNFUSED) {
    field_fail("context_parallel",
               "context parallelism runs the attention core as fused blocks (Transformer "
               "Engine), but the attention is unfused; expected flash attention with cp " +
                   number_text(cp));
  }
  check_divides("context_parallel", "seq_length", m.seq_length(), "2 x cp", 2 * cp);
  if (c.sequence_parallel()) {
    check_divides("context_parallel", "seq_length / cp", m.seq_length() / cp, "tp",
                  c.tensor_parallel());
  }
}

// Transformer Engine runs a GEMM in FP8 only when its input's rows divide by 8 and its columns
// by 16 (its assert_dim_for_fp8_exec): the tokens of a micro-batch on one rank, and each linear
// layer's input width on one TP rank.
void check_fp8_shapes(const ParallelConfig& c, const ModelSpec& m) {
  if (m.dtype() != FP8) return;
  const int64_t tp = c.tensor_parallel(), cp = std::max<int64_t>(1, c.context_parallel());
  const int64_t ffn = m.ffn_hidden_size() == 0 ? 4 * m.hidden_size() : m.ffn_hidden_size();
  const int64_t head_dim =
      m.num_attention_heads() > 0 ? m.hidden_size() / m.num_attention_heads() : 0;
  const int64_t tokens = c.micro_batch_size() * m.seq_length() / cp;
  auto need = [&](const char* what, int64_t value, int64_t by) {
    if (value % by != 0) {
      field_fail("dtype",
                 std::string("FP8 (Transformer Engine) needs GEMM inputs whose rows divide "
                             "by 8 and columns by 16, but ") +
                     what + " is " + number_text(value) + "; expected a multiple of " +
                     number_text(by));
    }
  };
  need("the tokens of a micro-batch on one rank", tokens, 8);
  need("the hidden size (QKV and fc1 input)", m.hidden_size(), 16);
  need("the attention width per TP rank (projection input)",
       m.num_attention_heads() / tp * head_dim, 16);
  need("the FFN width per TP rank (fc2 input)", ffn / tp, 16);
}

void check_optimizer_offload(const ParallelConfig& c, const Hardware& hw) {
  const double f = c.optimizer_offload();
  if (!(f >= 0 && f <= 1)) {
    field_fail("optimizer_offload", "optimizer_offload (" + common::shortest(f) +
                                        ") is not a fraction; expected 0 (none) to 1 (all)");
  }
  if (f == 0) return;
  if (!(hw.host_link_bytes_per_s > 0)) {
    field_fail("node.host_link_bandwidth",
               "'" + hw.name +
                   "' has no host-link bandwidth, which the optimizer offload is priced by; "
                   "expected node.host_link_bandwidth in the profile");
  }
  if (!(hw.host_memory_bytes_per_s > 0)) {
    field_fail("node.host_memory_bandwidth",
               "'" + hw.name +
                   "' has no host memory bandwidth, which the offloaded optimizer step is priced "
                   "by; expected node.host_memory_bandwidth in the profile");
  }
}

void check_tp_comm_overlap(const ParallelConfig& c, const Hardware& hw) {
  if (!c.tp_comm_overlap()) return;
  if (!c.sequence_parallel()) {
    field_fail("tp_comm_overlap",
               "overlaps the sequence-parallel all-gathers and reduce-scatters with the GEMMs "
               "(Transformer Engine), but sequence parallelism is off; expected "
               "sequence_parallel (and tp > 1)");
  }
  if (hw.gpus_per_node > 0 && c.tensor_parallel() > hw.gpus_per_node) {
    field_fail("tp_comm_overlap",
               "needs the TP group within one node, but tp " + number_text(c.tensor_parallel()) +
                   " exceeds the " + number_text(hw.gpus_per_node) + " GPUs per node of '" +
                   hw.name + "'; expected tp at most " + number_text(hw.gpus_per_node));
  }
}

void check_zero(const ParallelConfig& c) {
  check_range("zero_stage", "zero stage", c.zero_stage(), 0, kMaxZeroStage);
  if (c.zero_stage() >= 2 && c.pipeline_parallel() > 1) {
    field_fail("zero_stage",
               "zero stage " + number_text(c.zero_stage()) + " with pp " +
                   number_text(c.pipeline_parallel()) +
                   " is not supported (as in DeepSpeed); expected zero 0 or 1 with pp > 1");
  }
}

// Enum values arriving as numbers the enums do not know (from code, not from the CLI).
void check_choices(const ParallelConfig& c) {
  if (!Recompute_IsValid(c.recompute())) {
    field_fail("recompute", "unknown recompute mode (" + number_text(int64_t{c.recompute()}) +
                                "); expected none, selective or full");
  }
  if (!Attention_IsValid(c.attention())) {
    field_fail("attention", "unknown attention implementation (" +
                                number_text(int64_t{c.attention()}) +
                                "); expected flash or unfused");
  }
  if (!RankOrder_IsValid(c.rank_order())) {
    field_fail("rank_order", "unknown rank order (" + number_text(int64_t{c.rank_order()}) +
                                 "); expected tp-dp-pp or tp-pp-dp");
  }
}

// Fused (flash) attention kernels take head sizes that are multiples of 8 up to 256
// (FlashAttention-2; cuDNN's fused attention on Hopper); the unfused path takes any.
constexpr int64_t kFlashMaxHeadDim = 256;
constexpr int64_t kFlashHeadDimMultiple = 8;

void check_attention(const ParallelConfig& c, const ModelSpec& m) {
  if (c.attention() != ATTENTION_FLASH) return;
  const int64_t head_dim = m.hidden_size() / m.num_attention_heads();
  if (head_dim % kFlashHeadDimMultiple != 0 || head_dim > kFlashMaxHeadDim) {
    field_fail("attention",
               "flash attention needs a head size (hidden_size / "
               "num_attention_heads) that is a multiple of 8 and at most 256; '" +
                   m.name() + "' has " + number_text(head_dim) +
                   "; expected unfused attention for this model");
  }
}

// The HardwareProfile field holding the peak of `dtype`: "gpu.peak_fp8".
std::string peak_field(DType dtype) { return "gpu.peak_" + common::lower(DType_Name(dtype)); }

void check_dtype(const ModelSpec& m, const Hardware& hw) {
  if (m.dtype() == DTYPE_UNSPECIFIED) {
    field_fail("dtype", "dtype is not specified; expected " + enum_choices(DType_descriptor()));
  }
  if (hw.peak_flops(m.dtype()) <= 0) {
    const pb::EnumValueDescriptor* v = DType_descriptor()->FindValueByNumber(m.dtype());
    field_fail(peak_field(m.dtype()), "'" + hw.name +
                                          "' has no peak FLOP rate for the model's dtype " +
                                          (v ? v->name() : number_text(int64_t{m.dtype()})) +
                                          "; expected hardware that supports it");
  }
}

}  // namespace

ParallelConfig validate_parallel_config(const ParallelConfig& config, const ModelSpec& model,
                                        const Hardware& hardware) {
  check_model_usable(model);
  check_counts(config);
  ParallelConfig out = config;
  if (out.virtual_pipeline_stages() == 0) out.set_virtual_pipeline_stages(1);
  // The model's own constraints first: they say more than the GPU arithmetic that follows.
  check_model_split(out, model);
  const int64_t dp = data_parallel_size(config);
  out.set_data_parallel(dp);
  const int64_t micro_batches = check_batch(out, dp);
  out.set_schedule(check_schedule(out, micro_batches));
  check_sequence_parallel(out, model);
  check_zero(out);
  check_param_gather_overlap(out);
  check_tp_comm_overlap(out, hardware);
  check_optimizer_offload(out, hardware);
  check_choices(out);
  if (out.attention() == ATTENTION_UNSPECIFIED) out.set_attention(ATTENTION_FLASH);
  check_attention(out, model);
  if (out.context_parallel() == 0) out.set_context_parallel(1);
  check_context_parallel(out, model);
  check_dtype(model, hardware);
  check_fp8_shapes(out, model);
  if (out.recompute() == RECOMPUTE_UNSPECIFIED) out.set_recompute(RECOMPUTE_NONE);
  if (out.rank_order() == RANK_ORDER_UNSPECIFIED) out.set_rank_order(TP_DP_PP);
  if (out.dp_bucket_params() == 0) {
    out.set_dp_bucket_params(std::max(kMinBucketParams, kBucketParamsPerDpRank * dp));
  }
  return out;
}

}  // namespace mpsim::spec
