// Loading and validating specs (contract in spec_loader.h).
//
// Three parts: (1) finding and parsing text format files, turning the parser's complaints into
// SpecError with a 1-based line; (2) semantic checks of ModelSpec and HardwareProfile, which use
// the parser's ParseInfoTree to point at the offending field's line; (3) the checks of a
// ParallelConfig against a model and hardware, which throw FlagError naming the flag.
#include "simulator/spec/spec_loader.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

namespace mpsim::spec {
namespace {

namespace fs = std::filesystem;
namespace pb = google::protobuf;

// ---------------------------------------------------------------------------------------------
// Limits. Larger values are refused as typos rather than simulated for hours.

constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHidden = 131072;
constexpr int64_t kMaxFfn = 1048576;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxSeqLength = 4194304;
constexpr int64_t kMaxVocab = 16777216;
constexpr int64_t kMaxGpus = 1048576;
constexpr int64_t kMaxGlobalBatch = 16777216;
constexpr int64_t kMaxMicroBatches = 1048576;
constexpr int64_t kMaxZeroStage = 3;
// Megatron-LM's default DP gradient bucket: max(40M, 1M x dp) parameters.
constexpr int64_t kMinBucketParams = 40'000'000;
constexpr int64_t kBucketParamsPerDpRank = 1'000'000;

constexpr std::string_view kExtension = ".textproto";

std::string str(int64_t v) { return std::to_string(v); }

// Shortest readable form of a double ("989.4", "1e-06").
std::string str(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Finding files.

bool is_path(const std::string& name) {
  return name.find('/') != std::string::npos ||
         (name.size() > kExtension.size() && name.ends_with(kExtension));
}

// Folders searched for <folder>/<name>.textproto, in order.
std::vector<fs::path> search_roots() {
  std::vector<fs::path> roots;
  if (const char* dir = std::getenv("MPSIM_DATA_DIR"); dir != nullptr && *dir != '\0') {
    roots.emplace_back(dir);
  }
  roots.emplace_back("");  // the current directory, kept relative so messages stay short
#ifdef MPSIM_SOURCE_DIR
  roots.emplace_back(MPSIM_SOURCE_DIR);
#endif
  return roots;
}

// Names (file stems) available in the first root that has the folder, for the error message.
std::string available_names(const std::vector<fs::path>& roots, const std::string& folder) {
  for (const fs::path& root : roots) {
    std::error_code ec;
    const fs::path dir = root.empty() ? fs::path(folder) : root / folder;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() == kExtension) names.push_back(entry.path().stem().string());
    }
    std::sort(names.begin(), names.end());
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
    if (!out.empty()) return out;
  }
  return "none found";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SpecError(path, 0, "", "cannot open file; expected a readable text format file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw SpecError(path, 0, "", "read failed; expected a readable text format file");
  return text.str();
}

// ---------------------------------------------------------------------------------------------
// Parsing.

// Extracts X from `... <prefix>"X" ...` in a protobuf parser message, or "" when absent.
std::string quoted_after(const std::string& message, std::string_view prefix) {
  const size_t at = message.find(prefix);
  if (at == std::string::npos) return "";
  const size_t begin = at + prefix.size();
  const size_t end = message.find('"', begin);
  return end == std::string::npos ? "" : message.substr(begin, end - begin);
}

// Comma-separated field names of a message type, for "unknown field" messages.
std::string field_names(const pb::Descriptor* type) {
  std::string out;
  for (int i = 0; i < type->field_count(); ++i) {
    out += (i ? ", " : "") + type->field(i)->name();
  }
  return out;
}

// Remembers the parser's first error and rewrites it in the project's style.
class FirstErrorCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber /*column*/, const std::string& message) override {
    if (has_error_) return;
    has_error_ = true;
    line_ = line + 1;  // the tokenizer counts from 0
    message_ = message;
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}

  bool has_error() const { return has_error_; }

