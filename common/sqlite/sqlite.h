#ifndef DISTILL_COMMON_SQLITE_SQLITE_H_
#define DISTILL_COMMON_SQLITE_SQLITE_H_

// A thin RAII layer over SQLite for distill's small databases (the coordinator's job store): one
// connection, prepared statements with typed binds and columns, errors as absl::Status that name the
// file and carry SQLite's own message.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Database> db, sqlite::Database::Open(path));
//   RETURN_IF_ERROR(db->Exec("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB)"));
//   ASSIGN_OR_RETURN(sqlite::Statement put, db->Prepare("INSERT INTO t VALUES (?1, ?2)"));
//   put.BindText(1, "key").BindBlob(2, bytes);
//   RETURN_IF_ERROR(put.Run());
//
// Not thread-safe: callers serialise use of a Database and its statements.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct sqlite3;
struct sqlite3_stmt;

namespace distill::sqlite {

class Database;

// The status code for a SQLite result code: UNAVAILABLE when busy or locked (retry), RESOURCE_EXHAUSTED when
// the disk is full, FAILED_PRECONDITION for a file that cannot be opened, written or read as a database,
// INTERNAL otherwise.
absl::StatusCode CodeFor(int rc);

// A prepared statement. Binds are 1-based, columns 0-based (SQLite's own numbering).
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  Statement& BindText(int index, std::string_view text);
  Statement& BindBlob(int index, std::string_view bytes);
  Statement& BindInt(int index, int64_t value);

  // Advances to the next row: true with a row to read, false when done. An error resets the statement.
  absl::StatusOr<bool> Step();
  // Steps until done (a statement that returns no rows), then resets it for reuse.
  absl::Status Run();
  // Clears the bindings and rewinds, so the statement can run again.
  void Reset();

  std::string ColumnText(int column) const;
  std::string ColumnBlob(int column) const;
  int64_t ColumnInt(int column) const;
  bool ColumnIsNull(int column) const;

 private:
  friend class Database;
  Statement(const Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  const Database* db_;
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  // Opens (creating it and its parent directory when missing) a database file in WAL mode with
  // synchronous=NORMAL: a committed transaction survives the process being killed (SIGKILL) at any point.
  // FAILED_PRECONDITION when the file is not a database or cannot be opened.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                        absl::Duration busy_timeout = absl::Seconds(5));
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements that return no rows.
  absl::Status Exec(std::string_view sql);
  absl::StatusOr<Statement> Prepare(std::string_view sql);

  const std::string& path() const { return path_; }

  // An error for SQLite result code `rc` while doing `what`: "<path>: <what>: <sqlite message> (sqlite
  // error N)", with a code that says whether to retry (UNAVAILABLE for a busy database).
  absl::Status Error(int rc, std::string_view what) const;

 private:
  Database(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  const std::string path_;
  sqlite3* db_;
};

}  // namespace distill::sqlite

#endif  // DISTILL_COMMON_SQLITE_SQLITE_H_
