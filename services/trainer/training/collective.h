#ifndef DISTILL_SERVICES_TRAINER_TRAINING_COLLECTIVE_H_
#define DISTILL_SERVICES_TRAINER_TRAINING_COLLECTIVE_H_

// The collectives a data-parallel worker needs, over torch c10d: a TCPStore rendezvous (rank 0 serves it at
// the master address and port, every rank connects) and a process group (Gloo on CPU; NCCL in CUDA builds).
// With one rank everything is a no-op and no socket is opened.
//
// Failures (a peer that died, a timeout) come back as UNAVAILABLE naming the operation; a rank whose peer
// crashed fails its next collective instead of hanging (Gloo notices the closed connection; otherwise the
// timeout applies).
//
// Thread-compatible: one thread drives a rank's collectives, in the same order on every rank.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/types.h"

namespace distill::trainer {

class Collective {
 public:
  virtual ~Collective() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // Replaces every tensor, on every rank, by its sum over the ranks. Tensors must be contiguous, of the
  // same shapes and dtypes on every rank, on the process group's device.
  virtual absl::Status AllReduceSum(std::vector<torch::Tensor>& tensors) = 0;
  // Replaces every tensor by rank `root`'s.
  virtual absl::Status Broadcast(std::vector<torch::Tensor>& tensors, int root) = 0;
  // Returns when every rank has called it.
  virtual absl::Status Barrier() = 0;
  // Rank `root` publishes `bytes` under `key` (through the TCPStore); every rank returns them. Each key
  // may be shared once per rendezvous.
  virtual absl::StatusOr<std::string> ShareBytes(const std::string& key, std::string bytes, int root) = 0;
};

// One rank alone: every collective returns at once.
std::unique_ptr<Collective> SingleRankCollective();

struct RendezvousOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // rank 0 listens on it; must be > 0 for world_size > 1
  int rank = 0;
  int world_size = 1;
  bool nccl = false;  // NCCL instead of Gloo (CUDA builds only)
  // How long the rendezvous and each collective may wait for the other ranks (an evaluation on rank 0 is
  // the longest wait: keep this above its duration).
  std::chrono::milliseconds timeout = std::chrono::minutes(30);
};

// Connects `options.world_size` ranks (SingleRankCollective for 1). UNAVAILABLE when the rendezvous fails
// (the port is taken, a peer never came); FAILED_PRECONDITION for NCCL in a build without CUDA.
absl::StatusOr<std::unique_ptr<Collective>> Rendezvous(const RendezvousOptions& options);

// Sums gradients across ranks in buckets: each bucket flattens about `bucket_bytes` of consecutive
// parameters' gradients into one buffer, all buckets are all-reduced concurrently, and the sums are
// copied back. Parameters without a gradient count as zeros (a rank with no records in a step still
// takes part). Nothing happens with one rank.
class GradientReducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = 25 << 20;

  GradientReducer(std::vector<torch::Tensor> parameters, int64_t bucket_bytes = kDefaultBucketBytes);

  absl::Status AllReduce(Collective& collective);
  int num_buckets() const { return static_cast<int>(buckets_.size()); }

 private:
  std::vector<torch::Tensor> parameters_;
  std::vector<std::vector<size_t>> buckets_;  // indices into parameters_
};

}  // namespace distill::trainer

#endif  // DISTILL_SERVICES_TRAINER_TRAINING_COLLECTIVE_H_
