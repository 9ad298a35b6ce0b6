// Tests of simulator/spec/data_paths.cpp: model and profile names resolve under the data roots,
// $MPSIM_DATA_DIR first; unknown names list what is available.
#include "simulator/spec/data_paths.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "simulator/spec/spec_loader.h"
#include "tests/spec/spec_test_helpers.h"
#include "tests/test_models.h"

namespace mpsim::spec {
namespace {

namespace fs = std::filesystem;
using namespace mpsim::spec::testing;
using mpsim::testing::gpt;
using mpsim::testing::llama;

// ---------------------------------------------------------------------------------------------
// Finding files.

TEST(Resolve, NamePathAndUnknownName) {
  EXPECT_EQ(resolve_spec_path("gpt3-175b", "models"), "models/gpt3-175b.textproto");
  EXPECT_EQ(resolve_spec_path("models/gpt2-124m.textproto", "models"),
            "models/gpt2-124m.textproto");
  SpecError e = spec_error([] { resolve_spec_path("gpt3-176b", "models"); });
  EXPECT_EQ(e.file(), "gpt3-176b");
  expect_words(e.what(), {"no such models entry", "expected one of", "gpt3-175b"});
  e = spec_error([] { resolve_spec_path("nowhere/x.textproto", "models"); });
  expect_words(e.what(), {"nowhere/x.textproto: no such file"});
  e = spec_error([] { load_hardware("h200-nvl"); });
  expect_words(e.what(), {"h100-sxm", "a100-sxm-80gb"});
}

TEST(Resolve, DataDirComesFirst) {
  const fs::path dir = fs::temp_directory_path() / "mpsim_spec_test_data";
  fs::create_directories(dir / "models");
  std::ofstream(dir / "models" / "gpt3-175b.textproto")
      << replace_once(model_text(), "name: \"m\"", "name: \"override\"");
  ::setenv("MPSIM_DATA_DIR", dir.c_str(), 1);
  const ModelSpec m = load_model_spec("gpt3-175b");
  ::unsetenv("MPSIM_DATA_DIR");
  fs::remove_all(dir);
  EXPECT_EQ(m.name(), "override");
}

TEST(DataPaths, RootsInOrder) {
  ::unsetenv("MPSIM_DATA_DIR");
  std::vector<fs::path> roots = data_roots();
  ASSERT_EQ(roots.size(), 2u);
  EXPECT_EQ(roots[0], fs::path(""));
  EXPECT_EQ(roots[1], fs::path(MPSIM_SOURCE_DIR));
  ::setenv("MPSIM_DATA_DIR", "/some/where", 1);
  roots = data_roots();
  ::unsetenv("MPSIM_DATA_DIR");
  ASSERT_EQ(roots.size(), 3u);
  EXPECT_EQ(roots[0], fs::path("/some/where"));
  EXPECT_EQ(roots[1], fs::path(""));
  // An empty variable counts as unset.
  ::setenv("MPSIM_DATA_DIR", "", 1);
  EXPECT_EQ(data_roots().size(), 2u);
  ::unsetenv("MPSIM_DATA_DIR");
}

TEST(DataPaths, CandidatesAndFind) {
  ::setenv("MPSIM_DATA_DIR", "/some/where", 1);
  const std::vector<fs::path> candidates = data_candidates("models/x.textproto");
  EXPECT_EQ(looked_for(candidates), "/some/where/models/x.textproto, models/x.textproto, " +
                                        std::string(MPSIM_SOURCE_DIR) + "/models/x.textproto");
  // The current directory (the repository root under ctest) comes before the source tree.
  EXPECT_EQ(find_data_file("models/gpt3-175b.textproto"), fs::path("models/gpt3-175b.textproto"));
  EXPECT_EQ(find_data_file("models/no-such-model.textproto"), std::nullopt);
  EXPECT_EQ(find_data_file("models"), std::nullopt);  // a folder is not a file
  ::unsetenv("MPSIM_DATA_DIR");
}

}  // namespace
}  // namespace mpsim::spec
