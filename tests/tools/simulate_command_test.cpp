// run_simulate() end to end on small configs: the cost model it picks from the hardware profile
// (calibrated when the profile carries tables, roofline otherwise) and says so in its output.
#include "tools/mpsim/simulate_command.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "simulator/spec/spec_error.h"

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

// A run that does not fit prints its result, says by how much it is over and exits with
// kDoesNotFit; --ignore-memory exits 0; a headroom can turn a fitting run into one that does not.
TEST(SimulateCommand, ARunThatDoesNotFitExitsWithItsOwnStatus) {
  // GPT-3 175B on 8 GPUs, TP 8: 175e9 x 18 B / 8 of model state alone is far over 80 GB.
  const std::vector<std::string> big = {"--gpus", "8", "--tp", "8", "--pp", "1", "--gbs", "8"};
  std::ostringstream out, err;
  EXPECT_EQ(run_simulate(big, out, err), kDoesNotFit);
  EXPECT_NE(out.str().find("DOES NOT FIT"), std::string::npos) << out.str();
  EXPECT_NE(err.str().find("does not fit in GPU memory: rank 0 needs"), std::string::npos)
      << err.str();
  EXPECT_NE(err.str().find("GiB over (--ignore-memory exits 0 anyway)"), std::string::npos);
  std::vector<std::string> ignored = big;
  ignored.push_back("--ignore-memory");
  std::ostringstream out2, err2;
  EXPECT_EQ(run_simulate(ignored, out2, err2), 0);
  EXPECT_EQ(out2.str(), out.str());

  // gpt2-124m on one GPU fits in 79 GiB, not with 99.9 % kept free.
  const std::vector<std::string> small = {"--model", "gpt2-124m", "--gpus", "1",     "--tp",
                                          "1",       "--pp",      "1",      "--gbs", "1"};
  std::ostringstream out3, err3;
  EXPECT_EQ(run_simulate(small, out3, err3), 0);
  std::vector<std::string> no_room = small;
  no_room.insert(no_room.end(), {"--memory-headroom", "0.999"});
  std::ostringstream out4, err4;
  EXPECT_EQ(run_simulate(no_room, out4, err4), kDoesNotFit);
  EXPECT_NE(out4.str().find("(100 % headroom kept)"), std::string::npos) << out4.str();
}

// --megatron-args: Megatron-LM's example arguments simulated; the layout flags may not be given
// beside them; a layout the hardware refuses is named by its Megatron flag.
TEST(SimulateCommand, MegatronArgumentsSetTheModelAndLayout) {
  std::ostringstream out, err;
  EXPECT_EQ(run_simulate({"--megatron-args", "tests/spec/data/megatron/gpt3-175b.args", "--gpus",
                          "1024", "--format", "json"},
                         out, err),
            0);
  const nlohmann::json j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j.at("config").at("tp"), 8);
  EXPECT_EQ(j.at("config").at("pp"), 16);
  EXPECT_EQ(j.at("config").at("dp"), 8);
  EXPECT_EQ(j.at("config").at("attention"), "flash");
  EXPECT_EQ(j.at("model"), "gpt3-175b");
  EXPECT_NE(err.str().find("not modelled (the prediction ignores them): --rampup-batch-size"),
            std::string::npos)
      << err.str();
  EXPECT_THROW(run_simulate({"--megatron-args", "--num-layers 2", "--tp", "2"}, out, err),
               spec::FlagError);
  try {
    run_simulate({"--megatron-args",
                  "--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 128 "
                  "--vocab-size 100 --micro-batch-size 1 --tensor-model-parallel-size 3",
                  "--gpus", "6"},
                 out, err);
    ADD_FAILURE() << "expected an error";
  } catch (const spec::SpecError& e) {
    EXPECT_EQ(e.field(), "--tensor-model-parallel-size") << e.what();
  }
}

}  // namespace
}  // namespace mpsim::cli
