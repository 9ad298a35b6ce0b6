// run_sweep() end to end: every row of a sweep carries the commands that reproduce it, and both
// read back into the row's configuration: the `mpsim simulate` flags through the simulate
// parser, the Megatron-LM flags through spec::parse_megatron_args; --framework megatron keeps
// only rows Megatron-LM runs; --format megatron lists them.
#include "tools/mpsim/sweep_command.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "simulator/report/simulation_result.h"
#include "simulator/spec/megatron_args.h"
#include "simulator/spec/spec_loader.h"
#include "tools/mpsim/layout_flags.h"
#include "tools/mpsim/simulate_args.h"

namespace mpsim::cli {
namespace {

using google::protobuf::util::MessageDifferencer;

// Words of a command line (no quoting needed: the commands hold none).
std::vector<std::string> words_after(const std::string& line, size_t skip) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return {words.begin() + static_cast<std::ptrdiff_t>(skip), words.end()};
}

// A configuration as the rows spell it (report::to_json's "config").
nlohmann::json config_json(const spec::ParallelConfig& config) {
  report::SimulationResult r;
  r.config = config;
  return report::to_json(r).at("config");
}

nlohmann::json sweep_rows(std::vector<std::string> args) {
  args.insert(args.end(), {"--format", "json", "--threads", "1"});
  std::ostringstream out, err;
  EXPECT_EQ(run_sweep(args, out, err), 0) << err.str();
  return nlohmann::json::parse(out.str()).at("results");
}

TEST(SweepCommand, EveryRowsCommandsReadBackIntoItsConfiguration) {
  const std::vector<std::string> args = {"--model", "gpt2-124m", "--gpus",    "16",
                                         "--gbs",   "32",        "--max-mbs", "2"};
  const nlohmann::json rows = sweep_rows(args);
  ASSERT_GT(rows.size(), 20u);
  const spec::ModelSpec model = spec::load_model_spec("gpt2-124m");
  const spec::Hardware hw = spec::load_hardware("h100-sxm");
  int megatron = 0;
  for (const nlohmann::json& row : rows) {
    const nlohmann::json& command = row.at("command");
    // mpsim simulate: the same validated configuration.
    const SimulateRequest request =
        parse_simulate_args(words_after(command.at("mpsim").get<std::string>(), 2));
    const spec::ParallelConfig simulated = checked_layout(request.config, model, hw);
    EXPECT_EQ(config_json(simulated), row.at("config")) << command.at("mpsim");
    // Megatron-LM: the same configuration, or the framework that runs it.
    if (command.at("megatron").is_null()) {
      EXPECT_NE(command.at("framework"), "megatron-lm");
      continue;
    }
    ++megatron;
    EXPECT_EQ(command.at("framework"), "megatron-lm");
    const spec::MegatronRun back =
        spec::parse_megatron_args(command.at("megatron").get<std::string>(), "row", 16);
    EXPECT_TRUE(MessageDifferencer::Equals(
        spec::validate_parallel_config(back.config, back.model, hw), simulated))
        << command.at("megatron");
  }
  EXPECT_GT(megatron, 0);

  // --framework megatron: only those rows.
  std::vector<std::string> only = args;
  only.insert(only.end(), {"--framework", "megatron"});
  const nlohmann::json megatron_rows = sweep_rows(only);
  EXPECT_EQ(static_cast<int>(megatron_rows.size()), megatron);
  for (const nlohmann::json& row : megatron_rows)
    EXPECT_EQ(row.at("command").at("framework"), "megatron-lm");
}

TEST(SweepCommand, MegatronListing) {
  std::ostringstream out, err;
  EXPECT_EQ(run_sweep({"--model", "gpt2-124m", "--gpus", "8", "--gbs", "16", "--format", "megatron",
                       "--top", "2", "--framework", "megatron", "--threads", "1"},
                      out, err),
            0);
  std::istringstream lines(out.str());
  std::string comment, flags;
  for (int i = 1; i <= 2; ++i) {
    ASSERT_TRUE(std::getline(lines, comment) && std::getline(lines, flags));
    EXPECT_EQ(comment.rfind("# " + std::to_string(i) + ". tp", 0), 0u) << comment;
    EXPECT_NO_THROW(spec::parse_megatron_args(flags, "listing", 8)) << flags;
  }
}

}  // namespace
}  // namespace mpsim::cli
