// The text of a calibrated hardware profile file: a comment header saying what the profile is,
// when and from which sources it was made, then the profile as protobuf text, each calibrated
// table with one line per point. What `mpsim calibrate -o` writes.
//
// Failure: profile_file_text throws std::runtime_error when protobuf cannot print the profile or
// the text does not read back, through the loader's checks, as the same profile (an internal
// error); spec::SpecError from the loader names `path`.
#pragma once

#include <string>
#include <vector>

#include "simulator/spec/hardware_profile.pb.h"

namespace mpsim::calibration {

// The header of a profile made by `command` on `date` from `sources` (one line each) on the base
// profile `base_name`.
std::string profile_header(const std::string& profile_name, const std::string& base_name,
                           const std::string& date, const std::vector<std::string>& sources,
                           const std::string& command);

// "# " before every line of `header`, then the profile's text, checked to read back as `profile`
// (`path`: the file it is for, named in loader errors).
std::string profile_file_text(const spec::HardwareProfile& profile, const std::string& header,
                              const std::string& path);

}  // namespace mpsim::calibration
