// JSON, CSV, SQLite and text output of a sweep; see sweep_output.h.
#include "simulator/sweep/sweep_output.h"

#include <set>
#include <sstream>
#include <stdexcept>

#include "common/atomic_file.h"
#include "common/sqlite_db.h"
#include "common/text.h"
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

// ---- SQLite ---------------------------------------------------------------------------------

using common::SqliteDb;
using common::SqliteStatement;

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

// Binds one JSON value: null as NULL, booleans as 0/1, numbers as such, anything else as text.
void bind_value(SqliteStatement& statement, int index, const json& value) {
  if (value.is_null()) {
    statement.bind_at(index, std::nullopt);
  } else if (value.is_boolean()) {
    statement.bind_at(index, int64_t{value.get<bool>() ? 1 : 0});
  } else if (value.is_number_integer()) {
    statement.bind_at(index, value.get<int64_t>());
  } else if (value.is_number_float()) {
    statement.bind_at(index, value.get<double>());
  } else {
    statement.bind_at(index, value.is_string() ? value.get<std::string>() : value.dump());
  }
}

// The CREATE TABLE and INSERT statements of sweep_results: a column per flattened field, typed
// by its first non-null value, "rank" the primary key.
std::pair<std::string, std::string> results_statements(const Table& table) {
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
  return {create + ")", insert + ")"};
}

void write_tables(SqliteDb& db, const SweepResult& result,
                  const std::map<std::string, std::string>& meta) {
  db.exec("BEGIN");
  const Table table = flat_table(result);
  const auto [create, insert] = results_statements(table);
  db.exec(create);
  {
    SqliteStatement s(db, insert);
    for (const auto& row : table.rows) {
      for (size_t c = 0; c < table.columns.size(); ++c) {
        auto it = row.find(table.columns[c]);
        bind_value(s, static_cast<int>(c) + 1, it == row.end() ? json() : it->second);
      }
      s.run();
    }
  }

  db.exec("CREATE TABLE sweep_pruned (reason TEXT, count INTEGER)");
  {
    SqliteStatement s(db, "INSERT INTO sweep_pruned VALUES (?, ?)");
    for (const auto& [reason, count] : result.pruned) s.run(reason, int64_t{count});
  }

  db.exec("CREATE TABLE sweep_meta (key TEXT PRIMARY KEY, value TEXT)");
  std::map<std::string, std::string> all = meta;
  all.emplace("enumerated", std::to_string(result.enumerated));
  all.emplace("simulated", std::to_string(result.simulated));
  all.emplace("seconds", common::printf_string("%.3f", result.seconds));
  {
    SqliteStatement s(db, "INSERT INTO sweep_meta VALUES (?, ?)");
    for (const auto& [key, value] : all) s.run(key, value);
  }
  db.exec("COMMIT");
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
    if (!row.command.is_null()) r["command"] = row.command;
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
  const std::vector<std::string> header = {"rank", "tp",      "pp",       "cp",       "dp",
                                           "sp",   "vpp",     "mbs",      "schedule", "recompute",
                                           "zero", "iter ms", "tokens/s", "MFU %",    "peak GiB"};
  std::vector<std::vector<std::string>> cells = {header};
  const size_t n = std::min<size_t>(result.rows.size(), static_cast<size_t>(std::max(top_k, 0)));
  for (size_t i = 0; i < n; ++i) {
    const spec::ParallelConfig& c = result.rows[i].config;
    const report::SimulationResult& r = result.rows[i].result;
    cells.push_back(
        {std::to_string(i + 1), std::to_string(c.tensor_parallel()),
         std::to_string(c.pipeline_parallel()),
         std::to_string(std::max<int64_t>(1, c.context_parallel())),
         std::to_string(c.data_parallel()), c.sequence_parallel() ? "on" : "off",
         std::to_string(c.virtual_pipeline_stages()), std::to_string(c.micro_batch_size()),
         spec::schedule_word(c.schedule()), spec::recompute_word(c.recompute()),
         std::to_string(c.zero_stage()), common::printf_string("%.2f", r.iteration_time_s * 1e3),
         common::printf_string("%.0f", r.tokens_per_s), common::printf_string("%.1f", r.mfu * 100),
         r.peak_memory_bytes
             ? common::printf_string("%.1f", static_cast<double>(*r.peak_memory_bytes) / (1 << 30))
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
      const bool left = c == 5 || c == 8 || c == 9;
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
  common::ReplacingFile file(path);  // path + ".tmp", renamed over path when complete
  file.discard();  // a stale file from an interrupted run; a failure shows at open
  {
    SqliteDb db(file.temp_path(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    write_tables(db, result, meta);
    db.close();
  }
  file.commit();
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
         "; " + common::printf_string("%.2f", result.seconds) + " s";
}

}  // namespace mpsim::sweep