  // text is what was parsed, to find the line of a field the parser names.
  [[noreturn]] void raise(const std::string& text, const std::string& file) const {
    if (std::string type = quoted_after(message_, "Message type \""); !type.empty()) {
      const std::string field = quoted_after(message_, "has no field named \"");
      const pb::Descriptor* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(type);
      const std::string expected = d ? field_names(d) : type;
      throw SpecError(file, line_, field,
                      "unknown field in " + type + "; expected one of: " + expected);
    }
    if (std::string field = quoted_after(message_, "Non-repeated field \""); !field.empty()) {
      throw SpecError(file, line_, field, "given more than once; expected at most once");
    }
    if (std::string field = quoted_after(message_, "field \""); !field.empty()) {
      throw SpecError(file, line_of_field(text, field), field, lower_first(message_));
    }
    throw SpecError(file, line_, "", "syntax error: " + lower_first(message_));
  }

 private:
  // "Expected integer, got: x." -> "expected integer, got: x"
  static std::string lower_first(std::string s) {
    if (!s.empty() && s.back() == '.') s.pop_back();
    if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
    return s;
  }
  // A bad value is noticed after it is read, so the parser reports the next token's line; the
  // field's own line is the last one at or before it that starts with `field:` or `field {`.
  int line_of_field(const std::string& text, const std::string& field) const {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    for (int i = std::min<int>(line_, static_cast<int>(lines.size())); i >= 1; --i) {
      const std::string& l = lines[i - 1];
      const size_t start = l.find_first_not_of(" \t");
      if (start == std::string::npos || l.compare(start, field.size(), field) != 0) continue;
      const size_t after = l.find_first_not_of(" \t", start + field.size());
      if (after != std::string::npos && (l[after] == ':' || l[after] == '{')) return i;
    }
    return line_;
  }

  bool has_error_ = false;
  int line_ = 0;
  std::string message_;
};

// Parses `text` into `message`, recording where each field was written into `tree`.
void parse_text(const std::string& text, const std::string& file, pb::Message* message,
                pb::TextFormat::ParseInfoTree* tree) {
  FirstErrorCollector errors;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(tree);
  if (!parser.ParseFromString(text, message)) {
    if (errors.has_error()) errors.raise(text, file);
    throw SpecError(file, 0, "", "cannot parse; expected protobuf text format");
  }
}

// Points semantic errors at a field's line: a dotted path ("gpu.peak_bf16.unit") is looked up
// in the parser's ParseInfoTree; when the field itself was not written (missing), the line of
// the deepest enclosing message that was is used, and 0 when nothing is known (e.g. a
// HardwareProfile built in code).
class Locator {
 public:
  Locator(std::string file, const pb::Descriptor* root, const pb::TextFormat::ParseInfoTree* tree)
      : file_(std::move(file)), root_(root), tree_(tree) {}

  [[noreturn]] void fail(const std::string& path, const std::string& message) const {
    throw SpecError(file_, line_of(path), path, message);
  }
  // Names `field` but points at the line of `line_path`: the field whose value breaks the rule
  // (e.g. num_attention_heads not dividing hidden_size).
  [[noreturn]] void fail_at(const std::string& line_path, const std::string& field,
                            const std::string& message) const {
    throw SpecError(file_, line_of(line_path), field, message);
  }

 private:
  int line_of(const std::string& path) const {
    int line = 0;
    const pb::Descriptor* type = root_;
    const pb::TextFormat::ParseInfoTree* tree = tree_;
    std::istringstream parts(path);
    for (std::string part; tree && type && std::getline(parts, part, '.');) {
      const pb::FieldDescriptor* field = type->FindFieldByName(part);
      if (field == nullptr) break;
      const int index = field->is_repeated() ? 0 : -1;
      if (const auto at = tree->GetLocation(field, index); at.line >= 0) line = at.line + 1;
      type = field->message_type();
      tree = type ? tree->GetTreeForNested(field, index) : nullptr;
    }
    return line;
  }

  std::string file_;
  const pb::Descriptor* root_;
  const pb::TextFormat::ParseInfoTree* tree_;
};

// ---------------------------------------------------------------------------------------------
// ModelSpec checks.

// Enum value names other than *_UNSPECIFIED, joined by " or ".
std::string enum_choices(const pb::EnumDescriptor* type) {
  std::string out;
  for (int i = 0; i < type->value_count(); ++i) {
    if (type->value(i)->number() == 0) continue;
    out += (out.empty() ? "" : " or ") + type->value(i)->name();
  }
  return out;
}

