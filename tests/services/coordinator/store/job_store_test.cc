// JobStore on a real SQLite file: create / get / save / find by request id, conflicts, paging newest
// first with a state filter, the unfinished jobs a restart resumes, and everything surviving a reopen.

#include "services/coordinator/store/job_store.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace distill::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Job MakeJob(const std::string& id, v1::JobState state = v1::JOB_STATE_QUEUED) {
  v1::Job job;
  job.set_job_id(id);
  job.set_client_request_id("req-" + id);
  job.set_state(state);
  job.mutable_spec()->set_name("arith-demo");
  job.mutable_spec()->mutable_dataset()->set_uri("synthetic:arith?count=20");
  job.mutable_create_time()->set_seconds(1'700'000'000);
  return job;
}

std::vector<std::string> Ids(const std::vector<v1::Job>& jobs) {
  std::vector<std::string> ids;
  for (const v1::Job& job : jobs) ids.push_back(job.job_id());
  return ids;
}

bool Same(const v1::Job& a, const v1::Job& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "job_store_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    path_ = dir_ + "/state/jobs.db";
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<JobStore> Open() {
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobStoreTest, CreateThenGetReturnsTheWholeJob) {
  const v1::Job job = MakeJob("job-1");
  ASSERT_TRUE(store_->Create(job).ok());
  EXPECT_TRUE(std::filesystem::exists(path_));
  absl::StatusOr<v1::Job> got = store_->Get("job-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(Same(*got, job)) << got->DebugString();
}

TEST_F(JobStoreTest, GetOfAnUnknownIdIsNotFoundNamingIt) {
  absl::StatusOr<v1::Job> got = store_->Get("job-missing");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(got.status().message(), HasSubstr("job-missing"));
}

TEST_F(JobStoreTest, SaveReplacesTheStoredJob) {
  v1::Job job = MakeJob("job-1");
  ASSERT_TRUE(store_->Create(job).ok());
  job.set_state(v1::JOB_STATE_RUNNING);
  job.set_current_stage(v1::STAGE_TEACH);
  job.mutable_start_time()->set_seconds(1'700'000'100);
  ASSERT_TRUE(store_->Save(job).ok());
  absl::StatusOr<v1::Job> got = store_->Get("job-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(Same(*got, job)) << got->DebugString();
  // Saving the same content again is still a success (no rows "changed" is not "not found").
  EXPECT_TRUE(store_->Save(job).ok());
}

TEST_F(JobStoreTest, SaveOfAnUnknownJobIsNotFound) {
  ASSERT_TRUE(store_->Create(MakeJob("job-1")).ok());
  const absl::Status status = store_->Save(MakeJob("job-2"));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(status.message(), HasSubstr("job-2"));
  EXPECT_EQ(store_->Get("job-2").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, DuplicateJobIdOrRequestIdIsAlreadyExists) {
  ASSERT_TRUE(store_->Create(MakeJob("job-1")).ok());

  v1::Job same_id = MakeJob("job-1");
  same_id.set_client_request_id("another-request");
  absl::Status status = store_->Create(same_id);
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
  EXPECT_THAT(status.message(), HasSubstr("job-1"));

  v1::Job same_request = MakeJob("job-2");
  same_request.set_client_request_id("req-job-1");
  status = store_->Create(same_request);
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
  EXPECT_THAT(status.message(), HasSubstr("req-job-1"));

  // Neither conflicting job was stored, and the original is untouched.
  EXPECT_EQ(store_->Get("job-2").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<v1::Job> original = store_->Get("job-1");
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(original->client_request_id(), "req-job-1");
}

TEST_F(JobStoreTest, FindByRequestId) {
  ASSERT_TRUE(store_->Create(MakeJob("job-1")).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-2")).ok());
  absl::StatusOr<std::optional<v1::Job>> found = store_->FindByRequestId("req-job-2");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->job_id(), "job-2");

  found = store_->FindByRequestId("req-unknown");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
}

TEST_F(JobStoreTest, ListPagesNewestFirst) {
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(store_->Create(MakeJob("job-" + std::to_string(i))).ok());

  absl::StatusOr<JobStore::Page> page = store_->List(v1::JOB_STATE_UNSPECIFIED, 2, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->jobs), ElementsAre("job-5", "job-4"));
  ASSERT_NE(page->next_seq, 0);

  page = store_->List(v1::JOB_STATE_UNSPECIFIED, 2, page->next_seq);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->jobs), ElementsAre("job-3", "job-2"));
  ASSERT_NE(page->next_seq, 0);

  page = store_->List(v1::JOB_STATE_UNSPECIFIED, 2, page->next_seq);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->jobs), ElementsAre("job-1"));
  EXPECT_EQ(page->next_seq, 0);
}

TEST_F(JobStoreTest, AnExactlyFullLastPageHasNoNext) {
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(store_->Create(MakeJob("job-" + std::to_string(i))).ok());
  absl::StatusOr<JobStore::Page> page = store_->List(v1::JOB_STATE_UNSPECIFIED, 4, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->jobs), ElementsAre("job-4", "job-3", "job-2", "job-1"));
  EXPECT_EQ(page->next_seq, 0);
}

