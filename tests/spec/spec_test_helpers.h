// Helpers shared by the tests of simulator/spec: running a call that must throw, a model text
// with one field per line (so that errors can be checked for their line), the shipped H100
// profile with one piece replaced. Run from the repository root (ctest does).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "simulator/spec/spec_loader.h"

namespace mpsim::spec::testing {

namespace fs = std::filesystem;

inline std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs f, which must throw E; returns the error (a default-looking one after a test failure).
template <typename E>
E expect_throw(const std::function<void()>& f, const E& fallback) {
  try {
    f();
  } catch (const E& e) {
    return e;
  }
  ADD_FAILURE() << "expected an exception, none thrown";
  return fallback;
}

inline SpecError spec_error(const std::function<void()>& f) {
  return expect_throw<SpecError>(f, SpecError("", 0, "", "none"));
}
inline FieldError field_error(const std::function<void()>& f) {
  return expect_throw<FieldError>(f, FieldError("", "none"));
}

inline void expect_words(const std::string& what, std::initializer_list<const char*> words) {
  for (const char* w : words)
    EXPECT_NE(what.find(w), std::string::npos) << what << "\nlacks: " << w;
}

// A valid model, one field per line after a comment, so field i is on line i + 2.
inline const std::vector<std::pair<std::string, std::string>> kModelFields = {
    {"name", "\"m\""},
    {"num_layers", "24"},
    {"hidden_size", "1024"},
    {"ffn_hidden_size", "4096"},
    {"num_attention_heads", "16"},
    {"num_kv_heads", "16"},
    {"seq_length", "2048"},
    {"vocab_size", "51200"},
    {"norm", "LAYER_NORM"},
    {"activation", "GELU"},
    {"position_embedding", "LEARNED"},
    {"dtype", "BF16"},
    {"dropout", "0.1"},
    {"source", "\"test\""}};

inline int model_line(const std::string& field) {
  for (size_t i = 0; i < kModelFields.size(); ++i) {
    if (kModelFields[i].first == field) return static_cast<int>(i) + 2;
  }
  return -1;
}

// The model text with some values replaced; a value of "" leaves a comment in the field's place
// so that line numbers do not move.
inline std::string model_text(const std::map<std::string, std::string>& replace = {}) {
  std::string text = "# test model\n";
  for (const auto& [field, value] : kModelFields) {
    const auto r = replace.find(field);
    if (r == replace.end()) {
      text += field + ": " + value + "\n";
    } else {
      text += r->second.empty() ? "# removed\n" : field + ": " + r->second + "\n";
    }
  }
  return text;
}

// The model error for one replaced field, checked for file, line and field.
inline SpecError model_error(const std::map<std::string, std::string>& replace,
                             const std::string& field, int line) {
  SpecError e = spec_error([&] { parse_model_spec(model_text(replace), "models/x.textproto"); });
  EXPECT_EQ(e.file(), "models/x.textproto");
  EXPECT_EQ(e.field(), field) << e.what();
  EXPECT_EQ(e.line(), line) << e.what();
  return e;
}

inline const std::string kH100Path = "hw_profiles/h100-sxm.textproto";

// 1-based line of the first line of text containing needle.
inline int line_containing(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  if (at == std::string::npos) return -1;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

inline std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// The H100 profile text with one piece replaced; the error must name field at line.
inline SpecError hw_error(const std::string& from, const std::string& to, const std::string& field,
                          int line) {
  const std::string text = replace_once(read(kH100Path), from, to);
  SpecError e = spec_error([&] { parse_hardware_profile(text, "hw/p.textproto"); });
  EXPECT_EQ(e.field(), field) << e.what();
  EXPECT_EQ(e.line(), line) << e.what();
  return e;
}

}  // namespace mpsim::spec::testing