void check_enum(const Locator& at, const char* field, int value, const pb::EnumDescriptor* type) {
  if (value == 0) at.fail(field, "not specified; expected " + enum_choices(type));
  if (type->FindValueByNumber(value) == nullptr) {
    at.fail(field, "unknown value " + str(int64_t{value}) + "; expected " + enum_choices(type));
  }
}

// A count that must lie in [1, limit].
void check_count(const Locator& at, const char* field, int64_t value, int64_t limit) {
  if (value <= 0) {
    at.fail(field, (value == 0 ? std::string("missing or 0") : str(value) + " is not positive") +
                       "; expected a positive count up to " + str(limit));
  }
  if (value > limit) {
    at.fail(field, str(value) + " is larger than the limit " + str(limit) + "; expected at most " +
                       str(limit));
  }
}

// A count where 0 asks for a default; negative values and values above limit are refused.
void check_optional_count(const Locator& at, const char* field, int64_t value, int64_t limit,
                          const char* zero_means) {
  if (value < 0) {
    at.fail(field, str(value) + " is negative; expected a positive count, or 0 for " + zero_means);
  }
  if (value > limit) {
    at.fail(field, str(value) + " is larger than the limit " + str(limit) + "; expected at most " +
                       str(limit));
  }
}

void check_sizes(const ModelSpec& m, const Locator& at) {
  check_count(at, "num_layers", m.num_layers(), kMaxLayers);
  check_count(at, "hidden_size", m.hidden_size(), kMaxHidden);
  check_count(at, "num_attention_heads", m.num_attention_heads(), kMaxHeads);
  check_count(at, "seq_length", m.seq_length(), kMaxSeqLength);
  check_count(at, "vocab_size", m.vocab_size(), kMaxVocab);
  check_optional_count(at, "ffn_hidden_size", m.ffn_hidden_size(), kMaxFfn, "4 * hidden_size");
  check_optional_count(at, "num_kv_heads", m.num_kv_heads(), kMaxHeads, "num_attention_heads");
}

// Attention heads split the hidden size evenly; query heads are shared evenly by kv heads.
// The error names the dividend but points at the line of the divisor, the number usually wrong.
void check_heads(const ModelSpec& m, const Locator& at) {
  const int64_t heads = m.num_attention_heads();
  if (m.hidden_size() % heads != 0) {
    at.fail_at("num_attention_heads", "hidden_size",
               str(m.hidden_size()) + " is not divisible by num_attention_heads (" + str(heads) +
                   "); expected a multiple");
  }
  const int64_t kv = m.num_kv_heads() == 0 ? heads : m.num_kv_heads();
  if (heads % kv != 0) {
    at.fail_at(
        "num_kv_heads", "num_attention_heads",
        str(heads) + " is not divisible by num_kv_heads (" + str(kv) + "); expected a multiple");
  }
}

void check_kinds(const ModelSpec& m, const Locator& at) {
  if (m.name().empty()) at.fail("name", "missing; expected the model's name");
  check_enum(at, "norm", m.norm(), Norm_descriptor());
  check_enum(at, "activation", m.activation(), Activation_descriptor());
  check_enum(at, "position_embedding", m.position_embedding(), PositionEmbedding_descriptor());
  check_enum(at, "dtype", m.dtype(), DType_descriptor());
  if (!(m.dropout() >= 0 && m.dropout() < 1)) {
    at.fail("dropout", str(m.dropout()) + " is out of range; expected a probability in [0, 1)");
  }
}

void validate_model(ModelSpec& m, const Locator& at) {
  check_kinds(m, at);
  check_sizes(m, at);
  check_heads(m, at);
  if (m.ffn_hidden_size() == 0) m.set_ffn_hidden_size(4 * m.hidden_size());
  if (m.num_kv_heads() == 0) m.set_num_kv_heads(m.num_attention_heads());
}

// ---------------------------------------------------------------------------------------------
// HardwareProfile checks and conversion to SI.

enum class Dimension { kFlopRate, kBandwidth, kCapacity, kTime, kFraction, kElements };

