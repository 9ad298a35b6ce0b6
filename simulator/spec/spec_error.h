// Typed errors for bad input. A SpecError points at a place in a text file
// (`path:line: field: what is wrong, what was expected`); a FieldError names the field of a
// ModelSpec or ParallelConfig given in memory (`tensor_parallel: ...`), for a caller that knows
// where the value came from to say so (the `mpsim` command names the flag it parsed the field
// from; validate_parallel_config throws these); a FlagError names the command-line flag and the
// constraint it breaks (thrown by tools/, which alone knows flag names). Library code
// throws these and never exits; the `mpsim` command prints what() and returns a non-zero status.
#pragma once

#include <stdexcept>
#include <string>

namespace mpsim::spec {

class SpecError : public std::runtime_error {
 public:
  // line is 1-based; 0 when the problem is not tied to a line (e.g. the file cannot be read).
  SpecError(std::string file, int line, std::string field, const std::string& message)
      : std::runtime_error(format(file, line, field, message)),
        file_(std::move(file)),
        line_(line),
        field_(std::move(field)) {}

  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& field() const { return field_; }

 private:
  static std::string format(const std::string& file, int line, const std::string& field,
                            const std::string& message) {
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line);
    out += ": ";
    if (!field.empty()) out += field + ": ";
    return out + message;
  }
  std::string file_;
  int line_;
  std::string field_;
};

class FieldError : public std::runtime_error {
 public:
  // field is the protobuf field name as a spec file spells it, e.g. "tensor_parallel"; message
  // says what is wrong and what was expected.
  FieldError(std::string field, std::string message)
      : std::runtime_error(field + ": " + message),
        field_(std::move(field)),
        message_(std::move(message)) {}
  const std::string& field() const { return field_; }
  const std::string& message() const { return message_; }

 private:
  std::string field_;
  std::string message_;
};

class FlagError : public std::runtime_error {
 public:
  // flag is written as the user types it, e.g. "--tp".
  FlagError(std::string flag, const std::string& message)
      : std::runtime_error(flag + ": " + message), flag_(std::move(flag)) {}
  const std::string& flag() const { return flag_; }

 private:
  std::string flag_;
};

}  // namespace mpsim::spec
