// run_simulate() end to end on small configs: the cost model it picks from the hardware profile
// (calibrated when the profile carries tables, roofline otherwise) and says so in its output.
#include "tools/mpsim/simulate_command.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace mpsim::cli {
namespace {

// A profile with a synthetic gemm.bf16 table (see the file's comment).
constexpr const char* kGemmTableProfile = "tests/tools/data/h100-sxm-gemm-table.textproto";

nlohmann::json simulate_json(const std::string& hw) {
  const std::vector<std::string> args = {"--model", "gpt2-124m", "--hw",     hw,     "--gpus",
                                         "8",       "--tp",      "2",        "--pp", "2",
                                         "--gbs",   "8",         "--format", "json"};
  std::ostringstream out, err;
  EXPECT_EQ(run_simulate(args, out, err), 0);
  EXPECT_EQ(err.str(), "");
  return nlohmann::json::parse(out.str());
}

TEST(SimulateCommand, ProfileWithTablesUsesTheCalibratedModel) {
  const nlohmann::json calibrated = simulate_json(kGemmTableProfile);
  const std::string description = calibrated.at("cost_model").get<std::string>();
  EXPECT_EQ(description.rfind("calibrated: gemm.bf16, fitted curves outside their grids; "
                              "roofline (bf16) on NVIDIA H100 SXM5 80GB [h100-sxm-gemm-table]",
                              0),
            0u)
      << description;
  EXPECT_NE(description.find("ops without a table (attention.fwd.bf16"), std::string::npos)
      << description;

  // The same profile without its table: the roofline, and GEMMs priced differently.
  const nlohmann::json roofline = simulate_json("h100-sxm");
  EXPECT_EQ(roofline.at("cost_model").get<std::string>().rfind("roofline (bf16)", 0), 0u);
  EXPECT_GT(calibrated.at("iteration_time_s").get<double>(), 0);
  EXPECT_NE(calibrated.at("iteration_time_s").get<double>(),
            roofline.at("iteration_time_s").get<double>());
}

}  // namespace
}  // namespace mpsim::cli
