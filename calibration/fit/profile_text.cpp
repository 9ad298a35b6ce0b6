// See profile_text.h.
#include "calibration/fit/profile_text.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include <stdexcept>

#include "simulator/spec/spec_loader.h"

namespace mpsim::calibration {
namespace {

// "# " before every line of `text`.
std::string comment(const std::string& text) {
  std::string out = "# ";
  for (char c : text) out += c == '\n' ? std::string("\n# ") : std::string(1, c);
  return out + "\n";
}

// The profile as protobuf text: everything but the tables as the printer writes it, then each
// table with one line per point.
std::string profile_text(const spec::HardwareProfile& profile) {
  namespace pb = google::protobuf;
  spec::HardwareProfile head = profile;
  head.clear_calibrated();
  std::string text;
  pb::TextFormat::Printer printer;
  printer.SetUseUtf8StringEscaping(true);
  if (!printer.PrintToString(head, &text)) throw std::runtime_error("cannot print the profile");
  pb::TextFormat::Printer table_printer;
  table_printer.SetInitialIndentLevel(1);
  table_printer.SetUseUtf8StringEscaping(true);
  pb::TextFormat::Printer point_printer;
  point_printer.SetSingleLineMode(true);
  point_printer.SetUseShortRepeatedPrimitives(true);
  for (const spec::CalibratedTable& table : profile.calibrated()) {
    spec::CalibratedTable fields = table;
    fields.clear_points();
    std::string body;
    table_printer.PrintToString(fields, &body);
    text += "calibrated {\n" + body;
    for (const spec::CalibratedPoint& p : table.points()) {
      std::string line;
      point_printer.PrintToString(p, &line);
      while (!line.empty() && line.back() == ' ') line.pop_back();
      text += "  points { " + line + " }\n";
    }
    text += "}\n";
  }
  return text;
}

}  // namespace

std::string profile_header(const std::string& profile_name, const std::string& base_name,
                           const std::string& date, const std::vector<std::string>& sources,
                           const std::string& command) {
  std::string header =
      "Hardware profile '" + profile_name + "', written by `mpsim calibrate` " + date +
      " (UTC):\nthe base profile '" + base_name +
      "' (its datasheet and assumed numbers kept) with tables measured under the\n"
      "project's profiler (calibration/bench/calibration_bench, and op times of profiled\n"
      "executor runs at exact shapes), from:";
  for (const std::string& source : sources) header += "\n  " + source;
  header += "\nCommand: " + command +
            "\nWhere each number comes from: the provenance and source fields. Table names, keys "
            "and how\nthe cost model uses them: simulator/cost/README.md; the fit: "
            "calibration/fit/README.md.";
  return header;
}

std::string profile_file_text(const spec::HardwareProfile& profile, const std::string& header,
                              const std::string& path) {
  const std::string text = comment(header) + profile_text(profile);
  // The text must read back as the same profile, through the loader's checks.
  const spec::HardwareProfile reread = spec::parse_hardware_profile(text, path);
  if (!google::protobuf::util::MessageDifferencer::Equals(reread, profile)) {
    throw std::runtime_error("internal error: the profile's text does not read back as written");
  }
  return text;
}

}  // namespace mpsim::calibration
