// JSON, CSV, SQLite and text output of a sweep; see sweep_output.h.
#include "simulator/sweep/sweep_output.h"

#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>

#include "simulator/spec/config_words.h"

namespace mpsim::sweep {
namespace {

using nlohmann::json;

void flatten_into(const json& value, const std::string& prefix,
                  std::vector<std::pair<std::string, json>>& out) {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      flatten_into(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    }
  } else {
    out.emplace_back(prefix, value);
  }
}

// Flattened rows and the union of their columns: "rank" first, the rest sorted.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::map<std::string, json>> rows;
};

Table flat_table(const SweepResult& result) {
  Table t;
  std::set<std::string> names;
  for (const json& row : rows_json(result)) {
    std::map<std::string, json> cells;
    for (auto& [key, value] : flatten(row)) {
      if (key != "rank") names.insert(key);
      cells.emplace(key, std::move(value));
    }
    t.rows.push_back(std::move(cells));
  }
  t.columns.push_back("rank");
  t.columns.insert(t.columns.end(), names.begin(), names.end());
  return t;
}

std::string csv_cell(const json& value) {
  if (value.is_null()) return "";
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char ch : text) {
    if (ch == '"') quoted += '"';
    quoted += ch;
  }
  return quoted + "\"";
}

std::string format(const char* fmt, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, fmt, value);
  return buffer;
}

// ---- SQLite ---------------------------------------------------------------------------------

// Checks one sqlite3 call: anything but OK, ROW or DONE throws naming the path, the call and
// where it was made.
#define MPSIM_SQLITE_CHECK(call) check_sqlite((call), #call, __FILE__, __LINE__, db, path)

void check_sqlite(int rc, const char* call, const char* file, int line, sqlite3* db,
                  const std::string& path) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
  const std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw std::runtime_error(path + ": " + call + " failed: " + detail + " (" + file + ":" +
                           std::to_string(line) + ")");
}

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (char ch : name) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

const char* sql_type(const json& value) {
  if (value.is_boolean() || value.is_number_integer()) return "INTEGER";
  if (value.is_number_float()) return "REAL";
  return "TEXT";
}

// The statement's owner; finalized on scope exit whatever happens.
struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

void bind_value(sqlite3* db, sqlite3_stmt* stmt, int index, const json& value,
                const std::string& path) {
  if (value.is_null()) {
    MPSIM_SQLITE_CHECK(sqlite3_bind_null(stmt, index));
  } else if (value.is_boolean()) {
    MPSIM_SQLITE_CHECK(sqlite3_bind_int64(stmt, index, value.get<bool>() ? 1 : 0));
  } else if (value.is_number_integer()) {
    MPSIM_SQLITE_CHECK(sqlite3_bind_int64(stmt, index, value.get<int64_t>()));
  } else if (value.is_number_float()) {
    MPSIM_SQLITE_CHECK(sqlite3_bind_double(stmt, index, value.get<double>()));
  } else {
    const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    MPSIM_SQLITE_CHECK(sqlite3_bind_text(stmt, index, text.c_str(), static_cast<int>(text.size()),
                                         SQLITE_TRANSIENT));
  }
}