struct Unit {
  std::string_view name;
  double to_si;  // multiply the value by this to get FLOP/s, B/s, B, s, a fraction or elements
};

constexpr std::array kFlopRateUnits = {Unit{"FLOP/s", 1}, Unit{"GFLOP/s", 1e9},
                                       Unit{"TFLOP/s", 1e12}, Unit{"PFLOP/s", 1e15}};
constexpr std::array kBandwidthUnits = {Unit{"B/s", 1},        Unit{"GB/s", 1e9},
                                        Unit{"TB/s", 1e12},    Unit{"GiB/s", 1 << 30},
                                        Unit{"Gb/s", 1e9 / 8}, Unit{"Gbit/s", 1e9 / 8}};
constexpr std::array kCapacityUnits = {Unit{"B", 1}, Unit{"GB", 1e9}, Unit{"GiB", 1 << 30},
                                       Unit{"TB", 1e12}};
constexpr std::array kTimeUnits = {Unit{"s", 1}, Unit{"ms", 1e-3}, Unit{"us", 1e-6},
                                   Unit{"ns", 1e-9}};
constexpr std::array kFractionUnits = {Unit{"fraction", 1}, Unit{"%", 1e-2}};
constexpr std::array kElementUnits = {Unit{"elements", 1}};

struct DimensionInfo {
  const char* what;  // "a FLOP rate"
  std::vector<Unit> units;
};

DimensionInfo info(Dimension d) {
  auto units = [](const auto& a) { return std::vector<Unit>(a.begin(), a.end()); };
  switch (d) {
    case Dimension::kFlopRate:
      return {"a FLOP rate", units(kFlopRateUnits)};
    case Dimension::kBandwidth:
      return {"a bandwidth", units(kBandwidthUnits)};
    case Dimension::kCapacity:
      return {"a capacity", units(kCapacityUnits)};
    case Dimension::kTime:
      return {"a time", units(kTimeUnits)};
    case Dimension::kFraction:
      return {"a fraction", units(kFractionUnits)};
    case Dimension::kElements:
      return {"a size in elements", units(kElementUnits)};
  }
  return {"a quantity", {}};
}

std::string unit_names(const DimensionInfo& d) {
  std::string out;
  for (const Unit& u : d.units) out += (out.empty() ? "" : ", ") + std::string(u.name);
  return out;
}

// Checks a present Quantity (value > 0, known unit, a source) and returns it in SI units.
double to_si(const Locator& at, const std::string& path, const Quantity& q, Dimension dim) {
  const DimensionInfo d = info(dim);
  if (!(q.value() > 0) || !std::isfinite(q.value())) {
    at.fail(path + ".value",
            str(q.value()) + " is not a positive number; expected " + d.what + " > 0");
  }
  const auto unit = std::find_if(d.units.begin(), d.units.end(),
                                 [&](const Unit& u) { return u.name == q.unit(); });
  if (unit == d.units.end()) {
    at.fail(path + ".unit", "unknown unit \"" + q.unit() + "\" for " + d.what +
                                "; expected one of " + unit_names(d));
  }
  if (q.source().empty()) {
    at.fail(path + ".source",
            "empty; expected where the number comes from (a datasheet, \"measured on <machine> "
            "<date>\" or \"assumed: <why>\")");
  }
  const double si = q.value() * unit->to_si;
  if (dim == Dimension::kFraction && si > 1) {
    at.fail(path + ".value", str(q.value()) + " " + q.unit() +
                                 " is more than the whole; expected a fraction in (0, 1]");
  }
  return si;
}

double required(const Locator& at, const std::string& path, bool present, const Quantity& q,
                Dimension dim) {
  if (!present) {
    at.fail(path, std::string("missing; expected ") + info(dim).what +
                      " as { value: ... unit: \"...\" source: \"...\" }");
  }
  return to_si(at, path, q, dim);
}

// Absent optional quantities (peak_fp8, peak_tf32) read 0.
double optional(const Locator& at, const std::string& path, bool present, const Quantity& q,
                Dimension dim) {
  return present ? to_si(at, path, q, dim) : 0;
}

