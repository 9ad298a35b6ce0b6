// Megatron-LM arguments in and out; see megatron_args.h. The flag table below is the one place
// that says what each flag is; the defaults are Megatron-LM's (megatron/training/arguments.py).
#include "simulator/spec/megatron_args.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <string_view>

#include "common/text.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/text_format.h"

namespace mpsim::spec {
namespace {

// ---- Words ---------------------------------------------------------------------------------

struct Word {
  std::string text;
  int line = 0;
};

bool skipped_shell_word(const std::string& w) {
  if (w == "(" || w == ")") return true;
  if (w.size() >= 2 && w.compare(w.size() - 2, 2, "=(") == 0) return true;  // ARGS=(
  return w.rfind("${", 0) == 0 && w.size() > 5 && w.compare(w.size() - 4, 4, "[@]}") == 0;
}

// Splits `text` as a shell would (see megatron_args.h), with each word's line.
std::vector<Word> split_words(const std::string& text, const std::string& source) {
  std::vector<Word> words;
  std::string current;
  bool in_word = false;
  int line = 1, word_line = 1;
  auto finish = [&] {
    if (in_word && !skipped_shell_word(current)) words.push_back({current, word_line});
    current.clear();
    in_word = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {
      ++i, ++line;
      continue;
    }
    if (c == '\n') {
      finish();
      ++line;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      finish();
      continue;
    }
    if (c == '#' && !in_word) {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
      continue;
    }
    if (!in_word) word_line = line;
    in_word = true;
    if (c == '\'' || c == '"') {
      const size_t close = text.find(c, i + 1);
      if (close == std::string::npos)
        throw SpecError(source, line, "", std::string("unclosed ") + c + " quote");
      for (size_t j = i + 1; j < close; ++j)
        if (text[j] == '\n') ++line;
      current += text.substr(i + 1, close - i - 1);
      i = close;
      continue;
    }
    current += c;
  }
  finish();
  // A quoted "--flag value" (as the Llama example's arrays write them) is two words.
  std::vector<Word> out;
  for (const Word& w : words) {
    const size_t space = w.text.find(' ');
    if (w.text.rfind("--", 0) == 0 && space != std::string::npos) {
      out.push_back({w.text.substr(0, space), w.line});
      size_t at = space;
      while (at < w.text.size()) {
        const size_t begin = w.text.find_first_not_of(' ', at);
        if (begin == std::string::npos) break;
        const size_t end = std::min(w.text.find(' ', begin), w.text.size());
        out.push_back({w.text.substr(begin, end - begin), w.line});
        at = end;
      }
    } else {
      out.push_back(w);
    }
  }
  return out;
}

// ---- The flag table ------------------------------------------------------------------------

enum class Kind { kModelled, kLauncher, kNotModelled, kNoEffect };

struct FlagInfo {
  std::string_view name;  // without "--"
  int arity;              // 0 a switch, 1 one value, -1 every word up to the next flag
  Kind kind;
};

// clang-format off: one flag per line reads as a table
constexpr FlagInfo kFlags[] = {
    // Model.
    {"num-layers", 1, Kind::kModelled},
    {"hidden-size", 1, Kind::kModelled},
    {"ffn-hidden-size", 1, Kind::kModelled},
    {"num-attention-heads", 1, Kind::kModelled},
    {"group-query-attention", 0, Kind::kModelled},
    {"num-query-groups", 1, Kind::kModelled},
    {"kv-channels", 1, Kind::kModelled},
    {"seq-length", 1, Kind::kModelled},
    {"max-position-embeddings", 1, Kind::kModelled},
    {"vocab-size", 1, Kind::kModelled},
    {"make-vocab-size-divisible-by", 1, Kind::kModelled},
    {"tokenizer-type", 1, Kind::kModelled},
    {"swiglu", 0, Kind::kModelled},
    {"normalization", 1, Kind::kModelled},
    {"position-embedding-type", 1, Kind::kModelled},
    {"use-rotary-position-embeddings", 0, Kind::kModelled},
    {"rotary-base", 1, Kind::kModelled},
    {"rotary-percent", 1, Kind::kModelled},
    {"untie-embeddings-and-output-weights", 0, Kind::kModelled},
    {"disable-bias-linear", 0, Kind::kModelled},
    {"attention-dropout", 1, Kind::kModelled},
    {"hidden-dropout", 1, Kind::kModelled},
    {"bf16", 0, Kind::kModelled},
    {"fp16", 0, Kind::kModelled},
    {"fp8-format", 1, Kind::kModelled},
    {"num-experts", 1, Kind::kModelled},
    // Parallelism, batch, recomputation, optimizer, attention.
    {"tensor-model-parallel-size", 1, Kind::kModelled},
    {"pipeline-model-parallel-size", 1, Kind::kModelled},
    {"context-parallel-size", 1, Kind::kModelled},
    {"expert-model-parallel-size", 1, Kind::kModelled},
    {"num-layers-per-virtual-pipeline-stage", 1, Kind::kModelled},
    {"virtual-pipeline-model-parallel-size", 1, Kind::kModelled},
    {"sequence-parallel", 0, Kind::kModelled},
    {"micro-batch-size", 1, Kind::kModelled},
    {"global-batch-size", 1, Kind::kModelled},
    {"recompute-granularity", 1, Kind::kModelled},
    {"recompute-method", 1, Kind::kModelled},
    {"recompute-num-layers", 1, Kind::kModelled},
    {"recompute-activations", 0, Kind::kModelled},
    {"use-distributed-optimizer", 0, Kind::kModelled},
    {"overlap-grad-reduce", 0, Kind::kModelled},
    {"overlap-param-gather", 0, Kind::kModelled},
    {"tp-comm-overlap", 0, Kind::kModelled},
    {"optimizer-cpu-offload", 0, Kind::kModelled},
    {"optimizer-offload-fraction", 1, Kind::kModelled},
    {"ddp-bucket-size", 1, Kind::kModelled},
    {"use-tp-pp-dp-mapping", 0, Kind::kModelled},
    {"use-flash-attn", 0, Kind::kModelled},
    {"transformer-impl", 1, Kind::kModelled},
    {"attention-backend", 1, Kind::kModelled},
    // torchrun's.
    {"nproc_per_node", 1, Kind::kLauncher},
    {"nproc-per-node", 1, Kind::kLauncher},
    {"nnodes", 1, Kind::kLauncher},
    {"node_rank", 1, Kind::kNoEffect},
    {"node-rank", 1, Kind::kNoEffect},
    {"master_addr", 1, Kind::kNoEffect},
    {"master-addr", 1, Kind::kNoEffect},
    {"master_port", 1, Kind::kNoEffect},
    {"master-port", 1, Kind::kNoEffect},
    {"rdzv_backend", 1, Kind::kNoEffect},
    {"rdzv_endpoint", 1, Kind::kNoEffect},
    {"rdzv_id", 1, Kind::kNoEffect},
    // Change speed or memory; not modelled (yet).
    {"fp8-recipe", 1, Kind::kNotModelled},
    {"fp8-amax-history-len", 1, Kind::kNotModelled},
    {"fp8-amax-compute-algo", 1, Kind::kNotModelled},
    {"fp8-param-gather", 0, Kind::kNotModelled},
    {"fp8-margin", 1, Kind::kNotModelled},
    {"fp8-interval", 1, Kind::kNotModelled},
    {"grad-reduce-in-bf16", 0, Kind::kNotModelled},
    {"cross-entropy-loss-fusion", 0, Kind::kNotModelled},
    {"no-masked-softmax-fusion", 0, Kind::kNotModelled},
    {"no-bias-gelu-fusion", 0, Kind::kNotModelled},
    {"no-bias-swiglu-fusion", 0, Kind::kNotModelled},
    {"no-bias-dropout-fusion", 0, Kind::kNotModelled},
    {"no-gradient-accumulation-fusion", 0, Kind::kNotModelled},
    {"no-persist-layer-norm", 0, Kind::kNotModelled},
    {"empty-unused-memory-level", 1, Kind::kNotModelled},
    {"manual-gc", 0, Kind::kNotModelled},
    {"rampup-batch-size", 3, Kind::kNotModelled},
    {"optimizer-cpu-offload", 0, Kind::kNotModelled},
    {"use-torch-fsdp2", 0, Kind::kNotModelled},
    {"defer-embedding-wgrad-compute", 0, Kind::kNotModelled},
    {"account-for-embedding-in-pipeline-split", 0, Kind::kNotModelled},
    {"account-for-loss-in-pipeline-split", 0, Kind::kNotModelled},
    // No effect on one iteration's time or memory.
    {"apply-layernorm-1p", 0, Kind::kNoEffect},
    {"use-mcore-models", 0, Kind::kNoEffect},
    {"train-iters", 1, Kind::kNoEffect},
    {"train-samples", 1, Kind::kNoEffect},
    {"lr", 1, Kind::kNoEffect},
    {"min-lr", 1, Kind::kNoEffect},
    {"decoupled-lr", 1, Kind::kNoEffect},
    {"decoupled-min-lr", 1, Kind::kNoEffect},
    {"lr-decay-style", 1, Kind::kNoEffect},
    {"lr-decay-iters", 1, Kind::kNoEffect},
    {"lr-decay-samples", 1, Kind::kNoEffect},
    {"lr-warmup-fraction", 1, Kind::kNoEffect},
    {"lr-warmup-iters", 1, Kind::kNoEffect},
    {"lr-warmup-samples", 1, Kind::kNoEffect},
    {"weight-decay", 1, Kind::kNoEffect},
    {"clip-grad", 1, Kind::kNoEffect},
    {"adam-beta1", 1, Kind::kNoEffect},
    {"adam-beta2", 1, Kind::kNoEffect},
    {"adam-eps", 1, Kind::kNoEffect},
    {"init-method-std", 1, Kind::kNoEffect},
    {"seed", 1, Kind::kNoEffect},
    {"calculate-per-token-loss", 0, Kind::kNoEffect},
    {"data-path", -1, Kind::kNoEffect},
    {"split", 1, Kind::kNoEffect},
    {"vocab-file", 1, Kind::kNoEffect},
    {"merge-file", 1, Kind::kNoEffect},
    {"tokenizer-model", 1, Kind::kNoEffect},
    {"data-cache-path", 1, Kind::kNoEffect},
    {"mock-data", 0, Kind::kNoEffect},
    {"tiktoken-pattern", 1, Kind::kNoEffect},
    {"no-create-attention-mask-in-dataloader", 0, Kind::kNoEffect},
    {"no-mmap-bin-files", 0, Kind::kNoEffect},
    {"num-workers", 1, Kind::kNoEffect},
    {"log-interval", 1, Kind::kNoEffect},
    {"save-interval", 1, Kind::kNoEffect},
    {"eval-interval", 1, Kind::kNoEffect},
    {"eval-iters", 1, Kind::kNoEffect},
    {"save", 1, Kind::kNoEffect},
    {"load", 1, Kind::kNoEffect},
    {"tensorboard-dir", 1, Kind::kNoEffect},
    {"log-throughput", 0, Kind::kNoEffect},
    {"profile", 0, Kind::kNoEffect},
    {"profile-step-start", 1, Kind::kNoEffect},
    {"profile-step-end", 1, Kind::kNoEffect},
    {"ckpt-format", 1, Kind::kNoEffect},
    {"distributed-timeout-minutes", 1, Kind::kNoEffect},
    {"exit-duration-in-mins", 1, Kind::kNoEffect},
    {"distributed-backend", 1, Kind::kNoEffect},
    {"wandb-project", 1, Kind::kNoEffect},
    {"wandb-exp-name", 1, Kind::kNoEffect},
    {"log-params-norm", 0, Kind::kNoEffect},
    {"log-num-zeros-in-grad", 0, Kind::kNoEffect},
    {"timing-log-level", 1, Kind::kNoEffect},
    {"tensorboard-log-interval", 1, Kind::kNoEffect},
};
// clang-format on

const FlagInfo* find_flag(std::string_view name) {
  for (const FlagInfo& f : kFlags)
    if (f.name == name) return &f;
  return nullptr;
}

bool is_flag(const std::string& w) { return w.size() > 2 && w.rfind("--", 0) == 0; }

// One flag as read: its values and where it stood.
struct Given {
  std::vector<std::string> values;
  int line = 0;
};

// ---- Reading values ------------------------------------------------------------------------

class Reader {
 public:
  Reader(std::map<std::string, Given> given, std::string source)
      : given_(std::move(given)), source_(std::move(source)) {}