void write_tables(sqlite3* db, const std::string& path, const SweepResult& result,
                  const std::map<std::string, std::string>& meta) {
  MPSIM_SQLITE_CHECK(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr));

  const Table table = flat_table(result);
  std::string create = "CREATE TABLE sweep_results (",
              insert = "INSERT INTO sweep_results VALUES (";
  for (size_t c = 0; c < table.columns.size(); ++c) {
    const std::string& name = table.columns[c];
    const char* type = "";
    for (const auto& row : table.rows) {
      auto it = row.find(name);
      if (it != row.end() && !it->second.is_null()) {
        type = sql_type(it->second);
        break;
      }
    }
    if (name == "rank") type = "INTEGER PRIMARY KEY";
    if (c) create += ", ";
    create += quote_identifier(name);
    if (*type) create += std::string(" ") + type;
    insert += c ? ", ?" : "?";
  }
  create += ")";
  insert += ")";
  MPSIM_SQLITE_CHECK(sqlite3_exec(db, create.c_str(), nullptr, nullptr, nullptr));
  {
    Statement s;
    MPSIM_SQLITE_CHECK(sqlite3_prepare_v2(db, insert.c_str(), -1, &s.stmt, nullptr));
    for (const auto& row : table.rows) {
      for (size_t c = 0; c < table.columns.size(); ++c) {
        auto it = row.find(table.columns[c]);
        bind_value(db, s.stmt, static_cast<int>(c) + 1, it == row.end() ? json() : it->second,
                   path);
      }
      MPSIM_SQLITE_CHECK(sqlite3_step(s.stmt));
      MPSIM_SQLITE_CHECK(sqlite3_reset(s.stmt));
    }
  }

  MPSIM_SQLITE_CHECK(sqlite3_exec(db, "CREATE TABLE sweep_pruned (reason TEXT, count INTEGER)",
                                  nullptr, nullptr, nullptr));
  {
    Statement s;
    MPSIM_SQLITE_CHECK(
        sqlite3_prepare_v2(db, "INSERT INTO sweep_pruned VALUES (?, ?)", -1, &s.stmt, nullptr));
    for (const auto& [reason, count] : result.pruned) {
      bind_value(db, s.stmt, 1, reason, path);
      bind_value(db, s.stmt, 2, count, path);
      MPSIM_SQLITE_CHECK(sqlite3_step(s.stmt));
      MPSIM_SQLITE_CHECK(sqlite3_reset(s.stmt));
    }
  }

  MPSIM_SQLITE_CHECK(sqlite3_exec(db, "CREATE TABLE sweep_meta (key TEXT PRIMARY KEY, value TEXT)",
                                  nullptr, nullptr, nullptr));
  std::map<std::string, std::string> all = meta;
  all.emplace("enumerated", std::to_string(result.enumerated));
  all.emplace("simulated", std::to_string(result.simulated));
  all.emplace("seconds", format("%.3f", result.seconds));
  {
    Statement s;
    MPSIM_SQLITE_CHECK(
        sqlite3_prepare_v2(db, "INSERT INTO sweep_meta VALUES (?, ?)", -1, &s.stmt, nullptr));
    for (const auto& [key, value] : all) {
      bind_value(db, s.stmt, 1, key, path);
      bind_value(db, s.stmt, 2, value, path);
      MPSIM_SQLITE_CHECK(sqlite3_step(s.stmt));
      MPSIM_SQLITE_CHECK(sqlite3_reset(s.stmt));
    }
  }
  MPSIM_SQLITE_CHECK(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr));
}

}  // namespace

std::vector<std::pair<std::string, json>> flatten(const json& object) {
  std::vector<std::pair<std::string, json>> out;
  flatten_into(object, "", out);
  return out;
}

json rows_json(const SweepResult& result) {
  json rows = json::array();
  int64_t rank = 0;
  for (const SweepRow& row : result.rows) {
    json r = report::to_json(row.result);
    r["rank"] = ++rank;
    rows.push_back(std::move(r));
  }
  return rows;
}

json to_json(const SweepResult& result, const std::map<std::string, std::string>& meta) {
  json out = json::object();
  for (const auto& [key, value] : meta) out[key] = value;
  out["enumerated"] = result.enumerated;
  out["simulated"] = result.simulated;
  out["pruned"] = json::object();
  for (const auto& [reason, count] : result.pruned) out["pruned"][reason] = count;
  out["seconds"] = result.seconds;
  out["results"] = rows_json(result);
  return out;
}

