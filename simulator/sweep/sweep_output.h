// Writing a SweepResult: JSON, CSV, SQLite and a top-K text table.
//
// Every row is report::to_json() of its simulation (the fields of `mpsim simulate --format json`,
// `peak_memory_bytes` and `config` included) plus "rank" (1 = fastest). CSV and SQLite flatten
// nested objects with dotted names (`breakdown.compute_s`, `config.tp`); the columns are the
// union of the rows' flattened keys, "rank" first, then in sorted order. JSON null is an empty
// CSV cell and an SQL NULL.
//
// write_sqlite() writes, in one transaction, into `path + ".tmp"` and renames it over `path`, so
// an existing file is replaced whole or left untouched. Tables:
//   sweep_results(rank, <one column per flattened field>)   one row per fitting config
//   sweep_pruned(reason TEXT, count INTEGER)
//   sweep_meta(key TEXT, value TEXT)                          model, hardware, gpus, gbs, ...
// Any SQLite or file-system failure throws std::runtime_error naming the path and, for SQLite,
// the failing call and its file:line.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "simulator/sweep/sweep.h"

namespace mpsim::sweep {

// One object per row, in rank order: {"rank": 1, ...report::to_json(result)}, with the row's
// "command" where the caller set one (SweepRow::command).
nlohmann::json rows_json(const SweepResult& result);

// The whole sweep: {"enumerated", "simulated", "pruned": {reason: count}, "seconds",
// "results": rows_json(result)} plus the entries of `meta`.
nlohmann::json to_json(const SweepResult& result,
                       const std::map<std::string, std::string>& meta = {});

// `{"a": {"b": 1}}` -> {("a.b", 1)}; arrays are kept whole as values.
std::vector<std::pair<std::string, nlohmann::json>> flatten(const nlohmann::json& object);

// A header line and one line per row (RFC 4180 quoting where a cell needs it).
std::string to_csv(const SweepResult& result);

// The first `top_k` rows as an aligned text table: rank, tp, pp, dp, sp, vpp, mbs, schedule,
// recompute, zero, iteration ms, tokens/s, MFU %, peak memory GiB ("-" when unknown).
std::string top_table(const SweepResult& result, int top_k);

// `meta` holds sweep_meta's rows (model, hardware, gpus, gbs, date, command, ...).
void write_sqlite(const std::string& path, const SweepResult& result,
                  const std::map<std::string, std::string>& meta);

// One line: "enumerated N; pruned: reason N, ...; simulated N; S s".
std::string summary_line(const SweepResult& result);

}  // namespace mpsim::sweep