  bool has(const std::string& name) const { return given_.count(name) > 0; }
  int line(const std::string& name) const { return has(name) ? given_.at(name).line : 0; }

  [[noreturn]] void fail(const std::string& name, const std::string& message) const {
    throw SpecError(source_, line(name), "--" + name, message);
  }
  [[noreturn]] void conflict(const std::string& a, const std::string& b,
                             const std::string& why) const {
    throw SpecError(source_, std::max(line(a), line(b)), "--" + a,
                    "contradicts --" + b + ": " + why);
  }

  const std::string& text(const std::string& name) const {
    const Given& g = given_.at(name);
    if (g.values.empty()) fail(name, "needs a value");
    const std::string& v = g.values.front();
    if (v.find('$') != std::string::npos) {
      fail(name, "'" + v +
                     "' is a shell variable; expected its value (expand the script's variables "
                     "first, e.g. from the command its log prints)");
    }
    return v;
  }

  int64_t count(const std::string& name, int64_t min = 1) const {
    const std::string& v = text(name);
    int64_t out = 0;
    const auto [ptr, error] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (error != std::errc() || ptr != v.data() + v.size())
      fail(name, "'" + v + "' is not a whole number");
    if (out < min) fail(name, "'" + v + "' is below " + number_text(min));
    return out;
  }
  int64_t count_or(const std::string& name, int64_t fallback, int64_t min = 1) const {
    return has(name) ? count(name, min) : fallback;
  }

