#ifndef DISTILL_SERVICES_TRAINER_TRAINING_BATCHING_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_BATCHING_H_

// Which records each rank trains on at each step.
//
// Every rank holds the whole (encoded) training set and computes the same plan, so no data moves between
// ranks. An epoch is laid out from the seed alone:
//   1. shuffle all records (seed, epoch);
//   2. cut the shuffled order into chunks of `sort_chunk_batches` global batches and sort each chunk by
//      length (EncodedRecord::tokens()), so records of similar length share batches and padding is low;
//   3. cut the chunks into global batches of batch_size × grad_accumulation_steps × world_size records
//      (only the epoch's last one may be smaller) and shuffle the order of the batches.
// A global batch, sorted by length, is dealt into grad_accumulation_steps × world_size contiguous
// micro-batches of (nearly) equal size; micro-batch a·world_size + r is rank r's a-th. The global batches
// depend only on the records, the seed and the global batch size — not on how it is factored — so one rank
// with batch 8 and two ranks with batch 4 train on exactly the same records at every step.
//
// The position in the data is (epoch, batch index within the epoch); a checkpoint stores it and the plan
// recomputes the rest. Thread-compatible.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace distill::trainer {

// A small deterministic generator (SplitMix64) whose sequence is fixed by its seed on every platform, unlike
// std::shuffle's. Used for the holdout split and the batch plan.
class DeterministicRng {
 public:
  explicit DeterministicRng(uint64_t seed) : state_(seed) {}
  // Seeded from several values (e.g. seed, epoch), mixed so that nearby inputs give unrelated streams.
  DeterministicRng(uint64_t a, uint64_t b);

  uint64_t Next();
  // Uniform in [0, n), n > 0, without modulo bias.
  uint64_t Uniform(uint64_t n);
  // Fisher–Yates.
  template <typename T>
  void Shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Uniform(i)]);
  }

 private:
  uint64_t state_;
};

// Where the next step's global batch comes from.
struct DataPosition {
  int64_t epoch = 0;  // 0-based
  int64_t batch = 0;  // global batch index within the epoch, in [0, steps_per_epoch)
  bool operator==(const DataPosition&) const = default;
};

struct BatchPlanOptions {
  int batch_size = 1;               // micro-batch per rank, >= 1
  int grad_accumulation_steps = 1;  // >= 1
  int world_size = 1;               // >= 1
  uint64_t seed = 0;
  int sort_chunk_batches = 32;  // global batches per length-sorted chunk, >= 1
};

class BatchPlan {
 public:
  // `lengths[i]`: tokens of record i. INVALID_ARGUMENT for no records or bad options.
  static absl::StatusOr<BatchPlan> Create(std::vector<int64_t> lengths, const BatchPlanOptions& options);

  int64_t num_records() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t global_batch_size() const { return global_batch_; }
  // Global batches (optimizer steps) per epoch: ceil(records / global batch).
  int64_t steps_per_epoch() const;

  // The records of the global batch at `position`, ascending by length.
  const std::vector<int64_t>& GlobalBatch(const DataPosition& position) const;
  // Rank `rank`'s grad_accumulation_steps micro-batches at `position` (record indices; a micro-batch of a
  // short last batch may be empty).
  std::vector<std::vector<int64_t>> RankMicroBatches(const DataPosition& position, int rank) const;

  // The position after `position`.
  DataPosition Next(const DataPosition& position) const;
  // Passes over the data completed at `position` (fractional).
  double EpochProgress(const DataPosition& position) const;

 private:
  BatchPlan(std::vector<int64_t> lengths, const BatchPlanOptions& options);
  void LayOut(int64_t epoch) const;

  std::vector<int64_t> lengths_;
  BatchPlanOptions options_;
  int64_t global_batch_ = 1;
  // The batches of epoch `cached_epoch_`.
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<std::vector<int64_t>> batches_;
};

// Optimizer steps of a run: the smaller of max_steps and ceil(max_epochs × steps_per_epoch) among the
// limits that are > 0; at least 1.
int64_t TotalSteps(int64_t max_steps, double max_epochs, int64_t steps_per_epoch);

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_BATCHING_H_
