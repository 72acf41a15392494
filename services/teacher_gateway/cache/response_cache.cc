#include "services/teacher_gateway/cache/response_cache.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/sqlite/sqlite.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"

namespace distill::teacher {
namespace {

constexpr char kMemoryPath[] = ":memory:";

// Schema version 1. Rows are never updated or deleted; `key` is the content address (CacheKey).
constexpr char kCreateSchema[] = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE completions (
  key TEXT PRIMARY KEY NOT NULL,
  backend TEXT NOT NULL,
  model TEXT NOT NULL,
  completion TEXT NOT NULL,
  answer_completion TEXT NOT NULL,
  finish_reason INTEGER NOT NULL,
  logprobs_json TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  created_unix_nanos INTEGER NOT NULL
);
CREATE INDEX completions_by_model ON completions (backend, model, completion_tokens);
)sql";

constexpr char kSelectSql[] =
    "SELECT backend, model, completion, answer_completion, finish_reason, logprobs_json, prompt_tokens, "
    "completion_tokens, created_unix_nanos FROM completions WHERE key = ?1";
constexpr char kInsertSql[] =
    "INSERT OR IGNORE INTO completions (key, backend, model, completion, answer_completion, finish_reason, "
    "logprobs_json, prompt_tokens, completion_tokens, created_unix_nanos) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr char kMeanSql[] =
    "SELECT AVG(completion_tokens), COUNT(*) FROM completions WHERE backend = ?1 AND model = ?2";

// How long the writer waits before retrying a failed commit.
constexpr absl::Duration kCommitRetryDelay = absl::Milliseconds(100);

std::string_view ColumnText(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return {};
  return std::string_view(text, static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

}  // namespace

// One SQLite connection with its prepared statements. Not thread-safe by itself: callers hold `mu`
// (SQLite is opened in multi-thread mode, so it does no locking of its own).
class ResponseCache::Connection {
 public:
  ~Connection() {
    for (sqlite3_stmt* stmt : {select_, insert_, mean_, begin_, begin_immediate_, commit_, rollback_}) {
      sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db_);
  }

  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path,
                                                          const ResponseCacheOptions& options) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &db,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    // Owns `db` from here on, even when opening failed (SQLite still allocates a handle then).
    std::unique_ptr<Connection> connection(new Connection(path, db));
    if (rc != SQLITE_OK) return connection->Error(rc, "cannot open");
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
    return connection;
  }

  // Runs `sql` (any number of statements, no results).
  absl::Status Exec(const char* sql, std::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return Error(rc, what);
    return absl::OkStatus();
  }