std::string to_csv(const SweepResult& result) {
  const Table table = flat_table(result);
  std::string out;
  for (size_t c = 0; c < table.columns.size(); ++c) {
    if (c) out += ",";
    out += csv_cell(table.columns[c]);
  }
  out += "\n";
  for (const auto& row : table.rows) {
    for (size_t c = 0; c < table.columns.size(); ++c) {
      auto it = row.find(table.columns[c]);
      if (c) out += ",";
      if (it != row.end()) out += csv_cell(it->second);
    }
    out += "\n";
  }
  return out;
}

std::string top_table(const SweepResult& result, int top_k) {
  const std::vector<std::string> header = {"rank",    "tp",       "pp",       "dp",        "sp",
                                           "vpp",     "mbs",      "schedule", "recompute", "zero",
                                           "iter ms", "tokens/s", "MFU %",    "peak GiB"};
  std::vector<std::vector<std::string>> cells = {header};
  const size_t n = std::min<size_t>(result.rows.size(), static_cast<size_t>(std::max(top_k, 0)));
  for (size_t i = 0; i < n; ++i) {
    const spec::ParallelConfig& c = result.rows[i].config;
    const report::SimulationResult& r = result.rows[i].result;
    cells.push_back(
        {std::to_string(i + 1), std::to_string(c.tensor_parallel()),
         std::to_string(c.pipeline_parallel()), std::to_string(c.data_parallel()),
         c.sequence_parallel() ? "on" : "off", std::to_string(c.virtual_pipeline_stages()),
         std::to_string(c.micro_batch_size()), spec::schedule_word(c.schedule()),
         spec::recompute_word(c.recompute()), std::to_string(c.zero_stage()),
         format("%.2f", r.iteration_time_s * 1e3), format("%.0f", r.tokens_per_s),
         format("%.1f", r.mfu * 100),
         r.peak_memory_bytes ? format("%.1f", static_cast<double>(*r.peak_memory_bytes) / (1 << 30))
                             : "-"});
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& line : cells) {
    for (size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
  }
  std::string out;
  for (const auto& line : cells) {
    std::string text;
    for (size_t c = 0; c < line.size(); ++c) {
      // Words left-aligned, numbers right-aligned.
      const bool left = c == 4 || c == 7 || c == 8;
      const std::string pad(width[c] - line[c].size(), ' ');
      text += (c ? "  " : "") + (left ? line[c] + pad : pad + line[c]);
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  }
  if (result.enumerated == 0) {
    out += "(no valid configuration: check --gpus, --gbs and the constraints)\n";
  } else if (result.rows.empty()) {
    out += "(no configuration fits in memory)\n";
  }
  return out;
}

void write_sqlite(const std::string& path, const SweepResult& result,
                  const std::map<std::string, std::string>& meta) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  fs::remove(tmp, ec);  // a stale file from an interrupted run; a failure shows at open
  sqlite3* db = nullptr;
  try {
    MPSIM_SQLITE_CHECK(
        sqlite3_open_v2(tmp.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr));
    write_tables(db, path, result, meta);
    sqlite3* closing = db;
    db = nullptr;
    MPSIM_SQLITE_CHECK(sqlite3_close(closing));
  } catch (...) {
    sqlite3_close(db);
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw std::runtime_error(path + ": cannot rename " + tmp + " over it: " + ec.message());
  }
}

std::string summary_line(const SweepResult& result) {
  std::string pruned;
  int64_t total = 0;
  for (const auto& [reason, count] : result.pruned) {
    pruned += (pruned.empty() ? "" : ", ") + reason + " " + std::to_string(count);
    total += count;
  }
  return "enumerated " + std::to_string(result.enumerated) + "; pruned " + std::to_string(total) +
         (pruned.empty() ? "" : " (" + pruned + ")") + "; simulated " +
         std::to_string(result.simulated) + "; fitting " + std::to_string(result.rows.size()) +
         "; " + format("%.2f", result.seconds) + " s";
}

}  // namespace mpsim::sweep
