// sqlite::Database and sqlite::Statement on real files: creation of the file and its directory, typed
// round trips (text, blobs with NUL bytes, 64-bit integers, NULL), statement reuse, and errors that name
// the file with the right code.

#include "common/sqlite/sqlite.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace distill::sqlite {
namespace {

using ::testing::HasSubstr;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "sqlite_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(SqliteTest, OpenCreatesTheFileAndItsDirectory) {
  const std::string path = dir_ + "/nested/deeper/jobs.db";
  ASSERT_FALSE(std::filesystem::exists(dir_));
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_TRUE(std::filesystem::is_regular_file(path));
  EXPECT_EQ((*db)->path(), path);
  // WAL mode, as promised.
  absl::StatusOr<Statement> mode = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok()) << mode.status();
  absl::StatusOr<bool> row = mode->Step();
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(*row);
  EXPECT_EQ(mode->ColumnText(0), "wal");
}

TEST_F(SqliteTest, RoundTripsTextBlobsWithNulBytesAndInt64) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(dir_ + "/t.db");
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB, n INTEGER, z TEXT)").ok());

  const std::string text = "h\xC3\xA9llo, \"world\" 'quoted'";
  const std::string blob("a\0b\0\xff\x00z", 7);
  ASSERT_EQ(blob.size(), 7u);
  const int64_t big = std::numeric_limits<int64_t>::max() - 1;
  const int64_t negative = std::numeric_limits<int64_t>::min();

  absl::StatusOr<Statement> put = (*db)->Prepare("INSERT INTO t (k, v, n) VALUES (?1, ?2, ?3)");
  ASSERT_TRUE(put.ok()) << put.status();
  put->BindText(1, text).BindBlob(2, blob).BindInt(3, big);
  ASSERT_TRUE(put->Run().ok());
  // Run resets the statement, so it runs again with new binds.
  put->BindText(1, "second").BindBlob(2, "").BindInt(3, negative);
  ASSERT_TRUE(put->Run().ok());

  absl::StatusOr<Statement> get = (*db)->Prepare("SELECT k, v, n, z FROM t ORDER BY n DESC");
  ASSERT_TRUE(get.ok()) << get.status();
  absl::StatusOr<bool> row = get->Step();
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(*row);
  EXPECT_EQ(get->ColumnText(0), text);
  EXPECT_EQ(get->ColumnBlob(1), blob);
  EXPECT_EQ(get->ColumnInt(2), big);
  EXPECT_TRUE(get->ColumnIsNull(3));
  EXPECT_FALSE(get->ColumnIsNull(0));
  EXPECT_EQ(get->ColumnText(3), "");

  row = get->Step();
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(*row);
  EXPECT_EQ(get->ColumnText(0), "second");
  EXPECT_EQ(get->ColumnBlob(1), "");
  EXPECT_EQ(get->ColumnInt(2), negative);

  row = get->Step();
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_FALSE(*row);
}

TEST_F(SqliteTest, TextWithAnEmbeddedNulKeepsAllItsBytes) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(dir_ + "/t.db");
  ASSERT_TRUE(db.ok()) << db.status();
  absl::StatusOr<Statement> select = (*db)->Prepare("SELECT ?1");
  ASSERT_TRUE(select.ok()) << select.status();
  const std::string text("ab\0cd", 5);
  select->BindText(1, text);
  absl::StatusOr<bool> row = select->Step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(select->ColumnText(0), text);
}

TEST_F(SqliteTest, ResetRewindsAndClearsBindings) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(dir_ + "/t.db");
  ASSERT_TRUE(db.ok()) << db.status();
  absl::StatusOr<Statement> select = (*db)->Prepare("SELECT ?1");
  ASSERT_TRUE(select.ok()) << select.status();
  select->BindInt(1, 42);
  ASSERT_TRUE(*select->Step());
  EXPECT_EQ(select->ColumnInt(0), 42);
  select->Reset();
  ASSERT_TRUE(*select->Step());
  EXPECT_TRUE(select->ColumnIsNull(0));
}

TEST_F(SqliteTest, DataSurvivesReopening) {
  const std::string path = dir_ + "/t.db";
  {
    absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(
        (*db)->Exec("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (7); INSERT INTO t VALUES (8)").ok());
  }
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  absl::StatusOr<Statement> sum = (*db)->Prepare("SELECT SUM(v) FROM t");
  ASSERT_TRUE(sum.ok()) << sum.status();
  ASSERT_TRUE(*sum->Step());
  EXPECT_EQ(sum->ColumnInt(0), 15);
}

TEST_F(SqliteTest, SyntaxErrorsNameTheFileAndTheStatement) {
  const std::string path = dir_ + "/t.db";
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();

  const absl::Status exec = (*db)->Exec("SELEC 1");
  EXPECT_FALSE(exec.ok());
  EXPECT_THAT(exec.message(), HasSubstr(path + ": "));
  EXPECT_THAT(exec.message(), HasSubstr("SELEC 1"));
  EXPECT_THAT(exec.message(), HasSubstr("syntax error"));

  absl::StatusOr<Statement> prepare = (*db)->Prepare("SELECT * FROM no_such_table");
  ASSERT_FALSE(prepare.ok());
  EXPECT_THAT(prepare.status().message(), HasSubstr(path + ": cannot prepare `SELECT * FROM no_such_table`"));
  EXPECT_THAT(prepare.status().message(), HasSubstr("no such table"));
}

TEST_F(SqliteTest, AConstraintViolationInStepIsAnErrorAndTheStatementIsReusable) {
  const std::string path = dir_ + "/t.db";
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t (k TEXT PRIMARY KEY)").ok());
  absl::StatusOr<Statement> put = (*db)->Prepare("INSERT INTO t VALUES (?1)");
  ASSERT_TRUE(put.ok()) << put.status();
  put->BindText(1, "a");
  ASSERT_TRUE(put->Run().ok());
  put->BindText(1, "a");
  const absl::Status duplicate = put->Run();
  EXPECT_FALSE(duplicate.ok());
  EXPECT_THAT(duplicate.message(), HasSubstr(path + ": `INSERT INTO t VALUES (?1)`"));
  EXPECT_THAT(duplicate.message(), HasSubstr("UNIQUE constraint failed"));
  put->BindText(1, "b");
  EXPECT_TRUE(put->Run().ok());
}

TEST_F(SqliteTest, AFileThatIsNotADatabaseIsFailedPrecondition) {
  std::filesystem::create_directories(dir_);
  const std::string path = dir_ + "/notes.txt";
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 200; ++i) out << "this is a plain text file, not a SQLite database\n";
  }
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition) << db.status();
  EXPECT_THAT(db.status().message(), HasSubstr(path));
  EXPECT_THAT(db.status().message(), HasSubstr("not a SQLite database"));
}

TEST_F(SqliteTest, ADirectoryInTheWayOfTheParentIsFailedPrecondition) {
  std::filesystem::create_directories(dir_);
  {
    std::ofstream out(dir_ + "/file");
    out << "x";
  }
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(dir_ + "/file/sub/t.db");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition) << db.status();
  EXPECT_THAT(db.status().message(), HasSubstr(dir_ + "/file/sub/t.db: cannot create directory"));
}

}  // namespace
}  // namespace distill::sqlite
