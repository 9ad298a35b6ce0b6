// Loading a ModelSpec (spec_loader.h): parsing, the semantic checks that point at the offending
// field's line, and the defaults (ffn_hidden_size = 4h, num_kv_heads = heads).
#include <cstdint>
#include <string>

#include "simulator/spec/spec_loader.h"
#include "simulator/spec/text_format.h"

namespace mpsim::spec {
namespace {

namespace pb = google::protobuf;

// Limits. Larger values are refused as typos rather than simulated for hours.
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHidden = 131072;
constexpr int64_t kMaxFfn = 1048576;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxSeqLength = 4194304;
constexpr int64_t kMaxVocab = 16777216;

void check_enum(const Locator& at, const char* field, int value, const pb::EnumDescriptor* type) {
  if (value == 0) at.fail(field, "not specified; expected " + enum_choices(type));
  if (type->FindValueByNumber(value) == nullptr) {
    at.fail(field,
            "unknown value " + number_text(int64_t{value}) + "; expected " + enum_choices(type));
  }
}

// A count that must lie in [1, limit].
void check_count(const Locator& at, const char* field, int64_t value, int64_t limit) {
  if (value <= 0) {
    at.fail(field,
            (value == 0 ? std::string("missing or 0") : number_text(value) + " is not positive") +
                "; expected a positive count up to " + number_text(limit));
  }
  if (value > limit) {
    at.fail(field, number_text(value) + " is larger than the limit " + number_text(limit) +
                       "; expected at most " + number_text(limit));
  }
}

// A count where 0 asks for a default; negative values and values above limit are refused.
void check_optional_count(const Locator& at, const char* field, int64_t value, int64_t limit,
                          const char* zero_means) {
  if (value < 0) {
    at.fail(field,
            number_text(value) + " is negative; expected a positive count, or 0 for " + zero_means);
  }
  if (value > limit) {
    at.fail(field, number_text(value) + " is larger than the limit " + number_text(limit) +
                       "; expected at most " + number_text(limit));
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
               number_text(m.hidden_size()) + " is not divisible by num_attention_heads (" +
                   number_text(heads) + "); expected a multiple");
  }
  const int64_t kv = m.num_kv_heads() == 0 ? heads : m.num_kv_heads();
  if (heads % kv != 0) {
    at.fail_at("num_kv_heads", "num_attention_heads",
               number_text(heads) + " is not divisible by num_kv_heads (" + number_text(kv) +
                   "); expected a multiple");
  }
}

void check_kinds(const ModelSpec& m, const Locator& at) {
  if (m.name().empty()) at.fail("name", "missing; expected the model's name");
  check_enum(at, "norm", m.norm(), Norm_descriptor());
  check_enum(at, "activation", m.activation(), Activation_descriptor());
  check_enum(at, "position_embedding", m.position_embedding(), PositionEmbedding_descriptor());
  check_enum(at, "dtype", m.dtype(), DType_descriptor());
  if (!(m.dropout() >= 0 && m.dropout() < 1)) {
    at.fail("dropout",
            number_text(m.dropout()) + " is out of range; expected a probability in [0, 1)");
  }
}

void validate_model(ModelSpec& m, const Locator& at) {
  check_kinds(m, at);
  check_sizes(m, at);
  check_heads(m, at);
  if (m.ffn_hidden_size() == 0) m.set_ffn_hidden_size(4 * m.hidden_size());
  if (m.num_kv_heads() == 0) m.set_num_kv_heads(m.num_attention_heads());
}

}  // namespace

ModelSpec parse_model_spec(const std::string& text, const std::string& file_for_errors) {
  ModelSpec model;
  pb::TextFormat::ParseInfoTree tree;
  parse_text(text, file_for_errors, &model, &tree);
  validate_model(model, Locator(file_for_errors, ModelSpec::descriptor(), &tree));
  return model;
}

ModelSpec load_model_spec(const std::string& name_or_path) {
  const std::string path = resolve_spec_path(name_or_path, "models");
  return parse_model_spec(read_text_file(path), path);
}

}  // namespace mpsim::spec
