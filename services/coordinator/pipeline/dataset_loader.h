#ifndef DISTILL_SERVICES_COORDINATOR_PIPELINE_DATASET_LOADER_H_
#define DISTILL_SERVICES_COORDINATOR_PIPELINE_DATASET_LOADER_H_

// LOAD_DATASET's work: read a job's dataset (JSON lines or CSV with the columns its spec names, or the
// built-in synthetic arithmetic task), build Examples, and split them into train / validation / test.
//
// Besides files, `uri` may name the synthetic task the built-in teacher solves, for offline demos:
//   synthetic:arith?count=2000&seed=1&min_ops=1&max_ops=2
// (count required; seed default 1; operation counts default 1-2; see
// services/teacher_gateway/synthetic/arith_problems.h).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "distill/v1/jobs.pb.h"

namespace distill::coordinator {

struct SplitDataset {
  std::vector<v1::Example> train;       // validation examples removed
  std::vector<v1::Example> validation;  // empty when validation_fraction is 0
  std::vector<v1::Example> test;
  int64_t rows_read = 0;                // rows of every file read
};

// Reads and splits. Every problem names the field ("dataset.split.random.test_fraction: …") or the file and
// line ("train.csv:17: gold: expected a string or number"); a malformed row fails the whole load, since a
// silently skipped row would change the experiment.
absl::StatusOr<SplitDataset> LoadDataset(const v1::DatasetSource& source, const std::string& artifact_root);

}  // namespace distill::coordinator

#endif  // DISTILL_SERVICES_COORDINATOR_PIPELINE_DATASET_LOADER_H_