void convert_gpu(const GpuSpec& g, const Locator& at, Hardware& hw) {
  using D = Dimension;
  if (g.name().empty()) at.fail("gpu.name", "missing; expected the GPU's name");
  hw.gpu_name = g.name();
  hw.peak_bf16_flops =
      required(at, "gpu.peak_bf16", g.has_peak_bf16(), g.peak_bf16(), D::kFlopRate);
  hw.peak_fp16_flops =
      required(at, "gpu.peak_fp16", g.has_peak_fp16(), g.peak_fp16(), D::kFlopRate);
  hw.peak_fp32_flops =
      required(at, "gpu.peak_fp32", g.has_peak_fp32(), g.peak_fp32(), D::kFlopRate);
  hw.peak_tf32_flops =
      optional(at, "gpu.peak_tf32", g.has_peak_tf32(), g.peak_tf32(), D::kFlopRate);
  hw.peak_fp8_flops = optional(at, "gpu.peak_fp8", g.has_peak_fp8(), g.peak_fp8(), D::kFlopRate);
  hw.hbm_bytes_per_s =
      required(at, "gpu.hbm_bandwidth", g.has_hbm_bandwidth(), g.hbm_bandwidth(), D::kBandwidth);
  hw.hbm_capacity_bytes =
      required(at, "gpu.hbm_capacity", g.has_hbm_capacity(), g.hbm_capacity(), D::kCapacity);
  hw.kernel_launch_s = required(at, "gpu.kernel_launch_overhead", g.has_kernel_launch_overhead(),
                                g.kernel_launch_overhead(), D::kTime);
}

void convert_efficiency(const KernelEfficiency& e, const Locator& at, Hardware& hw) {
  using D = Dimension;
  hw.gemm_max_efficiency =
      required(at, "efficiency.gemm_max", e.has_gemm_max(), e.gemm_max(), D::kFraction);
  hw.gemm_half_dim = required(at, "efficiency.gemm_half_dim", e.has_gemm_half_dim(),
                              e.gemm_half_dim(), D::kElements);
  hw.attention_max_efficiency = required(at, "efficiency.attention_max", e.has_attention_max(),
                                         e.attention_max(), D::kFraction);
  hw.memory_bound_efficiency =
      required(at, "efficiency.memory_bound", e.has_memory_bound(), e.memory_bound(), D::kFraction);
}

void convert_node_and_network(const HardwareProfile& p, const Locator& at, Hardware& hw) {
  using D = Dimension;
  const NodeSpec& n = p.node();
  if (n.gpus_per_node() < 1) {
    at.fail("node.gpus_per_node",
            (n.gpus_per_node() == 0 ? std::string("missing or 0")
                                    : str(n.gpus_per_node()) + " is not positive") +
                "; expected at least 1 GPU per node");
  }
  hw.gpus_per_node = n.gpus_per_node();
  hw.nvlink_bytes_per_s = required(at, "node.nvlink_bandwidth", n.has_nvlink_bandwidth(),
                                   n.nvlink_bandwidth(), D::kBandwidth);
  hw.nvlink_latency_s =
      required(at, "node.nvlink_latency", n.has_nvlink_latency(), n.nvlink_latency(), D::kTime);
  const NetworkSpec& w = p.network();
  hw.network_bytes_per_s = required(at, "network.bandwidth_per_gpu", w.has_bandwidth_per_gpu(),
                                    w.bandwidth_per_gpu(), D::kBandwidth);
  hw.network_latency_s = required(at, "network.latency", w.has_latency(), w.latency(), D::kTime);
}

Hardware convert(const HardwareProfile& p, const Locator& at) {
  Hardware hw;
  if (p.name().empty()) at.fail("name", "missing; expected the profile's name");
  hw.name = p.name();
  convert_gpu(p.gpu(), at, hw);
  convert_efficiency(p.efficiency(), at, hw);
  convert_node_and_network(p, at, hw);
  hw.calibrated.assign(p.calibrated().begin(), p.calibrated().end());
  return hw;
}

// ---------------------------------------------------------------------------------------------
// ParallelConfig checks. Each throws FlagError naming the flag the user would change.

