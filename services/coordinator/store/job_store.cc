#include "services/coordinator/store/job_store.h"

#include <utility>

#include "common/status/macros.h"
#include "common/strings/strings.h"

namespace distill::coordinator {
namespace {

constexpr char kSchema[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id TEXT NOT NULL UNIQUE,"
    "  client_request_id TEXT NOT NULL UNIQUE,"
    "  state INTEGER NOT NULL,"
    "  job BLOB NOT NULL)";

std::string Encode(const v1::Job& job) {
  std::string bytes;
  job.SerializeToString(&bytes);
  return bytes;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Database> db, sqlite::Database::Open(path));
  RETURN_IF_ERROR(db->Exec(kSchema));
  return std::unique_ptr<JobStore>(new JobStore(std::move(db)));
}

absl::StatusOr<v1::Job> JobStore::Decode(const sqlite::Statement& row, int column) const {
  v1::Job job;
  if (!job.ParseFromString(row.ColumnBlob(column))) {
    return absl::DataLossError(strings::Cat(db_->path(), ": a stored job cannot be decoded"));
  }
  return job;
}

absl::Status JobStore::Create(const v1::Job& job) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(sqlite::Statement taken,
                   db_->Prepare("SELECT job_id FROM jobs WHERE job_id = ?1 OR client_request_id = ?2"));
  taken.BindText(1, job.job_id()).BindText(2, job.client_request_id());
  ASSIGN_OR_RETURN(bool exists, taken.Step());
  if (exists) {
    return absl::AlreadyExistsError(strings::Cat("job ", taken.ColumnText(0), " already has job_id \"",
                                                 job.job_id(), "\" or client_request_id \"",
                                                 job.client_request_id(), "\""));
  }
  ASSIGN_OR_RETURN(sqlite::Statement insert,
                   db_->Prepare("INSERT INTO jobs (job_id, client_request_id, state, job) VALUES (?1, ?2, ?3, ?4)"));
  insert.BindText(1, job.job_id()).BindText(2, job.client_request_id()).BindInt(3, job.state());
  insert.BindBlob(4, Encode(job));
  return insert.Run();
}

absl::Status JobStore::Save(const v1::Job& job) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(sqlite::Statement update, db_->Prepare("UPDATE jobs SET state = ?2, job = ?3 WHERE job_id = ?1"));
  update.BindText(1, job.job_id()).BindInt(2, job.state()).BindBlob(3, Encode(job));
  RETURN_IF_ERROR(update.Run());
  ASSIGN_OR_RETURN(sqlite::Statement changes, db_->Prepare("SELECT changes()"));
  ASSIGN_OR_RETURN(bool row, changes.Step());
  if (!row || changes.ColumnInt(0) == 0) return absl::NotFoundError(strings::Cat("job ", job.job_id(), " not found"));
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobStore::Get(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(sqlite::Statement select, db_->Prepare("SELECT job FROM jobs WHERE job_id = ?1"));
  select.BindText(1, job_id);
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (!row) return absl::NotFoundError(strings::Cat("job_id: no job \"", job_id, "\""));
  return Decode(select, 0);
}

absl::StatusOr<std::optional<v1::Job>> JobStore::FindByRequestId(const std::string& client_request_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(sqlite::Statement select, db_->Prepare("SELECT job FROM jobs WHERE client_request_id = ?1"));
  select.BindText(1, client_request_id);
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (!row) return std::optional<v1::Job>();
  ASSIGN_OR_RETURN(v1::Job job, Decode(select, 0));
  return std::optional<v1::Job>(std::move(job));
}

absl::StatusOr<JobStore::Page> JobStore::List(v1::JobState state, int page_size, int64_t before_seq) {
  absl::MutexLock lock(&mu_);
  // One row more than asked tells whether another page follows.
  ASSIGN_OR_RETURN(sqlite::Statement select,
                   db_->Prepare("SELECT seq, job FROM jobs WHERE (?1 = 0 OR seq < ?1) AND (?2 = 0 OR state = ?2) "
                                "ORDER BY seq DESC LIMIT ?3"));
  select.BindInt(1, before_seq).BindInt(2, state).BindInt(3, page_size + 1);
  Page page;
  int64_t last_seq = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    if (static_cast<int>(page.jobs.size()) == page_size) {
      page.next_seq = last_seq;
      break;
    }
    last_seq = select.ColumnInt(0);
    ASSIGN_OR_RETURN(v1::Job job, Decode(select, 1));
    page.jobs.push_back(std::move(job));
  }
  return page;
}

absl::StatusOr<std::vector<v1::Job>> JobStore::Unfinished() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(sqlite::Statement select,
                   db_->Prepare("SELECT job FROM jobs WHERE state NOT IN (?1, ?2, ?3) ORDER BY seq ASC"));
  select.BindInt(1, v1::JOB_STATE_SUCCEEDED).BindInt(2, v1::JOB_STATE_FAILED).BindInt(3, v1::JOB_STATE_CANCELLED);
  std::vector<v1::Job> jobs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(v1::Job job, Decode(select, 0));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

absl::StatusOr<std::map<v1::JobState, int64_t>> JobStore::CountByState() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(sqlite::Statement select, db_->Prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state"));
  std::map<v1::JobState, int64_t> counts;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    counts[static_cast<v1::JobState>(select.ColumnInt(0))] = select.ColumnInt(1);
  }
  return counts;
}

}  // namespace distill::coordinator
