// See bench_output.h.
#include "calibration/fit/bench_output.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace mpsim::calibration {

std::set<std::string> listed_ranges(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the bench's output " + path);
  std::set<std::string> listed;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("listed", false) && j.contains("range") &&
        j["range"].is_string()) {
      listed.insert(j["range"].get<std::string>());
    }
  }
  return listed;
}

}  // namespace mpsim::calibration