  absl::Status Prepare(const char* sql, sqlite3_stmt** stmt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr);
    if (rc != SQLITE_OK) return Error(rc, strings::Cat("cannot prepare `", sql, "`"));
    return absl::OkStatus();
  }

  // Prepares the statements every connection uses; `writer` adds the ones that write.
  absl::Status PrepareAll(bool writer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    RETURN_IF_ERROR(Prepare(kSelectSql, &select_));
    RETURN_IF_ERROR(Prepare(kMeanSql, &mean_));
    RETURN_IF_ERROR(Prepare("BEGIN", &begin_));
    RETURN_IF_ERROR(Prepare("COMMIT", &commit_));
    RETURN_IF_ERROR(Prepare("ROLLBACK", &rollback_));
    if (writer) {
      RETURN_IF_ERROR(Prepare(kInsertSql, &insert_));
      RETURN_IF_ERROR(Prepare("BEGIN IMMEDIATE", &begin_immediate_));
    }
    return absl::OkStatus();
  }

  // Runs a prepared statement that returns no rows.
  absl::Status Step(sqlite3_stmt* stmt, std::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Error(rc, what);
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<CachedCompletion>> Lookup(const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    sqlite3_bind_text(select_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    const int rc = sqlite3_step(select_);
    std::optional<CachedCompletion> found;
    if (rc == SQLITE_ROW) {
      CachedCompletion& value = found.emplace();
      value.backend = ColumnText(select_, 0);
      value.model = ColumnText(select_, 1);
      value.completion = ColumnText(select_, 2);
      value.answer_completion = ColumnText(select_, 3);
      value.finish_reason = sqlite3_column_int(select_, 4);
      value.logprobs_json = ColumnText(select_, 5);
      value.prompt_tokens = sqlite3_column_int64(select_, 6);
      value.completion_tokens = sqlite3_column_int64(select_, 7);
      value.created = absl::FromUnixNanos(sqlite3_column_int64(select_, 8));
    }
    sqlite3_reset(select_);
    sqlite3_clear_bindings(select_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error(rc, "cannot read an entry");
    return found;
  }

  absl::Status Insert(const std::string& key, const CachedCompletion& value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto bind_text = [this](int index, const std::string& text) {
      sqlite3_bind_text(insert_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    };
    bind_text(1, key);
    bind_text(2, value.backend);
    bind_text(3, value.model);
    bind_text(4, value.completion);
    bind_text(5, value.answer_completion);
    sqlite3_bind_int(insert_, 6, value.finish_reason);
    bind_text(7, value.logprobs_json);
    sqlite3_bind_int64(insert_, 8, value.prompt_tokens);
    sqlite3_bind_int64(insert_, 9, value.completion_tokens);
    sqlite3_bind_int64(insert_, 10, absl::ToUnixNanos(value.created));
    const int rc = sqlite3_step(insert_);
    sqlite3_reset(insert_);
    sqlite3_clear_bindings(insert_);
    if (rc != SQLITE_DONE) return Error(rc, "cannot insert an entry");
    return absl::OkStatus();
  }

  // Writes `batch` in one write transaction; all or nothing.
  absl::Status WriteBatch(const Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    RETURN_IF_ERROR(Step(begin_immediate_, "cannot begin a write transaction"));
    absl::Status status;
    for (const auto& [key, value] : batch) {
      status = Insert(key, value);
      if (!status.ok()) break;
    }
    if (status.ok()) status = Step(commit_, "cannot commit");
    if (!status.ok() && !sqlite3_get_autocommit(db_)) Step(rollback_, "rollback").IgnoreError();
    return status;
  }

  absl::StatusOr<std::vector<std::optional<CachedCompletion>>> LookupMany(
      const std::vector<std::string>& keys) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    // One read transaction: one snapshot, and one WAL lock round trip instead of one per key.
    RETURN_IF_ERROR(Step(begin_, "cannot begin a read transaction"));
    std::vector<std::optional<CachedCompletion>> found;
    found.reserve(keys.size());
    absl::Status status;
    for (const std::string& key : keys) {
      absl::StatusOr<std::optional<CachedCompletion>> one = Lookup(key);
      if (!one.ok()) {
        status = one.status();
        break;
      }
      found.push_back(*std::move(one));
    }
    if (status.ok()) status = Step(commit_, "cannot end a read transaction");
    if (!status.ok()) {
      if (!sqlite3_get_autocommit(db_)) Step(rollback_, "rollback").IgnoreError();
      return status;
    }
    return found;
  }

  absl::StatusOr<std::pair<double, int64_t>> Mean(const std::string& backend, const std::string& model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    sqlite3_bind_text(mean_, 1, backend.data(), static_cast<int>(backend.size()), SQLITE_STATIC);
    sqlite3_bind_text(mean_, 2, model.data(), static_cast<int>(model.size()), SQLITE_STATIC);
    const int rc = sqlite3_step(mean_);
    std::pair<double, int64_t> result{0, 0};
    if (rc == SQLITE_ROW) result = {sqlite3_column_double(mean_, 0), sqlite3_column_int64(mean_, 1)};
    sqlite3_reset(mean_);
    sqlite3_clear_bindings(mean_);
    if (rc != SQLITE_ROW) return Error(rc, "cannot compute the mean completion length");
    return result;
  }

  // Creates the schema in an empty file, or checks that the file holds this build's schema.
  absl::Status EnsureSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "cannot lock the file to check its schema"));
    absl::Status status = EnsureSchemaInTransaction();
    if (status.ok()) status = Exec("COMMIT", "cannot commit the schema");
    if (!status.ok() && !sqlite3_get_autocommit(db_)) Exec("ROLLBACK", "rollback").IgnoreError();
    return status;
  }

  // An error status naming the file, with SQLite's own message.
  absl::Status Error(int rc, std::string_view what) const {
    const char* message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    std::string hint;
    if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT) {
      hint = "; the file is not a SQLite database or is damaged: move it aside or point cache_path elsewhere";
    }
    return absl::Status(sqlite::CodeFor(rc), strings::Cat("response cache ", path_, ": ", what, ": ", message,
                                                  " (sqlite error ", rc, ")", hint));
  }

  absl::Mutex mu;

 private:
  Connection(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  absl::Status EnsureSchemaInTransaction() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    sqlite3_stmt* tables = nullptr;
    RETURN_IF_ERROR(Prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", &tables));
    std::vector<std::string> names;
    int rc;
    while ((rc = sqlite3_step(tables)) == SQLITE_ROW) names.emplace_back(ColumnText(tables, 0));
    sqlite3_finalize(tables);
    if (rc != SQLITE_DONE) return Error(rc, "cannot read the schema");

    if (names.empty()) {
      RETURN_IF_ERROR(Exec(kCreateSchema, "cannot create the schema"));
      return Exec(strings::Cat("INSERT INTO schema_version (version) VALUES (", kSchemaVersion, ")").c_str(),
                  "cannot record the schema version");
    }
    if (std::find(names.begin(), names.end(), "schema_version") == names.end()) {
      return absl::FailedPreconditionError(strings::Cat(
          "response cache ", path_, ": not a distill response cache (it holds tables ",
          absl::StrJoin(names, ", "), " but no schema_version); point cache_path at a new file"));
    }
    sqlite3_stmt* version = nullptr;
    RETURN_IF_ERROR(Prepare("SELECT version FROM schema_version", &version));
    std::vector<int64_t> versions;
    while ((rc = sqlite3_step(version)) == SQLITE_ROW) versions.push_back(sqlite3_column_int64(version, 0));
    sqlite3_finalize(version);
    if (rc != SQLITE_DONE) return Error(rc, "cannot read the schema version");
    if (versions.size() != 1 || versions[0] != kSchemaVersion) {
      return absl::FailedPreconditionError(
          strings::Cat("response cache ", path_, ": schema version ",
                       versions.size() == 1 ? strings::Cat(versions[0])
                                            : strings::Cat("unknown (", versions.size(), " rows)"),
                       ", but this build reads version ", kSchemaVersion,
                       "; point cache_path at a new file, or use a build that matches"));
    }
    return absl::OkStatus();
  }

  const std::string path_;
  sqlite3* const db_;
  sqlite3_stmt* select_ ABSL_GUARDED_BY(mu) = nullptr;
  sqlite3_stmt* insert_ ABSL_GUARDED_BY(mu) = nullptr;
  sqlite3_stmt* mean_ ABSL_GUARDED_BY(mu) = nullptr;
  sqlite3_stmt* begin_ ABSL_GUARDED_BY(mu) = nullptr;
  sqlite3_stmt* begin_immediate_ ABSL_GUARDED_BY(mu) = nullptr;
  sqlite3_stmt* commit_ ABSL_GUARDED_BY(mu) = nullptr;
  sqlite3_stmt* rollback_ ABSL_GUARDED_BY(mu) = nullptr;
};