[[noreturn]] void flag_fail(const char* flag, const std::string& message) {
  throw FlagError(flag, message);
}

// A flag value that must lie in [min, max].
void check_range(const char* flag, const char* what, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    flag_fail(flag, what + (" (" + str(value) + ") is out of range; expected " + str(min) + " to " +
                            str(max)));
  }
}

// The model must be usable even when built in code rather than loaded (no zero divisors).
void check_model_usable(const ModelSpec& m) {
  const std::pair<const char*, int64_t> sizes[] = {{"num_layers", m.num_layers()},
                                                   {"hidden_size", m.hidden_size()},
                                                   {"num_attention_heads", m.num_attention_heads()},
                                                   {"seq_length", m.seq_length()},
                                                   {"vocab_size", m.vocab_size()}};
  for (const auto& [field, value] : sizes) {
    if (value <= 0) {
      flag_fail("--model", std::string(field) + " (" + str(value) +
                               ") is not positive; expected "
                               "a model that passed load_model_spec");
    }
  }
  if (m.num_kv_heads() < 0 || m.ffn_hidden_size() < 0) {
    flag_fail("--model", "num_kv_heads or ffn_hidden_size is negative; expected 0 or a count");
  }
}

void check_counts(const ParallelConfig& c) {
  const int64_t gpus = c.num_gpus();
  check_range("--gpus", "num_gpus", gpus, 1, kMaxGpus);
  check_range("--tp", "tp", c.tensor_parallel(), 1, gpus);
  check_range("--pp", "pp", c.pipeline_parallel(), 1, gpus);
  if (c.data_parallel() != 0) check_range("--dp", "dp", c.data_parallel(), 1, gpus);
  check_range("--gbs", "global batch size", c.global_batch_size(), 1, kMaxGlobalBatch);
  check_range("--mbs", "micro-batch size", c.micro_batch_size(), 1, c.global_batch_size());
  if (c.virtual_pipeline_stages() < 0) {
    flag_fail("--vpp", "vpp (" + str(c.virtual_pipeline_stages()) +
                           ") is negative; expected 1 or more model chunks per pipeline rank");
  }
  if (c.dp_bucket_params() < 0) {
    flag_fail("--dp-bucket-params", "dp_bucket_params (" + str(c.dp_bucket_params()) +
                                        ") is negative; expected a count, or 0 for the default");
  }
}

// Derives or checks dp so that num_gpus = tp x pp x dp.
int64_t data_parallel_size(const ParallelConfig& c) {
  const int64_t tp = c.tensor_parallel(), pp = c.pipeline_parallel(), gpus = c.num_gpus();
  if (c.data_parallel() == 0) {
    if (gpus % (tp * pp) != 0) {
      flag_fail("--gpus", "num_gpus (" + str(gpus) + ") is not divisible by tp x pp (" + str(tp) +
                              " x " + str(pp) + " = " + str(tp * pp) + "); expected a multiple");
    }
    return gpus / (tp * pp);
  }
  const int64_t dp = c.data_parallel();
  if (tp * pp * dp != gpus) {
    flag_fail("--dp", "tp x pp x dp (" + str(tp) + " x " + str(pp) + " x " + str(dp) + " = " +
                          str(tp * pp * dp) + ") does not equal num_gpus (" + str(gpus) +
                          "); expected dp = num_gpus / (tp x pp)");
  }
  return dp;
}

void check_divides(const char* flag, const char* what, int64_t value, const char* by_what,
                   int64_t by) {
  if (value % by != 0) {
    flag_fail(flag, std::string(what) + " (" + str(value) + ") is not divisible by " + by_what +
                        " (" + str(by) + "); expected " + by_what + " to divide " + str(value));
  }
}

