// The trace store's schema and the recognition of store files; see store_schema.h.
#include "profiler/store/store_schema.h"

#include <filesystem>

#include "profiler/store/trace_store.h"

namespace mpsim::profiler::detail {

namespace fs = std::filesystem;

// Times are ns on the rank's CUPTI clock; every activity table has a `rank` column so that merged
// databases keep ranks; names are StringIds ids.
const char* const kSchemaSql = R"sql(
CREATE TABLE MPSIM_META(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE StringIds(id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
CREATE TABLE RANKS(rank INTEGER PRIMARY KEY, localRank INTEGER NOT NULL,
  worldSize INTEGER NOT NULL, pid INTEGER NOT NULL, hostname TEXT NOT NULL, command TEXT NOT NULL,
  rankSource TEXT NOT NULL, startNs INTEGER NOT NULL, endNs INTEGER,
  clockOffsetNs INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL(start INTEGER NOT NULL, end INTEGER NOT NULL,
  deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, streamId INTEGER NOT NULL,
  correlationId INTEGER NOT NULL, demangledName INTEGER NOT NULL REFERENCES StringIds(id),
  shortName INTEGER NOT NULL REFERENCES StringIds(id),
  mangledName INTEGER NOT NULL REFERENCES StringIds(id),
  gridX INTEGER NOT NULL, gridY INTEGER NOT NULL, gridZ INTEGER NOT NULL,
  blockX INTEGER NOT NULL, blockY INTEGER NOT NULL, blockZ INTEGER NOT NULL,
  registersPerThread INTEGER NOT NULL, staticSharedMemory INTEGER NOT NULL,
  dynamicSharedMemory INTEGER NOT NULL, isNccl INTEGER NOT NULL, rank INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_MEMCPY(start INTEGER NOT NULL, end INTEGER NOT NULL,
  deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, streamId INTEGER NOT NULL,
  correlationId INTEGER NOT NULL, bytes INTEGER NOT NULL, copyKind INTEGER NOT NULL,
  srcKind INTEGER NOT NULL, dstKind INTEGER NOT NULL, rank INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_MEMSET(start INTEGER NOT NULL, end INTEGER NOT NULL,
  deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, streamId INTEGER NOT NULL,
  correlationId INTEGER NOT NULL, bytes INTEGER NOT NULL, value INTEGER NOT NULL,
  rank INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME(start INTEGER NOT NULL, end INTEGER NOT NULL,
  eventClass INTEGER NOT NULL, globalTid INTEGER NOT NULL, correlationId INTEGER NOT NULL,
  nameId INTEGER NOT NULL REFERENCES StringIds(id), returnValue INTEGER NOT NULL,
  rank INTEGER NOT NULL);
CREATE TABLE CUPTI_ACTIVITY_KIND_SYNCHRONIZATION(start INTEGER NOT NULL, end INTEGER NOT NULL,
  contextId INTEGER NOT NULL, streamId INTEGER NOT NULL, correlationId INTEGER NOT NULL,
  globalTid INTEGER NOT NULL, syncType INTEGER NOT NULL, rank INTEGER NOT NULL);
CREATE TABLE NVTX_EVENTS(start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL,
  rangeId INTEGER NOT NULL, category INTEGER NOT NULL, color INTEGER NOT NULL,
  textId INTEGER REFERENCES StringIds(id), domainId INTEGER REFERENCES StringIds(id),
  globalTid INTEGER NOT NULL, int64Value INTEGER, doubleValue REAL, rank INTEGER NOT NULL);
CREATE TABLE TARGET_INFO_GPU(id INTEGER NOT NULL, name TEXT NOT NULL, uuid TEXT NOT NULL,
  busLocation TEXT NOT NULL, totalMemory INTEGER NOT NULL, smCount INTEGER NOT NULL,
  computeMajor INTEGER NOT NULL, computeMinor INTEGER NOT NULL, rank INTEGER NOT NULL,
  PRIMARY KEY(rank, id));
CREATE TABLE PROFILER_OVERHEAD(start INTEGER NOT NULL, end INTEGER NOT NULL,
  globalTid INTEGER NOT NULL, rank INTEGER NOT NULL);
CREATE TABLE PROFILER_DROPPED(rank INTEGER PRIMARY KEY, count INTEGER NOT NULL);
CREATE INDEX kernel_rank_start ON CUPTI_ACTIVITY_KIND_KERNEL(rank, start);
CREATE INDEX kernel_correlation ON CUPTI_ACTIVITY_KIND_KERNEL(correlationId);
CREATE INDEX runtime_rank_start ON CUPTI_ACTIVITY_KIND_RUNTIME(rank, start);
CREATE INDEX runtime_correlation ON CUPTI_ACTIVITY_KIND_RUNTIME(correlationId);
CREATE INDEX nvtx_rank_start ON NVTX_EVENTS(rank, start);
)sql";

const char* const kProducer = "mpsim profiler";

void throw_store_error(const std::string& message) { throw StoreError(message); }

common::SqliteDb open_store_database(const std::string& path, int flags) {
  return common::SqliteDb(path, flags, &throw_store_error);
}

void require_store(common::SqliteDb& db) {
  int64_t tables = 0;
  try {
    common::SqliteStatement probe(
        db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'MPSIM_META'");
    if (probe.next()) probe.columns(tables);
    while (probe.next()) {
    }
  } catch (const StoreError&) {
    throw StoreError(db.path() + ": not an SQLite database (" + sqlite3_errmsg(db.handle()) +
                     "); expected an mpsim trace store");
  }
  if (tables == 0) {
    throw StoreError(db.path() + ": not an mpsim trace store (no MPSIM_META table)");
  }
}

namespace {

std::string meta_value(common::SqliteDb& db, const char* key) {
  common::SqliteStatement query(db, "SELECT value FROM MPSIM_META WHERE key = ?");
  std::string value;
  bool found = query.bind(std::string(key)).next();
  if (found) query.columns(value);
  while (query.next()) {
  }
  if (!found) throw StoreError(db.path() + ": MPSIM_META has no " + key + " row");
  return value;
}

}  // namespace

void require_schema_version(common::SqliteDb& db) {
  std::string version = meta_value(db, "schema_version");
  if (version != std::to_string(kSchemaVersion)) {
    throw StoreError(db.path() + ": schema_version " + version + " is not supported; expected " +
                     std::to_string(kSchemaVersion));
  }
}

void check_replaceable(const std::string& path) {
  if (!fs::exists(path)) return;
  try {
    common::SqliteDb db = open_store_database(path, SQLITE_OPEN_READONLY);
    require_store(db);
  } catch (const StoreError& e) {
    throw StoreError(path + ": exists and is not an mpsim trace store; refusing to replace it (" +
                     e.what() + ")");
  }
}

void remove_database(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ignored;  // absent files are fine
    fs::remove(path + suffix, ignored);
  }
}

}  // namespace mpsim::profiler::detail
