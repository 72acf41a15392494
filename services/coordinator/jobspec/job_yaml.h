#ifndef DISTILL_SERVICES_COORDINATOR_JOBSPEC_JOB_YAML_H_
#define DISTILL_SERVICES_COORDINATOR_JOBSPEC_JOB_YAML_H_

// The YAML job file, read into a distill.v1.JobSpec. The file's keys are JobSpec's field names, nested
// the same way, and enum values may be written without their prefix in lower case:
//
//   name: arith-demo
//   task: {name: arith, type: numeric}
//   dataset: {uri: data/train.jsonl, split: {random: {seed: 7, test_fraction: 0.1}}}
//   student: {checkpoint: ./flan-t5-small}   # an ArtifactRef may be written as its uri
//   training: {objective: step_by_step, alpha: 0.5}
//
// See common/config/proto_yaml.h for the mapping rules. Only syntax and types are checked here; what
// the values mean (required fields, ranges, a known backend) is validated by the coordinator when the
// job is submitted, so that every client gets the same answer.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/config/proto_yaml.h"
#include "distill/v1/jobs.pb.h"

namespace distill::jobs {

// Parses a job file's text; `file_name` stands for the file in messages. INVALID_ARGUMENT listing every
// problem, one per line, as "<file_name>:<line>: <key.path>: <message>" (YAML syntax errors as
// "<file_name>:<line>:<column>: invalid YAML: ..."). Relative paths are left as written.
absl::StatusOr<v1::JobSpec> ParseJobSpecYaml(std::string_view text, std::string_view file_name);

// Reads and parses the job file at `path` (messages name it as given), then ResolveJobPaths against the
// file's directory, so that paths in the file are relative to it rather than to the working directory.
// NOT_FOUND (or PERMISSION_DENIED) naming the path when it cannot be read; else as ParseJobSpecYaml.
absl::StatusOr<v1::JobSpec> LoadJobSpecFile(const std::string& path);

// Makes the local paths a job names absolute against `base_dir` (itself made absolute against the
// working directory when relative): dataset.uri, dataset.split.given.test_uri, student.checkpoint.uri
// and student.tokenizer.uri, for the coordinator, which runs elsewhere and has no notion of the
// client's working directory. Leaves empty values, absolute paths and URIs with a scheme
// ("artifact://", "file://", "synthetic:", "https://", any RFC 3986 "scheme:") as they are; does not
// touch the file system. `spec` must not be null.
void ResolveJobPaths(v1::JobSpec* spec, const std::string& base_dir);

// The lower-case short name of an enum value ("step_by_step" for OBJECTIVE_STEP_BY_STEP), as job files
// write it, for messages and tables; and the same for a generated enum's value:
// ShortName(v1::OBJECTIVE_STEP_BY_STEP) == "step_by_step".
using config::EnumShortName;
using config::ShortName;

}  // namespace distill::jobs

#endif  // DISTILL_SERVICES_COORDINATOR_JOBSPEC_JOB_YAML_H_