// TP splits heads, kv heads and the MLP; PP x VPP splits the layers.
void check_model_split(const ParallelConfig& c, const ModelSpec& m) {
  const int64_t tp = c.tensor_parallel();
  const int64_t kv = m.num_kv_heads() == 0 ? m.num_attention_heads() : m.num_kv_heads();
  const int64_t ffn = m.ffn_hidden_size() == 0 ? 4 * m.hidden_size() : m.ffn_hidden_size();
  check_divides("--tp", "num_attention_heads", m.num_attention_heads(), "tp", tp);
  check_divides("--tp", "num_kv_heads", kv, "tp", tp);
  check_divides("--tp", "ffn_hidden_size", ffn, "tp", tp);
  const int64_t pp = c.pipeline_parallel(), vpp = c.virtual_pipeline_stages();
  if (vpp > m.num_layers()) {
    flag_fail("--vpp", "vpp (" + str(vpp) + ") is larger than num_layers (" + str(m.num_layers()) +
                           "); expected at most one chunk per layer");
  }
  if (vpp == 1) {
    check_divides("--pp", "num_layers", m.num_layers(), "pp", pp);
  } else {
    check_divides("--vpp", "num_layers", m.num_layers(), "pp x vpp", pp * vpp);
  }
}

// Returns the number of micro-batches each pipeline runs per iteration.
int64_t check_batch(const ParallelConfig& c, int64_t dp) {
  const int64_t gbs = c.global_batch_size(), mbs = c.micro_batch_size();
  if (gbs % (mbs * dp) != 0) {
    flag_fail("--gbs", "global batch size (" + str(gbs) + ") is not divisible by mbs x dp (" +
                           str(mbs) + " x " + str(dp) + " = " + str(mbs * dp) +
                           "); expected a multiple");
  }
  const int64_t micro_batches = gbs / (mbs * dp);
  if (micro_batches > kMaxMicroBatches) {
    flag_fail("--gbs", "micro-batches per pipeline (" + str(micro_batches) + ") exceed the limit " +
                           str(kMaxMicroBatches) + "; expected a larger --mbs or a smaller --gbs");
  }
  return micro_batches;
}

// Fills the schedule when unspecified and checks it against vpp, pp and micro-batches.
Schedule check_schedule(const ParallelConfig& c, int64_t micro_batches) {
  const int64_t vpp = c.virtual_pipeline_stages(), pp = c.pipeline_parallel();
  Schedule s = c.schedule();
  if (s == SCHEDULE_UNSPECIFIED) s = vpp > 1 ? INTERLEAVED_1F1B : ONE_F_ONE_B;
  if (!Schedule_IsValid(s)) {
    flag_fail("--schedule",
              "unknown schedule (" + str(int64_t{s}) + "); expected gpipe, 1f1b or interleaved");
  }
  if (s != INTERLEAVED_1F1B) {
    if (vpp > 1) {
      flag_fail("--vpp", "vpp (" + str(vpp) + ") needs the interleaved schedule, not " +
                             (s == GPIPE ? "gpipe" : "1f1b") + "; expected vpp 1");
    }
    return s;
  }
  if (vpp < 2) {
    flag_fail("--vpp",
              "the interleaved schedule needs vpp >= 2 model chunks per pipeline rank "
              "(got " +
                  str(vpp) + ")");
  }
  if (pp < 2) {
    flag_fail("--pp", "the interleaved schedule needs pp >= 2 (got " + str(pp) + ")");
  }
  if (micro_batches % pp != 0) {
    flag_fail("--gbs", "micro-batches per pipeline (" + str(micro_batches) +
                           ") is not divisible by pp (" + str(pp) +
                           "); the interleaved schedule expects a multiple (as Megatron-LM)");
  }
  return s;
}

void check_sequence_parallel(const ParallelConfig& c, const ModelSpec& m) {
  if (!c.sequence_parallel()) return;
  const int64_t tp = c.tensor_parallel();
  if (tp < 2) {
    flag_fail("--sp", "sequence parallelism needs tp > 1 (got tp " + str(tp) +
                          "); expected --tp 2 or more, or no --sp");
  }
  check_divides("--sp", "seq_length", m.seq_length(), "tp", tp);
}

void check_zero(const ParallelConfig& c) {
  check_range("--zero", "zero stage", c.zero_stage(), 0, kMaxZeroStage);
  if (c.zero_stage() >= 2 && c.pipeline_parallel() > 1) {
    flag_fail("--zero",
              "zero stage " + str(c.zero_stage()) + " with pp " + str(c.pipeline_parallel()) +
                  " is not supported (as in DeepSpeed); expected zero 0 or 1 with pp > 1");
  }
}

