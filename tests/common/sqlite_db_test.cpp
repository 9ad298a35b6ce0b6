// The SQLite wrapper: values round-trip, failures name the database, the call and the caller's
// file:line, an ErrorThrower picks the exception type, and statements are reusable after errors.
#include "common/sqlite_db.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace mpsim::common {
namespace {

namespace fs = std::filesystem;

class SqliteDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mpsim_sqlite_db_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

constexpr int kCreate = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

struct OwnError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void throw_own(const std::string& message) { throw OwnError(message); }

TEST_F(SqliteDbTest, ValuesRoundTripIncludingNullsAndUnsigned) {
  SqliteDb db(path("values.sqlite"), kCreate);
  db.exec("CREATE TABLE t(i INTEGER, d REAL, s TEXT, n INTEGER, o REAL)");
  {
    SqliteStatement insert(db, "INSERT INTO t VALUES (?, ?, ?, ?, ?)");
    const uint64_t big = ~uint64_t{0} - 1;  // stored as its two's-complement int64
    insert.run(big, 2.5, std::string("text"), std::nullopt, std::optional<double>());
    insert.run(int64_t{-3}, 0.0, std::string(), std::optional<int64_t>(7),
               std::optional<double>(1.5));
    SqliteStatement query(db, "SELECT i, d, s, n, o FROM t ORDER BY rowid");
    ASSERT_TRUE(query.next());
    uint64_t i = 0;
    double d = 0, o = 0;
    std::string s;
    int64_t n = 0;
    query.columns(i, d, s, n, o);
    EXPECT_EQ(i, big);
    EXPECT_DOUBLE_EQ(d, 2.5);
    EXPECT_EQ(s, "text");
    EXPECT_TRUE(query.is_null(3));
    EXPECT_TRUE(query.is_null(4));
    ASSERT_TRUE(query.next());
    query.columns(i, d, s, n, o);
    EXPECT_EQ(static_cast<int64_t>(i), -3);
    EXPECT_EQ(n, 7);
    EXPECT_DOUBLE_EQ(o, 1.5);
    EXPECT_FALSE(query.next());
    EXPECT_TRUE(query.next());  // reset after the last row: reusable
  }
  db.close();  // every statement finalized
  db.close();  // idempotent
}

TEST_F(SqliteDbTest, AFailureNamesTheDatabaseTheCallAndTheCallSite) {
  SqliteDb db(path("errors.sqlite"), kCreate);
  try {
    db.exec("SELEC 1");
    FAIL() << "expected an error";
  } catch (const SqliteError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(path("errors.sqlite") + ": sqlite3_exec(", 0), 0u) << what;
    EXPECT_NE(what.find(" failed (sqlite_db_test.cpp:"), std::string::npos) << what;
    EXPECT_NE(what.find("syntax error"), std::string::npos) << what;
  }
  try {
    MPSIM_SQLITE_CHECK(
        db, sqlite3_exec(db.handle(), "SELECT * FROM missing", nullptr, nullptr, nullptr));
    FAIL() << "expected an error";
  } catch (const SqliteError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sqlite3_exec(db.handle(), \"SELECT * FROM missing\""), std::string::npos)
        << what;
    EXPECT_NE(what.find("no such table: missing"), std::string::npos) << what;
  }
}

TEST_F(SqliteDbTest, OpeningAMissingFolderFailsAtTheCallersLine) {
  try {
    SqliteDb db(path("no/such/dir/x.sqlite"), kCreate);
    FAIL() << "expected an error";
  } catch (const SqliteError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sqlite3_open_v2("), std::string::npos) << what;
    EXPECT_NE(what.find("(sqlite_db_test.cpp:"), std::string::npos) << what;
  }
}

TEST_F(SqliteDbTest, AnErrorThrowerChoosesTheExceptionType) {
  SqliteDb db(path("own.sqlite"), kCreate, &throw_own);
  EXPECT_THROW(db.exec("NOT SQL"), OwnError);
  EXPECT_THROW(SqliteStatement(db, "SELECT * FROM missing"), OwnError);
  EXPECT_THROW(SqliteDb(path("no/such/dir/x.sqlite"), kCreate, &throw_own), OwnError);
}

TEST_F(SqliteDbTest, AStatementStaysUsableAfterAFailedStep) {
  SqliteDb db(path("unique.sqlite"), kCreate);
  db.exec("CREATE TABLE t(x INTEGER PRIMARY KEY)");
  SqliteStatement insert(db, "INSERT INTO t VALUES (?)");
  insert.run(1);
  EXPECT_THROW(insert.run(1), SqliteError);  // UNIQUE constraint
  insert.run(2);
  db.exec("BEGIN");
  insert.run(3);
  db.rollback();
  SqliteStatement count(db, "SELECT count(*) FROM t");
  int64_t rows = 0;
  ASSERT_TRUE(count.next());
  count.columns(rows);
  EXPECT_EQ(rows, 2);
}

TEST_F(SqliteDbTest, ClosingWithALiveStatementFailsAndTheDestructorStillCleansUp) {
  auto db = std::make_unique<SqliteDb>(path("busy.sqlite"), kCreate);
  {
    SqliteStatement live(*db, "SELECT 1");
    EXPECT_THROW(db->close(), SqliteError);  // SQLITE_BUSY: unfinalized statement
  }
  db.reset();  // sqlite3_close_v2: no abort, no throw
  SUCCEED();
}

}  // namespace
}  // namespace mpsim::common
