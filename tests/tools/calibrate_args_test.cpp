// `mpsim calibrate` flags: defaults, repeated --from, the profile name from -o, and every error
// naming its flag; a profiled `mpsim train` command line read back for databases recorded before
// runs stored their configuration.
#ifdef MPSIM_HAVE_CALIBRATE
#include "tools/mpsim/calibrate_args.h"

#include <gtest/gtest.h>

#include "simulator/spec/spec_error.h"

namespace mpsim::cli {
namespace {

std::string error_of(const std::vector<std::string>& args) {
  try {
    parse_calibrate_args(args);
  } catch (const spec::FlagError& e) {
    return e.what();
  }
  return "";
}

TEST(CalibrateArgs, FromDatabases) {
  const CalibrateRequest r = parse_calibrate_args({"--from", "a.sqlite", "--from", "b.sqlite", "-o",
                                                   "hw_profiles/h100-sxm-measured.textproto"});
  EXPECT_EQ(r.from, (std::vector<std::string>{"a.sqlite", "b.sqlite"}));
  EXPECT_EQ(r.base, "h100-sxm");
  EXPECT_EQ(r.output, "hw_profiles/h100-sxm-measured.textproto");
  EXPECT_EQ(r.name, "h100-sxm-measured");
  EXPECT_FALSE(r.quick);
}

TEST(CalibrateArgs, MeasuringHere) {
  const CalibrateRequest r = parse_calibrate_args(
      {"-o", "out.pb.txt", "--base", "a100-sxm-80gb", "--quick", "--name", "x"});
  EXPECT_TRUE(r.from.empty());
  EXPECT_EQ(r.base, "a100-sxm-80gb");
  EXPECT_EQ(r.name, "x");
  EXPECT_TRUE(r.quick);
  EXPECT_TRUE(r.bench.empty());
  EXPECT_TRUE(r.models.empty());
  EXPECT_EQ(parse_calibrate_args({"--output=out.pb.txt"}).name, "out.pb.txt");
  const CalibrateRequest paths =
      parse_calibrate_args({"-o", "x", "--bench", "bin/calibration_bench", "--models", "specs"});
  EXPECT_EQ(paths.bench, "bin/calibration_bench");
  EXPECT_EQ(paths.models, "specs");
  EXPECT_EQ(paths.gpus, 0);  // the local devices
  EXPECT_EQ(parse_calibrate_args({"-o", "x", "--gpus", "2"}).gpus, 2);
  EXPECT_TRUE(parse_calibrate_args({"--help"}).help);
}

TEST(CalibrateArgs, ErrorsNameTheFlag) {
  EXPECT_EQ(error_of({"--from", "a.sqlite"}),
            "-o: missing; expected the profile to write, e.g. -o "
            "hw_profiles/h100-sxm-measured.textproto");
  EXPECT_EQ(error_of({"--from", "a.sqlite", "-o", "x.textproto", "--quick"}),
            "--quick: only applies when measuring; --from fits databases already recorded");
  EXPECT_EQ(error_of({"--from", "a.sqlite", "-o", "x.textproto", "--bench", "b"}),
            "--bench: only applies when measuring; --from fits databases already recorded");
  EXPECT_EQ(error_of({"--from", "a.sqlite", "-o", "x.textproto", "--models", "m"}),
            "--models: only applies when measuring; --from fits databases already recorded");
  EXPECT_EQ(error_of({"--from", "a.sqlite", "-o", "x.textproto", "--gpus", "2"}),
            "--gpus: only applies when measuring; --from fits databases already recorded");
  EXPECT_EQ(error_of({"-o", "x.textproto", "--gpus", "0"}).rfind("--gpus: ", 0), 0u);
  EXPECT_EQ(error_of({"-o", "x.textproto", "--bench", ""}), "--bench: empty; expected a value");
  EXPECT_EQ(error_of({"-o", "x.textproto", "--name", ""}), "--name: empty; expected a value");
  EXPECT_EQ(error_of({"-o", "x.textproto", "--from", ""}),
            "--from: empty; expected a database file");
  EXPECT_EQ(error_of({"-o", "dir/"}), "-o: 'dir/' names a directory; expected a file");
  EXPECT_EQ(error_of({"-o", "x", "--bogus"}), "--bogus: unknown flag (see mpsim calibrate --help)");
  EXPECT_EQ(error_of({"-o", "x", "extra"}),
            "extra: unexpected argument; mpsim calibrate takes only flags");
  EXPECT_EQ(error_of({"-o", "x", "-o", "y"}), "--output: given more than once");
}

TEST(CalibrateArgsTest, TrainCommandLinesReadBack) {
  const TrainRequest request = train_request_from_command(
      "/opt/build/tools/mpsim/mpsim train --model gpt2-124m --gpus 2 --tp 2 --steps 3",
      "run.sqlite");
  EXPECT_EQ(request.model, "gpt2-124m");
  EXPECT_EQ(request.options.config.num_gpus(), 2);
  EXPECT_EQ(request.options.config.tensor_parallel(), 2);
  EXPECT_EQ(request.options.steps, 3);
  auto refusal = [](const std::string& command) {
    try {
      train_request_from_command(command, "run.sqlite");
    } catch (const spec::SpecError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(refusal("calibration_bench --quick").find("is not an `mpsim train` run"),
            std::string::npos);
  EXPECT_NE(refusal("mpsim train --bogus 1").find("--bogus"), std::string::npos);
  EXPECT_NE(refusal("mpsim train --bogus 1").find("run.sqlite"), std::string::npos);
}

}  // namespace
}  // namespace mpsim::cli
#endif  // MPSIM_HAVE_CALIBRATE