// Enum values arriving as numbers the enums do not know (from code, not from the CLI).
void check_choices(const ParallelConfig& c) {
  if (!Recompute_IsValid(c.recompute())) {
    flag_fail("--recompute", "unknown recompute mode (" + str(int64_t{c.recompute()}) +
                                 "); expected none, selective or full");
  }
  if (!RankOrder_IsValid(c.rank_order())) {
    flag_fail("--rank-order", "unknown rank order (" + str(int64_t{c.rank_order()}) +
                                  "); expected tp-dp-pp or tp-pp-dp");
  }
}

void check_dtype(const ModelSpec& m, const Hardware& hw) {
  if (m.dtype() == DTYPE_UNSPECIFIED) {
    flag_fail("--model", "dtype is not specified; expected " + enum_choices(DType_descriptor()));
  }
  if (hw.peak_flops(m.dtype()) <= 0) {
    const pb::EnumValueDescriptor* v = DType_descriptor()->FindValueByNumber(m.dtype());
    flag_fail("--hw", "'" + hw.name + "' has no peak FLOP rate for the model's dtype " +
                          (v ? v->name() : str(int64_t{m.dtype()})) +
                          "; expected hardware that supports it");
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string resolve_spec_path(const std::string& name_or_path, const std::string& folder) {
  if (is_path(name_or_path)) {
    std::error_code ec;
    if (!fs::is_regular_file(name_or_path, ec)) {
      throw SpecError(name_or_path, 0, "", "no such file; expected a readable .textproto file");
    }
    return name_or_path;
  }
  const std::vector<fs::path> roots = search_roots();
  std::string looked;
  for (const fs::path& root : roots) {
    const fs::path rel = fs::path(folder) / (name_or_path + std::string(kExtension));
    const fs::path candidate = root.empty() ? rel : root / rel;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate.string();
    looked += (looked.empty() ? "" : ", ") + candidate.string();
  }
  throw SpecError(name_or_path, 0, "",
                  "no such " + folder + " entry (looked for " + looked +
                      "); expected one of: " + available_names(roots, folder));
}

ModelSpec parse_model_spec(const std::string& text, const std::string& file_for_errors) {
  ModelSpec model;
  pb::TextFormat::ParseInfoTree tree;
  parse_text(text, file_for_errors, &model, &tree);
  validate_model(model, Locator(file_for_errors, ModelSpec::descriptor(), &tree));
  return model;
}

ModelSpec load_model_spec(const std::string& name_or_path) {
  const std::string path = resolve_spec_path(name_or_path, "models");
  return parse_model_spec(read_file(path), path);
}

HardwareProfile parse_hardware_profile(const std::string& text,
                                       const std::string& file_for_errors) {
  HardwareProfile profile;
  pb::TextFormat::ParseInfoTree tree;
  parse_text(text, file_for_errors, &profile, &tree);
  convert(profile, Locator(file_for_errors, HardwareProfile::descriptor(), &tree));
  return profile;
}

HardwareProfile load_hardware_profile(const std::string& name_or_path) {
  const std::string path = resolve_spec_path(name_or_path, "hw_profiles");
  return parse_hardware_profile(read_file(path), path);
}

Hardware to_hardware(const HardwareProfile& profile, const std::string& file_for_errors) {
  return convert(profile, Locator(file_for_errors, HardwareProfile::descriptor(), nullptr));
}

Hardware load_hardware(const std::string& name_or_path) {
  const std::string path = resolve_spec_path(name_or_path, "hw_profiles");
  return to_hardware(parse_hardware_profile(read_file(path), path), path);
}

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
  check_choices(out);
  check_dtype(model, hardware);
  if (out.recompute() == RECOMPUTE_UNSPECIFIED) out.set_recompute(RECOMPUTE_NONE);
  if (out.rank_order() == RANK_ORDER_UNSPECIFIED) out.set_rank_order(TP_DP_PP);
  if (out.dp_bucket_params() == 0) {
    out.set_dp_bucket_params(std::max(kMinBucketParams, kBucketParamsPerDpRank * dp));
  }
  return out;
}

}  // namespace mpsim::spec
