#ifndef DISTILL_SERVICES_COORDINATOR_PIPELINE_PIPELINE_H_
#define DISTILL_SERVICES_COORDINATOR_PIPELINE_PIPELINE_H_

// The distillation pipeline a job runs, stage by stage, through the other services:
//
//   LOAD_DATASET  read + split the dataset      → artifact://jobs/<id>/data/{train,validation,test}.jsonl
//   TEACH         teacher gateway stream         → jobs/<id>/teach/samples.jsonl (appended as samples arrive)
//   CURATE        curator CurateDataset per (record format, label source) the students need
//                                                → jobs/<id>/curate/<format>-<label source>/records.jsonl
//   TRAIN         trainer StartRun per student (client_request_id "<job id>/<student>", output under
//                 jobs/<id>/train/<student>/), polled with GetRun while it trains
//   EVALUATE      inference LoadModel + Predict on every test example, one student at a time
//   DEPLOY        the gate, then LoadModel(deploy.model_name, version = job id)
//
// Every change is saved (JobExecution::Update) before the next step, and every stage can be re-entered
// after a coordinator crash: LOAD_DATASET and EVALUATE simply run again; TEACH reads back the samples it
// already wrote and sends only the examples without a terminal result (the gateway's cache answers a
// prompt sent twice without paying for it again); CURATE reuses finished datasets (manifest.json written);
// TRAIN starts each run again with the same client_request_id and output directory, so the trainer either
// returns the run it already has or resumes it from its last checkpoint; DEPLOY's LoadModel of the same
// version and artifact is idempotent.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "distill/v1/curator.grpc.pb.h"
#include "distill/v1/inference.grpc.pb.h"
#include "distill/v1/jobs.pb.h"
#include "distill/v1/teacher.grpc.pb.h"
#include "distill/v1/trainer.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "services/coordinator/pipeline/job_execution.h"

namespace distill::coordinator {

// Stubs of the services a job calls. Thread-safe (gRPC stubs are).
struct ServiceClients {
  std::unique_ptr<v1::TeacherGateway::StubInterface> teacher;
  std::unique_ptr<v1::Curator::StubInterface> curator;
  std::unique_ptr<v1::Trainer::StubInterface> trainer;
  std::unique_ptr<v1::Inference::StubInterface> inference;
  // Sent as "authorization: Bearer <token>" when not empty.
  std::string token;
  // Deadline of short unary calls (GetRun, LoadModel, Predict, ...).
  absl::Duration rpc_timeout = absl::Seconds(60);

  // Adds the token and, when `timeout` is finite, a deadline.
  void Prepare(grpc::ClientContext* context, absl::Duration timeout) const;
};

struct PipelineEnv {
  const ServiceClients* clients = nullptr;
  // Local directory behind artifact:// URIs (the same volume the other services use).
  std::string artifact_root;
  // The primary student's test accuracy recorded for the job `job_id`, when the coordinator knows it: the
  // deploy gate compares against the version being served, whose version is the job id that deployed it.
  std::function<std::optional<double>(const std::string& job_id)> recorded_accuracy;
  // How often TRAIN asks the trainer for progress.
  absl::Duration poll_interval = absl::Milliseconds(500);
  // Longest a stage keeps retrying a service that is down before failing the job.
  absl::Duration unavailable_patience = absl::Minutes(10);
};

// A new job: QUEUED, with all six stages PENDING.
v1::Job NewJob(const std::string& job_id, const std::string& client_request_id, const v1::JobSpec& spec,
               absl::Time now);

// Runs or resumes `exec`'s job until it is terminal, or until it is stopped for shutdown (then it stays
// RUNNING in the store, to be resumed). A job found CANCELLING is finished as CANCELLED.
void RunPipeline(JobExecution& exec, const PipelineEnv& env);

// The record format a student with `objective` trains on.
v1::OutputFormat FormatForObjective(v1::Objective objective);

// One student of a job: "primary" or a baseline, with everything that decides its data and training.
struct StudentPlan {
  std::string name;
  v1::Objective objective = v1::OBJECTIVE_UNSPECIFIED;
  std::optional<double> alpha;
  v1::LabelSource label_source = v1::LABEL_SOURCE_UNSPECIFIED;
  v1::OutputFormat format = v1::OUTPUT_FORMAT_UNSPECIFIED;
};
// Primary first, then the baselines in spec order.
std::vector<StudentPlan> PlanStudents(const v1::JobSpec& spec);
// Whether any student needs teacher samples (a label source other than GOLD_ONLY).
bool NeedsTeacher(const v1::JobSpec& spec);

}  // namespace distill::coordinator

#endif  // DISTILL_SERVICES_COORDINATOR_PIPELINE_PIPELINE_H_