absl::StatusOr<std::unique_ptr<ResponseCache>> ResponseCache::Open(const std::string& path,
                                                                   const ResponseCacheOptions& options) {
  if (path.empty())
    return absl::InvalidArgumentError("response cache: path is empty (use :memory: for no file)");
  if (sqlite3_threadsafe() == 0) {
    return absl::InternalError("response cache: the SQLite library was built without thread support");
  }
  const bool in_memory = path == kMemoryPath;
  if (!in_memory) {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    std::error_code error;
    if (!parent.empty() && !std::filesystem::is_directory(parent, error)) {
      std::filesystem::create_directories(parent, error);
      if (error) {
        return absl::FailedPreconditionError(strings::Cat(
            "response cache ", path, ": cannot create directory ", parent.string(), ": ", error.message()));
      }
    }
  }

  ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer, Connection::Open(path, options));
  {
    absl::MutexLock lock(&writer->mu);
    if (!in_memory) {
      // The first statement that reads the file: a corrupt or foreign file fails here.
      RETURN_IF_ERROR(writer->Exec("PRAGMA journal_mode = WAL", "cannot switch to WAL mode"));
      RETURN_IF_ERROR(writer->Exec("PRAGMA synchronous = NORMAL", "cannot set synchronous = NORMAL"));
    }
    RETURN_IF_ERROR(writer->EnsureSchema());
    RETURN_IF_ERROR(writer->PrepareAll(/*writer=*/true));
  }

  std::unique_ptr<Connection> reader;
  if (!in_memory) {
    ASSIGN_OR_RETURN(reader, Connection::Open(path, options));
    absl::MutexLock lock(&reader->mu);
    RETURN_IF_ERROR(reader->Exec("PRAGMA query_only = ON", "cannot make the read connection read-only"));
    RETURN_IF_ERROR(reader->PrepareAll(/*writer=*/false));
  }
  return std::unique_ptr<ResponseCache>(
      new ResponseCache(path, options, std::move(writer), std::move(reader)));
}

ResponseCache::ResponseCache(std::string path, const ResponseCacheOptions& options,
                             std::unique_ptr<Connection> writer, std::unique_ptr<Connection> reader)
    : path_(std::move(path)), options_(options), writer_(std::move(writer)), reader_(std::move(reader)) {
  writer_thread_ = std::thread([this] { WriterLoop(); });
}

ResponseCache::~ResponseCache() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_thread_.join();
  // Best effort: a failure here has nobody left to report to, and costs only re-requests later.
  Flush().IgnoreError();
}

ResponseCache::Connection& ResponseCache::ReadConnection() {
  return reader_ != nullptr ? *reader_ : *writer_;
}

