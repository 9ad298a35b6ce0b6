// Reading protobuf text format files and locating what is wrong in them, shared by the model and
// hardware loaders of this folder (model_spec_loader.cpp, hardware_loader.cpp); not meant for
// callers outside simulator/spec, which use spec_loader.h.
//
// Contract: read_text_file and parse_text either succeed or throw SpecError naming the file and
// the 1-based line of the problem where the parser can tell it (0 when it cannot: an unreadable
// file). The parser's complaints are rewritten in the project's style (lower case, context
// first, what was expected): an unknown field lists the fields the message has, a repeated
// field says it was given more than once, a bad value points at the field's own line. A Locator
// turns later semantic errors into SpecError at the line where the offending field was written.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <cstdint>
#include <string>

#include "simulator/spec/spec_error.h"

namespace mpsim::spec {

// The file's whole text; throws SpecError(path, 0, ...) when it cannot be opened or read.
std::string read_text_file(const std::string& path);

// Parses `text` into `message`, recording where each field was written into `tree`. Throws
// SpecError naming `file` and the line of the first parser error.
void parse_text(const std::string& text, const std::string& file,
                google::protobuf::Message* message,
                google::protobuf::TextFormat::ParseInfoTree* tree);

// Points semantic errors at a field's line: a dotted path ("gpu.peak_bf16.unit") is looked up
// in the parser's ParseInfoTree; when the field itself was not written (missing), the line of
// the deepest enclosing message that was is used, and 0 when nothing is known (a tree of null,
// e.g. for a HardwareProfile built in code).
class Locator {
 public:
  Locator(std::string file, const google::protobuf::Descriptor* root,
          const google::protobuf::TextFormat::ParseInfoTree* tree)
      : file_(std::move(file)), root_(root), tree_(tree) {}

  // Throws SpecError naming the field `path` at its line.
  [[noreturn]] void fail(const std::string& path, const std::string& message) const;
  // Names `field` but points at the line of `line_path`: the field whose value breaks the rule
  // (e.g. num_attention_heads not dividing hidden_size).
  [[noreturn]] void fail_at(const std::string& line_path, const std::string& field,
                            const std::string& message) const;

 private:
  int line_of(const std::string& path) const;

  std::string file_;
  const google::protobuf::Descriptor* root_;
  const google::protobuf::TextFormat::ParseInfoTree* tree_;
};

// Enum value names other than *_UNSPECIFIED (number 0), joined by " or ", for messages that say
// what was expected ("LAYER_NORM or RMS_NORM").
std::string enum_choices(const google::protobuf::EnumDescriptor* type);

// Numbers as the messages print them: integers in full, doubles in their shortest readable
// form ("989.4", "1e-06", printf's %g).
std::string number_text(int64_t v);
std::string number_text(double v);

}  // namespace mpsim::spec
