// See sqlite_db.h.
#include "common/sqlite_db.h"

#include <filesystem>

namespace mpsim::common {

SqliteDb::SqliteDb(std::string path, int flags, ErrorThrower thrower, std::source_location where)
    : path_(std::move(path)), thrower_(thrower) {
  try {
    check(sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr),
          "sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr)", where);
    MPSIM_SQLITE_CHECK(*this, sqlite3_extended_result_codes(db_, 1));
    MPSIM_SQLITE_CHECK(*this, sqlite3_busy_timeout(db_, 5000));
  } catch (...) {
    sqlite3_close_v2(db_);  // a failed open still allocates a handle
    throw;
  }
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

void SqliteDb::exec(const std::string& sql, std::source_location where) {
  check(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr),
        "sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr)", where);
}

void SqliteDb::rollback() noexcept { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

void SqliteDb::close(std::source_location where) {
  if (db_ == nullptr) return;
  check(sqlite3_close(db_), "sqlite3_close(db_)", where);
  db_ = nullptr;
}

int SqliteDb::check(int rc, const char* call, std::source_location where) const {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return rc;
  const char* message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  fail(path_ + ": " + call + " failed (" +
       std::filesystem::path(where.file_name()).filename().string() + ":" +
       std::to_string(where.line()) + "): " + message);
}

void SqliteDb::fail(const std::string& message) const {
  if (thrower_ != nullptr) thrower_(message);
  throw SqliteError(message);  // also when a thrower returned, against its contract
}

SqliteStatement::SqliteStatement(SqliteDb& db, const std::string& sql, std::source_location where)
    : db_(&db) {
  db.check(sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &stmt_, nullptr),
           "sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &stmt_, nullptr)", where);
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

bool SqliteStatement::next() {
  int rc = 0;
  try {
    rc = MPSIM_SQLITE_CHECK(*db_, sqlite3_step(stmt_));
  } catch (...) {
    sqlite3_reset(stmt_);  // repeats the error just reported; leaves the statement reusable
    throw;
  }
  if (rc == SQLITE_ROW) return true;
  MPSIM_SQLITE_CHECK(*db_, sqlite3_reset(stmt_));
  return false;
}

}  // namespace mpsim::common
