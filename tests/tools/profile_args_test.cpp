// `mpsim profile` flags: defaults, the command after `--`, and every error naming its flag.
#include "tools/mpsim/profile_args.h"

#include <gtest/gtest.h>

#include "simulator/spec/spec_error.h"

namespace mpsim::cli {
namespace {

std::string error_of(const std::vector<std::string>& args, std::string* flag = nullptr) {
  try {
    parse_profile_args(args);
  } catch (const spec::FlagError& e) {
    if (flag) *flag = e.flag();
    return e.what();
  }
  return "";
}

TEST(ProfileArgs, DefaultsAndCommand) {
  const ProfileRequest r = parse_profile_args({"--", "python", "train.py", "--lr", "1e-4"});
  EXPECT_EQ(r.output, "mpsim_profile.sqlite");
  EXPECT_FALSE(r.merge);
  EXPECT_EQ(r.command, (std::vector<std::string>{"python", "train.py", "--lr", "1e-4"}));
}

TEST(ProfileArgs, OutputAndMerge) {
  const ProfileRequest r = parse_profile_args({"-o", "run.sqlite", "--merge", "--", "./a.out"});
  EXPECT_EQ(r.output, "run.sqlite");
  EXPECT_TRUE(r.merge);
  EXPECT_EQ(r.command, (std::vector<std::string>{"./a.out"}));
  EXPECT_EQ(parse_profile_args({"--output=x_%r.sqlite", "--", "a"}).output, "x_%r.sqlite");
}

TEST(ProfileArgs, FlagsAfterTheDashesBelongToTheCommand) {
  const ProfileRequest r = parse_profile_args({"--", "torchrun", "-o", "--merge"});
  EXPECT_EQ(r.output, "mpsim_profile.sqlite");
  EXPECT_FALSE(r.merge);
  EXPECT_EQ(r.command.size(), 3u);
}

TEST(ProfileArgs, Errors) {
  std::string flag;
  EXPECT_NE(error_of({"./a.out"}, &flag).find("unexpected argument"), std::string::npos);
  EXPECT_NE(error_of({"-o", "x.sqlite"}, &flag).find("expected '-- <command...>'"),
            std::string::npos);
  EXPECT_EQ(flag, "--");
  EXPECT_NE(error_of({"-o", "x.sqlite", "--"}, &flag).find("naming the program"),
            std::string::npos);
  EXPECT_NE(error_of({"--merge", "-o", "run_%r.sqlite", "--", "a"}, &flag).find("%r/%p"),
            std::string::npos);
  EXPECT_EQ(flag, "--merge");
  EXPECT_NE(error_of({"--bogus", "--", "a"}, &flag).find("unknown flag"), std::string::npos);
  EXPECT_EQ(flag, "--bogus");
  EXPECT_NE(error_of({"-o", "--", "a"}, &flag), "");
}

TEST(ProfileArgs, Help) {
  EXPECT_TRUE(parse_profile_args({"--help"}).help);
  EXPECT_NE(profile_help().find("CUDA_INJECTION64_PATH"), std::string::npos);
}

}  // namespace
}  // namespace mpsim::cli
