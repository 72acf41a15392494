#include "services/trainer/training/collective.h"

#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#include "c10/util/Exception.h"
#include "common/strings/strings.h"
#include "torch/csrc/distributed/c10d/ProcessGroupGloo.hpp"
#include "torch/csrc/distributed/c10d/TCPStore.hpp"
#include "torch/torch.h"
#if defined(DISTILL_WITH_CUDA) && DISTILL_WITH_CUDA
#include "torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp"
#endif

namespace distill::trainer {
namespace {

class SingleRank final : public Collective {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  absl::Status AllReduceSum(std::vector<torch::Tensor>&) override { return absl::OkStatus(); }
  absl::Status Broadcast(std::vector<torch::Tensor>&, int) override { return absl::OkStatus(); }
  absl::Status Barrier() override { return absl::OkStatus(); }
  absl::StatusOr<std::string> ShareBytes(const std::string&, std::string bytes, int) override {
    return bytes;
  }
};

// Runs `body`, turning what libtorch and Gloo throw into UNAVAILABLE naming `what`.
template <typename F>
absl::Status Guard(int rank, std::string_view what, F&& body) {
  try {
    body();
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::UnavailableError(
        strings::Cat("rank ", rank, ": ", what, " failed: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::UnavailableError(strings::Cat("rank ", rank, ": ", what, " failed: ", e.what()));
  }
}

class ProcessGroupCollective final : public Collective {
 public:
  ProcessGroupCollective(int rank, int world_size, c10::intrusive_ptr<c10d::Store> store,
                         c10::intrusive_ptr<c10d::Backend> group)
      : rank_(rank), world_size_(world_size), store_(std::move(store)), group_(std::move(group)) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }

  absl::Status AllReduceSum(std::vector<torch::Tensor>& tensors) override {
    return Guard(rank_, "all-reduce", [&] {
      std::vector<c10::intrusive_ptr<c10d::Work>> pending;
      for (torch::Tensor& t : tensors) {
        std::vector<torch::Tensor> one{t};
        pending.push_back(group_->allreduce(one));
      }
      for (auto& work : pending) work->wait();
    });
  }

  absl::Status Broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    return Guard(rank_, "broadcast", [&] {
      c10d::BroadcastOptions options;
      options.rootRank = root;
      std::vector<c10::intrusive_ptr<c10d::Work>> pending;
      for (torch::Tensor& t : tensors) {
        std::vector<torch::Tensor> one{t};
        pending.push_back(group_->broadcast(one, options));
      }
      for (auto& work : pending) work->wait();
    });
  }

  absl::Status Barrier() override {
    return Guard(rank_, "barrier", [&] { group_->barrier()->wait(); });
  }

  absl::StatusOr<std::string> ShareBytes(const std::string& key, std::string bytes, int root) override {
    std::string out;
    absl::Status status = Guard(rank_, strings::Cat("sharing \"", key, "\""), [&] {
      const std::string store_key = strings::Cat("distill/share/", key);
      if (rank_ == root) {
        store_->set(store_key, std::vector<uint8_t>(bytes.begin(), bytes.end()));
        out = std::move(bytes);
      } else {
        const std::vector<uint8_t> value = store_->get(store_key);
        out.assign(value.begin(), value.end());
      }
    });
    if (!status.ok()) return status;
    return out;
  }

 private:
  const int rank_;
  const int world_size_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> group_;
};

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

std::unique_ptr<Collective> SingleRankCollective() { return std::make_unique<SingleRank>(); }

absl::StatusOr<std::unique_ptr<Collective>> Rendezvous(const RendezvousOptions& options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        strings::Cat("rank ", options.rank, " is not in [0, world_size ", options.world_size, ")"));
  }
  if (options.world_size == 1 && !options.nccl) return SingleRankCollective();
#if !(defined(DISTILL_WITH_CUDA) && DISTILL_WITH_CUDA)
  if (options.nccl) {
    return absl::FailedPreconditionError("NCCL needs a CUDA build (CMake option DISTILL_WITH_CUDA)");
  }
#endif
  if (options.master_port <= 0 || options.master_port > 65535) {
    return absl::InvalidArgumentError(
        strings::Cat("master port: must be in [1, 65535], got ", options.master_port));
  }
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> group;
  absl::Status status =
      Guard(options.rank, strings::Cat("rendezvous at ", options.master_addr, ":", options.master_port), [&] {
        c10d::TCPStoreOptions store_options;
        store_options.port = static_cast<uint16_t>(options.master_port);
        store_options.isServer = options.rank == 0;
        store_options.numWorkers = static_cast<size_t>(options.world_size);
        store_options.waitWorkers = false;
        store_options.timeout = options.timeout;
        store = c10::make_intrusive<c10d::TCPStore>(options.master_addr, store_options);
        store->setTimeout(options.timeout);
#if defined(DISTILL_WITH_CUDA) && DISTILL_WITH_CUDA
        if (options.nccl) {
          auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
          nccl_options->timeout = options.timeout;
          group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, options.rank, options.world_size,
                                                              nccl_options);
          return;
        }
#endif
        auto gloo_options = c10d::ProcessGroupGloo::Options::create(options.timeout);
        // Loopback (one machine) binds the loopback interface; otherwise GLOO_SOCKET_IFNAME, or the interface
        // of this host's name, as torch.distributed does.
        const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
        if (ifname != nullptr && *ifname != '\0') {
          gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        } else if (IsLoopback(options.master_addr)) {
          gloo_options->devices.push_back(
              c10d::ProcessGroupGloo::createDeviceForHostname(options.master_addr));
        } else {
          gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        }
        group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, options.rank, options.world_size,
                                                            gloo_options);
      });
  if (!status.ok()) return status;
  return std::unique_ptr<Collective>(
      new ProcessGroupCollective(options.rank, options.world_size, std::move(store), std::move(group)));
}

GradientReducer::GradientReducer(std::vector<torch::Tensor> parameters, int64_t bucket_bytes)
    : parameters_(std::move(parameters)) {
  int64_t filled = 0;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const int64_t bytes = parameters_[i].numel() * static_cast<int64_t>(parameters_[i].element_size());
    if (buckets_.empty() || (filled > 0 && filled + bytes > bucket_bytes)) {
      buckets_.emplace_back();
      filled = 0;
    }
    buckets_.back().push_back(i);
    filled += bytes;
  }
}

absl::Status GradientReducer::AllReduce(Collective& collective) {
  if (collective.world_size() == 1) return absl::OkStatus();
  std::vector<torch::Tensor> flats;
  try {
    torch::NoGradGuard no_grad;
    for (const auto& bucket : buckets_) {
      std::vector<torch::Tensor> pieces;
      for (size_t i : bucket) {
        torch::Tensor& p = parameters_[i];
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        pieces.push_back(p.grad().reshape({-1}));
      }
      flats.push_back(torch::cat(pieces));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(strings::Cat("flattening gradients: ", e.what_without_backtrace()));
  }
  absl::Status reduced = collective.AllReduceSum(flats);
  if (!reduced.ok()) return reduced;
  try {
    torch::NoGradGuard no_grad;
    for (size_t b = 0; b < buckets_.size(); ++b) {
      int64_t offset = 0;
      for (size_t i : buckets_[b]) {
        torch::Tensor grad = parameters_[i].grad();
        const int64_t n = grad.numel();
        grad.copy_(flats[b].narrow(0, offset, n).view_as(grad));
        offset += n;
      }
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(strings::Cat("unflattening gradients: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace distill::trainer
