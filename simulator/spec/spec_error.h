// Typed errors for bad input. A SpecError points at a place in a text file
// (`path:line: field: what is wrong, what was expected`); a FlagError names the command-line
// flag and the constraint it breaks. Library code throws these and never exits; the `mpsim`
// command prints what() and returns a non-zero status.
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
