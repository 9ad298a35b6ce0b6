// Writers of sweep results: CSV shape, JSON parses back, SQLite holds the rows and a failed
// write leaves an existing file untouched, and the top-K table.
#include "simulator/sweep/sweep_output.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "simulator/spec/spec_loader.h"
#include "simulator/sweep/config_space.h"
#include "tests/test_models.h"

namespace mpsim::sweep {
namespace {

namespace fs = std::filesystem;

const SweepResult& small_result() {
  static const SweepResult result = [] {
    const spec::ModelSpec model = testing::gpt(8, 256, 8, 128, 1000);
    const spec::Hardware hw = spec::load_hardware("h100-sxm");
    Constraints c;
    c.tp = 2;
    c.recompute = spec::RECOMPUTE_NONE;
    c.zero = 1;
    return run_sweep(model, hw, enumerate_configs(model, hw, 8, 16, c), {});
  }();
  return result;
}

// Splits one CSV line into cells (RFC 4180 quoting).
std::vector<std::string> csv_cells(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (quoted) {
      if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cells.back() += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        cells.back() += ch;
      }
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      cells.emplace_back();
    } else {
      cells.back() += ch;
    }
  }
  return cells;
}

fs::path temp_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("mpsim_sweep_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(SweepOutput, FlattenUsesDottedNames) {
  const auto flat = flatten(nlohmann::json{{"a", {{"b", 1}, {"c", {{"d", "x"}}}}}, {"e", nullptr}});
  ASSERT_EQ(flat.size(), 3u);
  EXPECT_EQ(flat[0].first, "a.b");
  EXPECT_EQ(flat[1].first, "a.c.d");
  EXPECT_EQ(flat[2].first, "e");
  EXPECT_TRUE(flat[2].second.is_null());
}

TEST(SweepOutput, CsvHasHeaderAndOneLinePerRow) {
  const SweepResult& r = small_result();
  ASSERT_FALSE(r.rows.empty());
  std::istringstream in(to_csv(r));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), r.rows.size() + 1);
  const std::vector<std::string> header = csv_cells(lines[0]);
  EXPECT_EQ(header.front(), "rank");
  auto column = [&](const std::string& name) {
    return std::find(header.begin(), header.end(), name) - header.begin();
  };
  for (const char* name : {"config.tp", "config.pp", "config.micro_batch_size",
                           "breakdown.compute_s", "iteration_time_s", "peak_memory_bytes", "mfu"}) {
    EXPECT_LT(column(name), static_cast<long>(header.size())) << name;
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = csv_cells(lines[i]);
    ASSERT_EQ(cells.size(), header.size()) << lines[i];
    EXPECT_EQ(cells[0], std::to_string(i));
    EXPECT_EQ(cells[column("config.tp")], "2");
    EXPECT_DOUBLE_EQ(std::stod(cells[column("iteration_time_s")]),
                     r.rows[i - 1].result.iteration_time_s);
  }
}

TEST(SweepOutput, JsonParsesBack) {
  const SweepResult& r = small_result();
  const nlohmann::json j = nlohmann::json::parse(to_json(r, {{"model", "test-gpt"}}).dump(2));
  EXPECT_EQ(j.at("model"), "test-gpt");
  EXPECT_EQ(j.at("enumerated"), r.enumerated);
  const auto& results = j.at("results");
  ASSERT_EQ(results.size(), r.rows.size());
  EXPECT_EQ(results[0].at("rank"), 1);
  EXPECT_EQ(results[0].at("config").at("tp"), 2);
  EXPECT_TRUE(results[0].contains("peak_memory_bytes"));
  EXPECT_DOUBLE_EQ(results[0].at("iteration_time_s").get<double>(),
                   r.rows[0].result.iteration_time_s);
}

// One integer from a query on the database at `path`.
int64_t query_int(const fs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
  int64_t value = -1;
  if (sqlite3_step(stmt) == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

TEST(SweepOutput, SqliteHoldsEveryRow) {
  const SweepResult& r = small_result();
  const fs::path dir = temp_dir("sqlite");
  const fs::path path = dir / "results.sqlite";
  write_sqlite(path.string(), r, {{"model", "test-gpt"}, {"gpus", "8"}});
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM sweep_results"),
            static_cast<int64_t>(r.rows.size()));
  EXPECT_EQ(query_int(path, "SELECT min(rank) FROM sweep_results"), 1);
  EXPECT_EQ(query_int(path, "SELECT \"config.tp\" FROM sweep_results WHERE rank = 1"), 2);
  EXPECT_EQ(
      query_int(path, "SELECT count(*) FROM sweep_results WHERE \"iteration_time_s\" IS NULL"), 0);
  EXPECT_EQ(query_int(path,
                      "SELECT count(*) FROM sweep_meta WHERE key = 'model' AND "
                      "value = 'test-gpt'"),
            1);
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM sweep_pruned"),
            static_cast<int64_t>(r.pruned.size()));
  // The ranks follow iteration time.
  EXPECT_EQ(query_int(path,
                      "SELECT count(*) FROM sweep_results a JOIN sweep_results b ON "
                      "a.rank < b.rank WHERE a.iteration_time_s > b.iteration_time_s"),
            0);
  // Writing again replaces the file whole.
  write_sqlite(path.string(), r, {});
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM sweep_meta WHERE key = 'model'"), 0);
  fs::remove_all(dir);
}

TEST(SweepOutput, FailedSqliteWriteLeavesExistingFileUntouched) {
  const SweepResult& r = small_result();
  const fs::path dir = temp_dir("fail");
  const fs::path path = dir / "results.sqlite";
  { std::ofstream(path) << "keep me"; }
  // A non-empty directory where the temporary file must go: the open fails.
  fs::create_directories(path.string() + ".tmp/blocker");
  try {
    write_sqlite(path.string(), r, {});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("sqlite3_"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("sweep_output.cpp:"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read(path), "keep me");
  EXPECT_THROW(write_sqlite((dir / "no/such/dir/x.sqlite").string(), r, {}), std::runtime_error);
  fs::remove_all(dir);
}

TEST(SweepOutput, TopTable) {
  const SweepResult& r = small_result();
  ASSERT_GE(r.rows.size(), 3u);
  std::istringstream in(top_table(r, 3));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  for (const char* word :
       {"rank", "tp", "schedule", "recompute", "iter ms", "tokens/s", "MFU %", "peak GiB"}) {
    EXPECT_NE(lines[0].find(word), std::string::npos) << word;
  }
  EXPECT_EQ(lines[1].find_first_not_of(' '), lines[1].find('1'));
  EXPECT_NE(top_table(SweepResult{}, 10).find("no valid configuration"), std::string::npos);
  SweepResult none_fit;
  none_fit.enumerated = 3;
  EXPECT_NE(top_table(none_fit, 10).find("no configuration fits in memory"), std::string::npos);
}

TEST(SweepOutput, SummaryLine) {
  SweepResult r;
  r.enumerated = 10;
  r.simulated = 7;
  r.pruned = {{kActivationsExceedMemory, 3}};
  r.seconds = 1.5;
  EXPECT_EQ(summary_line(r),
            "enumerated 10; pruned 3 (activations exceed memory 3); simulated 7; fitting 0; "
            "1.50 s");
}

}  // namespace
}  // namespace mpsim::sweep
