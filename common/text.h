// Small text helpers used across the project: printf-style and fixed-point number formatting, the
// shortest text that reads back as the same double, joining, lower-casing, trimming and
// replacing. Pure functions on std::string; nothing here fails (a format longer than any buffer
// is sized for is still returned whole).
#pragma once

#include <string>
#include <string_view>

namespace mpsim::common {

// std::snprintf into a std::string of whatever length the result needs.
std::string printf_string(const char* format, ...) __attribute__((format(printf, 1, 2)));

// `value` with `decimals` digits after the point ("%.*f"): fixed(2.345, 1) == "2.3".
std::string fixed(double value, int decimals);

// The shortest text that reads back as the same double (std::to_chars): "2", "2.5", "1e-07".
std::string shortest(double value);

// The items, converted to std::string_view, with `separator` between them.
template <class Range>
std::string join(const Range& items, std::string_view separator) {
  std::string text;
  bool first = true;
  for (const auto& item : items) {
    if (!first) text += separator;
    text += std::string_view(item);
    first = false;
  }
  return text;
}

// ASCII lower case; other bytes unchanged.
std::string lower(std::string text);

// `text` without leading and trailing characters of `blanks`.
std::string_view trim(std::string_view text, std::string_view blanks = " \t\r\n");

// Replaces every occurrence of `from` (non-empty) in `text` by `to`, left to right; the inserted
// text is not searched again.
void replace_all(std::string& text, std::string_view from, std::string_view to);

}  // namespace mpsim::common
