// The project's one SQLite wrapper, over the SQLite C API: SqliteDb owns a connection,
// SqliteStatement a prepared statement, and MPSIM_SQLITE_CHECK checks one sqlite3_* call.
//
// Contract: every SQLite call is checked. A result other than SQLITE_OK, SQLITE_ROW or
// SQLITE_DONE throws, with the message
//   "<database path>: <the call's text> failed (<file>:<line>): <SQLite's message>"
// where file:line is the call site: of MPSIM_SQLITE_CHECK, or of the caller of SqliteDb's
// constructor, exec(), close() and SqliteStatement's constructor. The exception is
// common::SqliteError unless the connection was opened with an ErrorThrower, which then throws
// the caller's own type (the trace store's StoreError). Destructors never throw: they close and
// finalize unchecked. Nothing here aborts, so the wrapper is safe inside the profiler's injection
// library. Debian's SQLiteCpp was not taken: its connection destructor asserts (aborts) when
// sqlite3_close fails, and its errors carry neither the call's text nor the call site.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <source_location>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace mpsim::common {

class SqliteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws the caller's error type carrying `message`; must not return.
using ErrorThrower = void (*)(const std::string& message);

// Checks one sqlite3_* call on `db` (a SqliteDb); yields the call's result code.
#define MPSIM_SQLITE_CHECK(db, call) (db).check((call), #call, std::source_location::current())

// An open database; closed (unchecked) on destruction, or checked by close().
class SqliteDb {
 public:
  // sqlite3_open_v2 with `flags`, extended result codes and a 5 s busy timeout.
  SqliteDb(std::string path, int flags, ErrorThrower thrower = nullptr,
           std::source_location where = std::source_location::current());
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

  // Runs one or more statements without results.
  void exec(const std::string& sql, std::source_location where = std::source_location::current());
  // ROLLBACK, unchecked: called while an error propagates, whose message wins.
  void rollback() noexcept;
  // Closes the connection, checked (fails while statements are unfinalized). Idempotent.
  void close(std::source_location where = std::source_location::current());

  // Throws unless `rc` is SQLITE_OK, SQLITE_ROW or SQLITE_DONE; returns `rc`.
  int check(int rc, const char* call, std::source_location where) const;
  // Throws `message` as this connection's error type.
  [[noreturn]] void fail(const std::string& message) const;

 private:
  std::string path_;
  ErrorThrower thrower_;
  sqlite3* db_ = nullptr;
};

// A prepared statement, reusable: bind all parameters, then run() or step through rows with
// next(). Parameters and columns are integers (and enums), doubles, std::string,
// std::optional<int64_t> / std::optional<double> (empty is NULL) and std::nullopt.
class SqliteStatement {
 public:
  SqliteStatement(SqliteDb& db, const std::string& sql,
                  std::source_location where = std::source_location::current());
  ~SqliteStatement();
  SqliteStatement(SqliteStatement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Binds `args...` to the parameters 1, 2, ...
  template <class... Args>
  SqliteStatement& bind(const Args&... args) {
    int index = 0;
    (bind_at(++index, args), ...);
    return *this;
  }
  // Binds one parameter, counted from 1.
  template <class T>
  void bind_at(int index, const T& value) {
    if constexpr (std::is_same_v<T, std::nullopt_t>) {
      MPSIM_SQLITE_CHECK(*db_, sqlite3_bind_null(stmt_, index));
    } else if constexpr (std::is_same_v<T, std::optional<int64_t>> ||
                         std::is_same_v<T, std::optional<double>>) {
      if (value)
        bind_at(index, *value);
      else
        MPSIM_SQLITE_CHECK(*db_, sqlite3_bind_null(stmt_, index));
    } else if constexpr (std::is_same_v<T, std::string>) {
      MPSIM_SQLITE_CHECK(*db_, sqlite3_bind_text(stmt_, index, value.data(),
                                                 static_cast<int>(value.size()), SQLITE_TRANSIENT));
    } else if constexpr (std::is_floating_point_v<T>) {
      MPSIM_SQLITE_CHECK(*db_, sqlite3_bind_double(stmt_, index, value));
    } else {
      static_assert(std::is_integral_v<T> || std::is_enum_v<T>);
      // uint64 values (thread ids) are stored as their two's-complement int64 and read back
      // exactly.
      MPSIM_SQLITE_CHECK(*db_, sqlite3_bind_int64(stmt_, index, static_cast<int64_t>(value)));
    }
  }
  // Binds, steps to completion and resets: one INSERT, UPDATE or statement without rows.
  template <class... Args>
  void run(const Args&... args) {
    bind(args...);
    while (next()) {
    }
  }
  // Steps once; false (and reset, ready for reuse) when the rows are exhausted.
  bool next();
  // Reads the current row's columns, from the first, into `out...`.
  template <class... Out>
  void columns(Out&... out) const {
    int index = 0;
    (column_one(index++, out), ...);
  }
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  template <class T>
  void column_one(int index, T& out) const {
    if constexpr (std::is_same_v<T, std::string>) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
      out = text != nullptr ? std::string(text, sqlite3_column_bytes(stmt_, index)) : "";
    } else if constexpr (std::is_floating_point_v<T>) {
      out = sqlite3_column_double(stmt_, index);
    } else {
      static_assert(std::is_integral_v<T>);
      out = static_cast<T>(sqlite3_column_int64(stmt_, index));
    }
  }

  SqliteDb* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace mpsim::common
