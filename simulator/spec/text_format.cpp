// Reading and parsing text format files, and the line of a field (text_format.h).
#include "simulator/spec/text_format.h"

#include <google/protobuf/io/tokenizer.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

#include "common/text.h"

namespace mpsim::spec {
namespace {

namespace pb = google::protobuf;

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

}  // namespace

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SpecError(path, 0, "", "cannot open file; expected a readable text format file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw SpecError(path, 0, "", "read failed; expected a readable text format file");
  return text.str();
}

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

void Locator::fail(const std::string& path, const std::string& message) const {
  throw SpecError(file_, line_of(path), path, message);
}

void Locator::fail_at(const std::string& line_path, const std::string& field,
                      const std::string& message) const {
  throw SpecError(file_, line_of(line_path), field, message);
}

int Locator::line_of(const std::string& path) const {
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

std::string enum_choices(const pb::EnumDescriptor* type) {
  std::string out;
  for (int i = 0; i < type->value_count(); ++i) {
    if (type->value(i)->number() == 0) continue;
    out += (out.empty() ? "" : " or ") + type->value(i)->name();
  }
  return out;
}

std::string number_text(int64_t v) { return std::to_string(v); }

std::string number_text(double v) { return common::printf_string("%g", v); }

}  // namespace mpsim::spec
