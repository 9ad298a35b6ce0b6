// Internal to profiler/store: the schema of the trace store, written down once, and recognising,
// opening and removing store files. The public API is trace_store.h.
//
// Every function throws StoreError naming the file: for SQLite failures (the call, its file:line
// and SQLite's message, see common/sqlite_db.h), for a file that is not an mpsim store, and for
// an unknown schema_version.
#pragma once

#include <string>

#include "common/sqlite_db.h"

namespace mpsim::profiler::detail {

// The whole schema, version kSchemaVersion (trace_store.h); documented in profiler/README.md.
extern const char* const kSchemaSql;
// MPSIM_META's `producer` value.
extern const char* const kProducer;

// The common::ErrorThrower of every store connection: throws StoreError(message).
[[noreturn]] void throw_store_error(const std::string& message);

// A connection whose SQLite failures throw StoreError.
common::SqliteDb open_store_database(const std::string& path, int flags);

// Throws unless `db` is an SQLite database holding an MPSIM_META table.
void require_store(common::SqliteDb& db);
// Throws unless MPSIM_META's schema_version is kSchemaVersion.
void require_schema_version(common::SqliteDb& db);
// Refuses to go on if `path` exists and is not an mpsim store: never destroy a user's file.
void check_replaceable(const std::string& path);
// Removes a database and its WAL side files (a stale -wal would otherwise be replayed).
void remove_database(const std::string& path);

}  // namespace mpsim::profiler::detail