  double real(const std::string& name) const {
    const std::string& v = text(name);
    double out = 0;
    const auto [ptr, error] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (error != std::errc() || ptr != v.data() + v.size() || !std::isfinite(out))
      fail(name, "'" + v + "' is not a number");
    return out;
  }

  std::string word(const std::string& name, std::initializer_list<const char*> allowed) const {
    const std::string& v = text(name);
    std::string list;
    for (const char* a : allowed) {
      if (v == a) return v;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    fail(name, "'" + v + "' is not one of " + list);
  }

 private:
  std::map<std::string, Given> given_;
  std::string source_;
};

// Megatron-LM's tokenizers whose vocabulary mpsim knows without their files.
constexpr int64_t kGpt2Vocab = 50257;
constexpr int64_t kMegatronVocabMultiple = 128;  // --make-vocab-size-divisible-by's default
constexpr double kMegatronDropout = 0.1;         // --attention-dropout and --hidden-dropout

void read_model(const Reader& r, MegatronNotes& notes, ModelSpec& m) {
  for (const char* required : {"num-layers", "hidden-size", "num-attention-heads", "seq-length"})
    if (!r.has(required)) r.fail(required, "missing; expected it among the arguments");
  m.set_num_layers(r.count("num-layers"));
  m.set_hidden_size(r.count("hidden-size"));
  m.set_num_attention_heads(r.count("num-attention-heads"));
  m.set_ffn_hidden_size(r.count_or("ffn-hidden-size", 4 * m.hidden_size()));
  if (r.has("num-query-groups") && !r.has("group-query-attention")) {
    r.conflict("num-query-groups", "group-query-attention",
               "Megatron-LM ignores the query groups without it; expected both or neither");
  }
  if (r.has("group-query-attention")) {
    if (!r.has("num-query-groups")) r.fail("group-query-attention", "needs --num-query-groups");
    m.set_num_kv_heads(r.count("num-query-groups"));
  } else {
    m.set_num_kv_heads(m.num_attention_heads());
  }
  if (r.has("kv-channels") && r.count("kv-channels") * m.num_attention_heads() != m.hidden_size()) {
    r.fail("kv-channels", "'" + r.text("kv-channels") +
                              "' is not hidden size / heads; mpsim's head size is hidden size / "
                              "heads (expected " +
                              number_text(m.hidden_size() / m.num_attention_heads()) + ")");
  }
  m.set_seq_length(r.count("seq-length"));
  if (r.has("max-position-embeddings") && r.count("max-position-embeddings") != m.seq_length()) {
    notes.adjusted.push_back("--max-position-embeddings " + r.text("max-position-embeddings") +
                             ": a learned position table is counted at --seq-length rows");
  }

  // Vocabulary: --vocab-size (NullTokenizer adds its end-of-document token), or GPT-2's.
  const std::string tokenizer = r.has("tokenizer-type") ? r.text("tokenizer-type") : "";
  if (r.has("vocab-size")) {
    int64_t vocab = r.count("vocab-size");
    if (tokenizer == "NullTokenizer") {
      ++vocab;
      notes.adjusted.push_back("--vocab-size " + r.text("vocab-size") + " with NullTokenizer: " +
                               number_text(vocab) + " tokens (it adds the end-of-document token)");
    }
    m.set_vocab_size(vocab);
  } else if (tokenizer == "GPT2BPETokenizer") {
    m.set_vocab_size(kGpt2Vocab);
  } else if (tokenizer.empty() && r.has("merge-file")) {
    m.set_vocab_size(kGpt2Vocab);
    notes.adjusted.push_back("--merge-file without --tokenizer-type: GPT-2's BPE, " +
                             number_text(kGpt2Vocab) + " tokens");
  } else {
    r.fail(r.has("tokenizer-type") ? "tokenizer-type" : "vocab-size",
           tokenizer.empty() ? "missing; expected --vocab-size N (or --tokenizer-type "
                               "GPT2BPETokenizer)"
                             : "'" + tokenizer +
                                   "': its vocabulary is in the tokenizer's files; expected "
                                   "--vocab-size N as well");
  }
  if (r.has("make-vocab-size-divisible-by") &&
      r.count("make-vocab-size-divisible-by") != kMegatronVocabMultiple) {
    r.fail("make-vocab-size-divisible-by",
           "'" + r.text("make-vocab-size-divisible-by") +
               "' cannot be represented: mpsim pads the vocabulary to a multiple of 128 x TP "
               "(Megatron-LM's default); expected 128");
  }

  m.set_activation(r.has("swiglu") ? SWIGLU : GELU);
  m.set_norm(r.has("normalization") &&
                     r.word("normalization", {"LayerNorm", "RMSNorm"}) == "RMSNorm"
                 ? RMS_NORM
                 : LAYER_NORM);
  std::string position =
      r.has("position-embedding-type")
          ? r.word("position-embedding-type", {"learned_absolute", "rope", "none"})
          : "learned_absolute";
  if (r.has("use-rotary-position-embeddings")) {
    if (r.has("position-embedding-type") && position != "rope") {
      r.conflict("use-rotary-position-embeddings", "position-embedding-type",
                 "rotary positions against '" + position + "'");
    }
    position = "rope";
  }
  m.set_position_embedding(position == "rope"   ? ROTARY
                           : position == "none" ? NO_POSITION
                                                : LEARNED);
  if (r.has("rotary-percent") && r.real("rotary-percent") != 1.0) {
    r.fail("rotary-percent", "'" + r.text("rotary-percent") +
                                 "' cannot be represented: mpsim rotates the whole head; "
                                 "expected 1.0");
  }
  if (r.has("rotary-base")) m.set_rotary_base(r.real("rotary-base"));
  m.set_tied_embeddings(!r.has("untie-embeddings-and-output-weights"));
  m.set_linear_bias(!r.has("disable-bias-linear"));

  const double attention_dropout =
      r.has("attention-dropout") ? r.real("attention-dropout") : kMegatronDropout;
  const double hidden_dropout =
      r.has("hidden-dropout") ? r.real("hidden-dropout") : kMegatronDropout;
  if (attention_dropout != hidden_dropout) {
    r.conflict(r.has("attention-dropout") ? "attention-dropout" : "hidden-dropout",
               r.has("attention-dropout") ? "hidden-dropout" : "attention-dropout",
               "mpsim models one dropout probability for both (" +
                   common::shortest(attention_dropout) + " against " +
                   common::shortest(hidden_dropout) + ")");
  }
  if (attention_dropout < 0 || attention_dropout >= 1)
    r.fail("attention-dropout", "expected a probability in [0, 1)");
  m.set_dropout(attention_dropout);

  if (r.has("bf16") && r.has("fp16"))
    r.conflict("bf16", "fp16", "one compute precision; expected one of them");
  m.set_dtype(r.has("bf16") ? BF16 : r.has("fp16") ? FP16 : FP32);
  if (r.has("fp8-format")) {
    r.word("fp8-format", {"hybrid", "e4m3"});
    m.set_dtype(FP8);
    notes.adjusted.push_back(
        "--fp8-format: Transformer Engine's delayed-scaling recipe as mpsim models it: the "
        "layers' linear GEMMs in FP8 on BF16 tensors, attention and the LM head in BF16");
  }
  if (r.has("num-experts")) {
    r.fail("num-experts", "mixture of experts is not modelled; expected a dense model");
  }
}

// --recompute-granularity full with a method: every layer recomputed is mpsim's full recompute.
Recompute read_recompute(const Reader& r, const ParallelConfig& c, int64_t layers) {
  if (r.has("recompute-activations")) {
    if (r.has("recompute-granularity") && r.text("recompute-granularity") != "selective") {
      r.conflict("recompute-activations", "recompute-granularity",
                 "--recompute-activations means selective");
    }
    return RECOMPUTE_SELECTIVE;
  }
  if (!r.has("recompute-granularity")) {
    for (const char* f : {"recompute-method", "recompute-num-layers"})
      if (r.has(f)) r.conflict(f, "recompute-granularity", "given without a granularity");
    return RECOMPUTE_NONE;
  }
  if (r.word("recompute-granularity", {"full", "selective"}) == "selective") {
    for (const char* f : {"recompute-method", "recompute-num-layers"})
      if (r.has(f)) r.conflict(f, "recompute-granularity", "only full recompute takes it");
    return RECOMPUTE_SELECTIVE;
  }
  if (!r.has("recompute-method"))
    r.fail("recompute-granularity", "full needs --recompute-method uniform or block");
  const std::string method = r.word("recompute-method", {"uniform", "block"});
  const int64_t chunk_layers =
      layers / (c.pipeline_parallel() * std::max<int64_t>(1, c.virtual_pipeline_stages()));
  const int64_t n = r.count_or("recompute-num-layers", 1);
  if ((method == "uniform" && n != 1) || (method == "block" && n != chunk_layers)) {
    r.fail("recompute-num-layers",
           "'" + number_text(n) + "' with --recompute-method " + method +
               " recomputes layers in groups or some layers only, which mpsim cannot represent; "
               "expected uniform with 1 (or block with " +
               number_text(chunk_layers) + ", every layer of a model chunk)");
  }
  return RECOMPUTE_FULL;
}

Attention read_attention(const Reader& r) {
  const std::string impl = r.has("transformer-impl")
                               ? r.word("transformer-impl", {"transformer_engine", "local"})
                               : "transformer_engine";
  std::string backend =
      r.has("attention-backend")
          ? r.word("attention-backend", {"auto", "flash", "fused", "unfused", "local"})
          : "";
  if (r.has("use-flash-attn")) {
    if (backend == "unfused" || backend == "local")
      r.conflict("use-flash-attn", "attention-backend", "flash against '" + backend + "'");
    return ATTENTION_FLASH;
  }
  if (backend.empty()) return impl == "local" ? ATTENTION_UNFUSED : ATTENTION_FLASH;
  if (impl == "local" && (backend == "flash" || backend == "fused")) {
    r.conflict("attention-backend", "transformer-impl",
               "the local implementation has no fused attention");
  }
  return backend == "unfused" || backend == "local" ? ATTENTION_UNFUSED : ATTENTION_FLASH;
}

void read_parallel(const Reader& r, int64_t gpus, int64_t layers, MegatronNotes& notes,
                   ParallelConfig& c) {
  c.set_num_gpus(gpus);
  c.set_tensor_parallel(r.count_or("tensor-model-parallel-size", 1));
  c.set_pipeline_parallel(r.count_or("pipeline-model-parallel-size", 1));
  c.set_context_parallel(r.count_or("context-parallel-size", 1));
  if (r.count_or("expert-model-parallel-size", 1) > 1)
    r.fail("expert-model-parallel-size", "mixture of experts is not modelled; expected 1");
  int64_t vpp = 1;
  if (r.has("num-layers-per-virtual-pipeline-stage")) {
    const int64_t per_stage = r.count("num-layers-per-virtual-pipeline-stage");
    const int64_t chunk = c.pipeline_parallel() * per_stage;
    if (layers % chunk != 0) {
      r.fail("num-layers-per-virtual-pipeline-stage",
             "'" + number_text(per_stage) + "' x " + number_text(c.pipeline_parallel()) +
                 " pipeline stages does not divide the " + number_text(layers) + " layers");
    }
    vpp = layers / chunk;
  }
  if (r.has("virtual-pipeline-model-parallel-size")) {
    const int64_t given = r.count("virtual-pipeline-model-parallel-size");
    if (r.has("num-layers-per-virtual-pipeline-stage") && given != vpp) {
      r.conflict("virtual-pipeline-model-parallel-size", "num-layers-per-virtual-pipeline-stage",
                 number_text(given) + " model chunks against " + number_text(vpp));
    }
    vpp = given;
  }
  c.set_virtual_pipeline_stages(vpp);
  c.set_schedule(vpp > 1 ? INTERLEAVED_1F1B : ONE_F_ONE_B);
  bool sp = r.has("sequence-parallel");
  if (sp && c.tensor_parallel() == 1) {
    sp = false;
    notes.adjusted.push_back("--sequence-parallel: off, as Megatron-LM turns it off with TP 1");
  }
  c.set_sequence_parallel(sp);
  if (!r.has("micro-batch-size")) r.fail("micro-batch-size", "missing; expected it");
  c.set_micro_batch_size(r.count("micro-batch-size"));
  const int64_t model_parallel =
      c.tensor_parallel() * c.pipeline_parallel() * std::max<int64_t>(1, c.context_parallel());
  const int64_t dp = model_parallel > 0 && gpus % model_parallel == 0 ? gpus / model_parallel : 0;
  c.set_global_batch_size(r.count_or("global-batch-size", c.micro_batch_size() * dp));
  c.set_recompute(read_recompute(r, c, layers));
  c.set_zero_stage(r.has("use-distributed-optimizer") ? 1 : 0);
  c.set_overlap_dp_comm(r.has("overlap-grad-reduce"));
  if (r.has("overlap-param-gather")) {
    if (!r.has("use-distributed-optimizer"))
      r.conflict("overlap-param-gather", "use-distributed-optimizer", "it needs the latter");
    if (!r.has("overlap-grad-reduce"))
      r.conflict("overlap-param-gather", "overlap-grad-reduce", "it needs the latter");
    c.set_overlap_param_gather(true);
  }
  if (r.has("tp-comm-overlap")) {
    if (!r.has("sequence-parallel"))
      r.conflict("tp-comm-overlap", "sequence-parallel", "it needs the latter");
    if (sp) {
      c.set_tp_comm_overlap(true);
    } else {
      notes.adjusted.push_back("--tp-comm-overlap: off, as there is no TP communication at TP 1");
    }
  }
  if (r.has("optimizer-offload-fraction") && !r.has("optimizer-cpu-offload")) {
    r.conflict("optimizer-offload-fraction", "optimizer-cpu-offload",
               "the fraction applies to the latter, which is not given");
  }
  if (r.has("optimizer-cpu-offload")) {
    const double f =
        r.has("optimizer-offload-fraction") ? r.real("optimizer-offload-fraction") : 1.0;
    if (!(f >= 0 && f <= 1)) r.fail("optimizer-offload-fraction", "expected a fraction, 0 to 1");
    c.set_optimizer_offload(f);
  }
  if (r.has("ddp-bucket-size")) c.set_dp_bucket_params(r.count("ddp-bucket-size"));
  c.set_rank_order(r.has("use-tp-pp-dp-mapping") ? TP_PP_DP : TP_DP_PP);
  c.set_attention(read_attention(r));
}

int64_t launcher_gpus(const Reader& r) {
  const char* per_node = r.has("nproc_per_node") ? "nproc_per_node" : "nproc-per-node";
  if (!r.has(per_node)) return 0;
  return r.count(per_node) * r.count_or("nnodes", 1);
}

}  // namespace

MegatronRun parse_megatron_args(const std::string& text, const std::string& source, int64_t gpus) {
  const std::vector<Word> words = split_words(text, source);
  std::map<std::string, Given> given;
  MegatronRun run;
  MegatronNotes& notes = run.notes;
  for (size_t i = 0; i < words.size();) {
    const Word& w = words[i];
    if (!is_flag(w.text)) {
      notes.stray_words.push_back(w.text);
      ++i;
      continue;
    }
    std::string name = w.text.substr(2), inline_value;
    bool has_inline = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    if (given.count(name)) {
      throw SpecError(
          source, w.line, w.text,
          "given twice (also on line " + std::to_string(given[name].line) + "); expected it once");
    }
    const FlagInfo* info = find_flag(name);
    Given g;
    g.line = w.line;
    ++i;
    if (has_inline) g.values.push_back(inline_value);
    const int arity = info ? info->arity : -1;
    while (i < words.size() && !is_flag(words[i].text) &&
           (arity < 0 || static_cast<int>(g.values.size()) < arity)) {
      g.values.push_back(words[i++].text);
    }
    if (info && arity > 0 && static_cast<int>(g.values.size()) < arity) {
      throw SpecError(source, w.line, "--" + name,
                      "needs " + std::to_string(arity) + (arity == 1 ? " value" : " values"));
    }
    if (info && arity == 0 && has_inline) {
      throw SpecError(source, w.line, "--" + name, "is a switch; expected no value");
    }
    const std::string flag = "--" + name;
    if (!info) {
      notes.unknown.push_back(flag);
    } else if (info->kind == Kind::kNotModelled) {
      notes.not_modelled.push_back(flag);
    } else if (info->kind == Kind::kNoEffect) {
      notes.no_effect.push_back(flag);
    }
    given.emplace(name, std::move(g));
  }
  const Reader r(std::move(given), source);
  for (const FlagInfo& f : kFlags) {
    if (f.kind != Kind::kLauncher || !r.has(std::string(f.name))) continue;
    if (gpus > 0)
      notes.no_effect.push_back("--" + std::string(f.name) + " (the GPU count is given)");
  }
  if (gpus <= 0) {
    gpus = launcher_gpus(r);
    if (gpus > 0)
      notes.adjusted.push_back(number_text(gpus) + " GPUs: torchrun's --nproc_per_node x --nnodes");
  }
  if (gpus <= 0) {
    throw SpecError(source, 0, "",
                    "no GPU count: Megatron-LM takes it from the launcher; expected --gpus N (or "
                    "torchrun's --nproc_per_node and --nnodes among the arguments)");
  }
  read_model(r, notes, run.model);
  run.model.set_name("megatron-args");
  run.model.set_source("Megatron-LM arguments: " + source);
  read_parallel(r, gpus, run.model.num_layers(), notes, run.config);
  return run;
}

std::string megatron_flag_of_field(const std::string& field) {
  static const std::map<std::string, std::string> kFlagOf = {
      {"num_layers", "--num-layers"},
      {"hidden_size", "--hidden-size"},
      {"ffn_hidden_size", "--ffn-hidden-size"},
      {"num_attention_heads", "--num-attention-heads"},
      {"num_kv_heads", "--num-query-groups"},
      {"seq_length", "--seq-length"},
      {"vocab_size", "--vocab-size"},
      {"dropout", "--attention-dropout"},
      {"dtype", "--bf16"},
      {"tensor_parallel", "--tensor-model-parallel-size"},
      {"pipeline_parallel", "--pipeline-model-parallel-size"},
      {"virtual_pipeline_stages", "--num-layers-per-virtual-pipeline-stage"},
      {"sequence_parallel", "--sequence-parallel"},
      {"micro_batch_size", "--micro-batch-size"},
      {"global_batch_size", "--global-batch-size"},
      {"recompute", "--recompute-granularity"},
      {"zero_stage", "--use-distributed-optimizer"},
      {"dp_bucket_params", "--ddp-bucket-size"},
      {"overlap_param_gather", "--overlap-param-gather"},
      {"tp_comm_overlap", "--tp-comm-overlap"},
      {"context_parallel", "--context-parallel-size"},
      {"optimizer_offload", "--optimizer-offload-fraction"},
      {"attention", "--attention-backend"},
      {"rank_order", "--use-tp-pp-dp-mapping"},
  };
  const auto it = kFlagOf.find(field);
  return it == kFlagOf.end() ? std::string() : it->second;
}

std::string framework_for(const ParallelConfig& c) {
  if (c.zero_stage() >= 3) return "deepspeed-or-fsdp";
  if (c.zero_stage() == 2) return "deepspeed";
  // All forwards, then all backwards (with one stage too): torchgpipe, PiPPy.
  if (c.schedule() == GPIPE) return "gpipe";
  return "megatron-lm";
}

std::optional<std::string> megatron_args(const ModelSpec& m, const ParallelConfig& c) {
  if (framework_for(c) != "megatron-lm") return std::nullopt;
  std::vector<std::string> a;
  auto flag = [&](const std::string& name, const std::string& value = "") {
    a.push_back("--" + name);
    if (!value.empty()) a.push_back(value);
  };
  auto num = [](int64_t v) { return std::to_string(v); };
  const int64_t heads = m.num_attention_heads();
  const int64_t kv = m.num_kv_heads() == 0 ? heads : m.num_kv_heads();
  flag("num-layers", num(m.num_layers()));
  flag("hidden-size", num(m.hidden_size()));
  flag("ffn-hidden-size",
       num(m.ffn_hidden_size() == 0 ? 4 * m.hidden_size() : m.ffn_hidden_size()));
  flag("num-attention-heads", num(heads));
  if (kv != heads) {
    flag("group-query-attention");
    flag("num-query-groups", num(kv));
  }
  flag("seq-length", num(m.seq_length()));
  flag("max-position-embeddings", num(m.seq_length()));
  flag("vocab-size", num(m.vocab_size()));
  flag("make-vocab-size-divisible-by", num(kMegatronVocabMultiple));
  if (m.activation() == SWIGLU) flag("swiglu");
  flag("normalization", m.norm() == RMS_NORM ? "RMSNorm" : "LayerNorm");
  flag("position-embedding-type", m.position_embedding() == ROTARY        ? "rope"
                                  : m.position_embedding() == NO_POSITION ? "none"
                                                                          : "learned_absolute");
  if (m.position_embedding() == ROTARY && m.rotary_base() > 0)
    flag("rotary-base", common::shortest(m.rotary_base()));
  if (!m.tied_embeddings()) flag("untie-embeddings-and-output-weights");
  if (!m.linear_bias()) flag("disable-bias-linear");
  flag("attention-dropout", common::shortest(m.dropout()));
  flag("hidden-dropout", common::shortest(m.dropout()));
  switch (m.dtype()) {
    case FP16:
      flag("fp16");
      break;
    case FP8:
      flag("bf16");
      flag("fp8-format", "hybrid");
      break;
    case FP32:
      break;
    default:
      flag("bf16");
  }
  flag("tensor-model-parallel-size", num(c.tensor_parallel()));
  flag("pipeline-model-parallel-size", num(c.pipeline_parallel()));
  if (c.context_parallel() > 1) flag("context-parallel-size", num(c.context_parallel()));
  if (c.virtual_pipeline_stages() > 1) {
    flag("num-layers-per-virtual-pipeline-stage",
         num(m.num_layers() / (c.pipeline_parallel() * c.virtual_pipeline_stages())));
  }
  if (c.sequence_parallel()) flag("sequence-parallel");
  flag("micro-batch-size", num(c.micro_batch_size()));
  flag("global-batch-size", num(c.global_batch_size()));
  if (c.recompute() == RECOMPUTE_SELECTIVE) flag("recompute-granularity", "selective");
  if (c.recompute() == RECOMPUTE_FULL) {
    flag("recompute-granularity", "full");
    flag("recompute-method", "uniform");
    flag("recompute-num-layers", "1");
  }
  if (c.zero_stage() == 1) flag("use-distributed-optimizer");
  if (c.overlap_dp_comm()) flag("overlap-grad-reduce");
  if (c.overlap_param_gather()) flag("overlap-param-gather");
  if (c.tp_comm_overlap()) flag("tp-comm-overlap");
  if (c.optimizer_offload() > 0) {
    flag("optimizer-cpu-offload");
    flag("optimizer-offload-fraction", common::shortest(c.optimizer_offload()));
  }
  if (c.dp_bucket_params() > 0) flag("ddp-bucket-size", num(c.dp_bucket_params()));
  if (c.rank_order() == TP_PP_DP) flag("use-tp-pp-dp-mapping");
  flag("attention-backend", c.attention() == ATTENTION_UNFUSED ? "unfused" : "flash");
  return common::join(a, " ");
}

}  // namespace mpsim::spec