void ResponseCache::WriterLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ResponseCache* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->pending_.empty();
          },
          this));
      if (stopping_) return;  // the destructor flushes
      // Let a batch build up, unless it is already full.
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](ResponseCache* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
                                 return self->stopping_ ||
                                        self->pending_.size() >= self->options_.max_batch_rows;
                               },
                               this),
                           options_.commit_interval);
      if (stopping_) return;
    }
    if (!CommitPending().ok()) {
      // The entries went back into the queue; try again shortly (Put reports the error meanwhile if
      // the queue fills up).
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), kCommitRetryDelay);
    }
  }
}

absl::Status ResponseCache::CommitPending() {
  absl::MutexLock commit_lock(&commit_mu_);
  std::shared_ptr<const Batch> batch;
  {
    absl::MutexLock lock(&mu_);
    if (pending_.empty()) return absl::OkStatus();
    batch = std::make_shared<const Batch>(std::move(pending_));
    pending_.clear();
    committing_ = batch;
  }
  absl::Status status;
  {
    absl::MutexLock lock(&writer_->mu);
    status = writer_->WriteBatch(*batch);
  }
  absl::MutexLock lock(&mu_);
  committing_.reset();
  if (status.ok()) {
    last_commit_error_ = absl::OkStatus();
  } else {
    // Back into the queue, not lost. Put skips keys that are committing, so none of these keys can
    // have been queued again meanwhile.
    pending_.insert(batch->begin(), batch->end());
    last_commit_error_ = status;
  }
  return status;
}

std::optional<CachedCompletion> ResponseCache::FindQueued(const std::string& key) const {
  std::shared_ptr<const Batch> committing;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = pending_.find(key); it != pending_.end()) return it->second;
    committing = committing_;
  }
  if (committing != nullptr) {
    if (auto it = committing->find(key); it != committing->end()) return it->second;
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<CachedCompletion>> ResponseCache::Get(const std::string& key) {
  // Queue first, then the file: an entry leaves the queue only after its commit, so it is always in
  // one of the two. The file still wins when both have the key, because the first Put is the one kept.
  std::optional<CachedCompletion> queued = FindQueued(key);
  Connection& connection = ReadConnection();
  absl::MutexLock lock(&connection.mu);
  ASSIGN_OR_RETURN(std::optional<CachedCompletion> stored, connection.Lookup(key));
  if (stored.has_value()) return stored;
  return queued;
}

absl::StatusOr<std::vector<std::optional<CachedCompletion>>> ResponseCache::GetMany(
    const std::vector<std::string>& keys) {
  std::vector<std::optional<CachedCompletion>> queued;
  queued.reserve(keys.size());
  for (const std::string& key : keys) queued.push_back(FindQueued(key));
  Connection& connection = ReadConnection();
  absl::MutexLock lock(&connection.mu);
  ASSIGN_OR_RETURN(std::vector<std::optional<CachedCompletion>> stored, connection.LookupMany(keys));
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!stored[i].has_value()) stored[i] = std::move(queued[i]);
  }
  return stored;
}

absl::Status ResponseCache::Put(const std::string& key, const CachedCompletion& value) {
  if (key.empty())
    return absl::InvalidArgumentError(strings::Cat("response cache ", path_, ": Put: key is empty"));
  absl::MutexLock lock(&mu_);
  // Entries being committed count too: while commits fail they are not going anywhere.
  auto queued = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pending_.size() + (committing_ != nullptr ? committing_->size() : 0);
  };
  auto has_room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queued() < options_.max_pending_rows; };
  if (!has_room()) {
    mu_.AwaitWithTimeout(absl::Condition(&has_room), options_.max_put_wait);
    if (!has_room()) {
      return absl::ResourceExhaustedError(strings::Cat(
          "response cache ", path_, ": ", queued(), " entries waiting to be written for more than ",
          absl::FormatDuration(options_.max_put_wait),
          last_commit_error_.ok() ? std::string()
                                  : strings::Cat("; last commit failed: ", last_commit_error_.message())));
    }
  }
  if (committing_ != nullptr && committing_->contains(key)) return absl::OkStatus();
  pending_.emplace(key, value);  // keeps an earlier queued entry for the same key
  return absl::OkStatus();
}

absl::Status ResponseCache::Flush() { return CommitPending(); }

absl::StatusOr<double> ResponseCache::MeanCompletionTokens(const std::string& backend,
                                                           const std::string& model) {
  RETURN_IF_ERROR(Flush());
  Connection& connection = ReadConnection();
  absl::MutexLock lock(&connection.mu);
  ASSIGN_OR_RETURN(auto mean_and_count, connection.Mean(backend, model));
  if (mean_and_count.second == 0) {
    return absl::NotFoundError(strings::Cat("response cache ", path_, ": no entries for backend \"", backend,
                                            "\" model \"", model, "\""));
  }
  return mean_and_count.first;
}

size_t ResponseCache::PendingCount() const {
  absl::MutexLock lock(&mu_);
  return pending_.size() + (committing_ != nullptr ? committing_->size() : 0);
}

}  // namespace distill::teacher
