#ifndef DISTILL_SERVICES_COORDINATOR_STORE_JOB_STORE_H_
#define DISTILL_SERVICES_COORDINATOR_STORE_JOB_STORE_H_

// The coordinator's durable state: every job, as its whole distill.v1.Job message, in one SQLite table.
// The coordinator saves a job after every change (stage transition, progress, artifact written), so after a
// crash it restarts from exactly what was last saved; a save is one transaction, atomic even under SIGKILL.
//
//   jobs(seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- creation order: ListJobs pages by it, newest first
//        job_id TEXT UNIQUE, client_request_id TEXT UNIQUE, state INTEGER, job BLOB)

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/sqlite/sqlite.h"
#include "distill/v1/jobs.pb.h"

namespace distill::coordinator {

// Thread-safe.
class JobStore {
 public:
  // Opens or creates the database at `path` (its directory too).
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);

  // Adds a new job. ALREADY_EXISTS when its job_id or client_request_id is taken.
  absl::Status Create(const v1::Job& job);
  // Replaces a job's stored state. NOT_FOUND when it was never created.
  absl::Status Save(const v1::Job& job);
  // NOT_FOUND naming the id.
  absl::StatusOr<v1::Job> Get(const std::string& job_id);
  // The job created with `client_request_id`, if any.
  absl::StatusOr<std::optional<v1::Job>> FindByRequestId(const std::string& client_request_id);

  struct Page {
    std::vector<v1::Job> jobs;  // newest first
    int64_t next_seq = 0;       // where the next page starts (exclusive); 0 = this was the last page
  };
  // Jobs created before `before_seq` (0 = the newest), in state `state` (UNSPECIFIED = any).
  absl::StatusOr<Page> List(v1::JobState state, int page_size, int64_t before_seq);
  // Jobs that have not reached a terminal state, oldest first: what a restarted coordinator resumes.
  absl::StatusOr<std::vector<v1::Job>> Unfinished();
  // How many jobs the store holds in each state (states without jobs are absent).
  absl::StatusOr<std::map<v1::JobState, int64_t>> CountByState();

 private:
  explicit JobStore(std::unique_ptr<sqlite::Database> db) : db_(std::move(db)) {}
  absl::StatusOr<v1::Job> Decode(const sqlite::Statement& row, int column) const;

  absl::Mutex mu_;
  std::unique_ptr<sqlite::Database> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace distill::coordinator

#endif  // DISTILL_SERVICES_COORDINATOR_STORE_JOB_STORE_H_
