#include "services/trainer/training/batching.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "common/strings/strings.h"

namespace distill::trainer {
namespace {

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

DeterministicRng::DeterministicRng(uint64_t a, uint64_t b)
    : state_(Mix(Mix(a) ^ (b * 0x9e3779b97f4a7c15ULL + 1))) {}

uint64_t DeterministicRng::Next() {
  state_ += 0x9e3779b97f4a7c15ULL;
  return Mix(state_);
}

uint64_t DeterministicRng::Uniform(uint64_t n) {
  // Rejects the top partial range so every value is equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return x % n;
}

absl::StatusOr<BatchPlan> BatchPlan::Create(std::vector<int64_t> lengths, const BatchPlanOptions& options) {
  if (lengths.empty()) return absl::InvalidArgumentError("batch plan: no records");
  if (options.batch_size < 1 || options.grad_accumulation_steps < 1 || options.world_size < 1 ||
      options.sort_chunk_batches < 1) {
    return absl::InvalidArgumentError(
        strings::Cat("batch plan: bad options (batch_size ", options.batch_size, ", grad_accumulation_steps ",
                     options.grad_accumulation_steps, ", world_size ", options.world_size, ")"));
  }
  return BatchPlan(std::move(lengths), options);
}

BatchPlan::BatchPlan(std::vector<int64_t> lengths, const BatchPlanOptions& options)
    : lengths_(std::move(lengths)),
      options_(options),
      global_batch_(int64_t{options.batch_size} * options.grad_accumulation_steps * options.world_size) {}

int64_t BatchPlan::steps_per_epoch() const { return (num_records() + global_batch_ - 1) / global_batch_; }

void BatchPlan::LayOut(int64_t epoch) const {
  if (cached_epoch_ == epoch) return;
  DeterministicRng rng(options_.seed, static_cast<uint64_t>(epoch));
  std::vector<int64_t> order(lengths_.size());
  std::iota(order.begin(), order.end(), 0);
  rng.Shuffle(order);
  const size_t chunk = static_cast<size_t>(global_batch_) * options_.sort_chunk_batches;
  for (size_t begin = 0; begin < order.size(); begin += chunk) {
    const auto first = order.begin() + begin;
    const auto last = order.begin() + std::min(order.size(), begin + chunk);
    std::stable_sort(first, last, [&](int64_t a, int64_t b) { return lengths_[a] < lengths_[b]; });
  }
  batches_.clear();
  for (size_t begin = 0; begin < order.size(); begin += global_batch_) {
    batches_.emplace_back(order.begin() + begin,
                          order.begin() + std::min(order.size(), begin + static_cast<size_t>(global_batch_)));
  }
  rng.Shuffle(batches_);
  cached_epoch_ = epoch;
}

const std::vector<int64_t>& BatchPlan::GlobalBatch(const DataPosition& position) const {
  LayOut(position.epoch);
  return batches_.at(static_cast<size_t>(position.batch));
}

std::vector<std::vector<int64_t>> BatchPlan::RankMicroBatches(const DataPosition& position, int rank) const {
  const std::vector<int64_t>& batch = GlobalBatch(position);
  const int64_t slots = int64_t{options_.grad_accumulation_steps} * options_.world_size;
  const int64_t n = static_cast<int64_t>(batch.size());
  const int64_t base = n / slots, extra = n % slots;
  auto begin_of = [&](int64_t slot) { return slot * base + std::min(slot, extra); };
  std::vector<std::vector<int64_t>> out;
  for (int a = 0; a < options_.grad_accumulation_steps; ++a) {
    const int64_t slot = int64_t{a} * options_.world_size + rank;
    out.emplace_back(batch.begin() + begin_of(slot), batch.begin() + begin_of(slot + 1));
  }
  return out;
}

DataPosition BatchPlan::Next(const DataPosition& position) const {
  DataPosition next = position;
  if (++next.batch >= steps_per_epoch()) {
    next.batch = 0;
    ++next.epoch;
  }
  return next;
}

double BatchPlan::EpochProgress(const DataPosition& position) const {
  return static_cast<double>(position.epoch) + static_cast<double>(position.batch) / steps_per_epoch();
}

int64_t TotalSteps(int64_t max_steps, double max_epochs, int64_t steps_per_epoch) {
  int64_t total = 0;
  if (max_steps > 0) total = max_steps;
  if (max_epochs > 0) {
    const int64_t by_epochs =
        static_cast<int64_t>(std::ceil(max_epochs * static_cast<double>(steps_per_epoch) - 1e-9));
    total = total > 0 ? std::min(total, by_epochs) : by_epochs;
  }
  return std::max<int64_t>(total, 1);
}

}  // namespace distill::trainer