TEST_F(JobStoreTest, ListFiltersByState) {
  ASSERT_TRUE(store_->Create(MakeJob("job-1", v1::JOB_STATE_SUCCEEDED)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-2", v1::JOB_STATE_RUNNING)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-3", v1::JOB_STATE_SUCCEEDED)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-4", v1::JOB_STATE_QUEUED)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-5", v1::JOB_STATE_SUCCEEDED)).ok());
  // The filter follows Save.
  v1::Job job4 = MakeJob("job-4", v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(store_->Save(job4).ok());

  absl::StatusOr<JobStore::Page> page = store_->List(v1::JOB_STATE_SUCCEEDED, 3, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->jobs), ElementsAre("job-5", "job-4", "job-3"));
  ASSERT_NE(page->next_seq, 0);
  page = store_->List(v1::JOB_STATE_SUCCEEDED, 3, page->next_seq);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->jobs), ElementsAre("job-1"));
  EXPECT_EQ(page->next_seq, 0);

  page = store_->List(v1::JOB_STATE_RUNNING, 10, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->jobs), ElementsAre("job-2"));
  page = store_->List(v1::JOB_STATE_FAILED, 10, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->jobs.empty());
  EXPECT_EQ(page->next_seq, 0);
}

TEST_F(JobStoreTest, UnfinishedIsEveryNonTerminalJobOldestFirst) {
  ASSERT_TRUE(store_->Create(MakeJob("job-1", v1::JOB_STATE_RUNNING)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-2", v1::JOB_STATE_SUCCEEDED)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-3", v1::JOB_STATE_QUEUED)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-4", v1::JOB_STATE_FAILED)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-5", v1::JOB_STATE_CANCELLING)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-6", v1::JOB_STATE_CANCELLED)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-7", v1::JOB_STATE_QUEUED)).ok());
  ASSERT_TRUE(store_->Save(MakeJob("job-7", v1::JOB_STATE_SUCCEEDED)).ok());

  absl::StatusOr<std::vector<v1::Job>> unfinished = store_->Unfinished();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  EXPECT_THAT(Ids(*unfinished), ElementsAre("job-1", "job-3", "job-5"));
}

TEST_F(JobStoreTest, EverythingSurvivesReopeningTheFile) {
  v1::Job running = MakeJob("job-1", v1::JOB_STATE_RUNNING);
  running.set_current_stage(v1::STAGE_TRAIN);
  ASSERT_TRUE(store_->Create(MakeJob("job-1")).ok());
  ASSERT_TRUE(store_->Save(running).ok());
  ASSERT_TRUE(store_->Create(MakeJob("job-2", v1::JOB_STATE_SUCCEEDED)).ok());
  store_.reset();

  std::unique_ptr<JobStore> reopened = Open();
  ASSERT_NE(reopened, nullptr);
  absl::StatusOr<v1::Job> got = reopened->Get("job-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(Same(*got, running)) << got->DebugString();
  absl::StatusOr<std::optional<v1::Job>> found = reopened->FindByRequestId("req-job-2");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->state(), v1::JOB_STATE_SUCCEEDED);
  absl::StatusOr<std::vector<v1::Job>> unfinished = reopened->Unfinished();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  EXPECT_THAT(Ids(*unfinished), ElementsAre("job-1"));

  // Uniqueness and creation order carry over too: a new job sorts after the old ones.
  EXPECT_EQ(reopened->Create(MakeJob("job-2")).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(reopened->Create(MakeJob("job-3")).ok());
  absl::StatusOr<JobStore::Page> page = reopened->List(v1::JOB_STATE_UNSPECIFIED, 10, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->jobs), ElementsAre("job-3", "job-2", "job-1"));
}

TEST_F(JobStoreTest, OpeningAFileThatIsNotADatabaseFails) {
  store_.reset();
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  const std::string bogus = dir_ + "/bogus.db";
  {
    std::FILE* f = std::fopen(bogus.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    for (int i = 0; i < 100; ++i) std::fputs("definitely not sqlite\n", f);
    std::fclose(f);
  }
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(bogus);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
}

}  // namespace
}  // namespace distill::coordinator
