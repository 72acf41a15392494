#ifndef DISTILL_COMMON_STUDENT_RUNTIME_DEVICE_H_
#define DISTILL_COMMON_STUDENT_RUNTIME_DEVICE_H_

// Where a student computes, as users write it in a run spec, a job spec or the inference config:
//   ""        the GPU when this host has one, else the CPU
//   "cpu"
//   "cuda"    a GPU chosen by the caller (a trainer rank r takes GPU r; inference takes GPU 0)
//   "cuda:N"  GPU N
// Parsing is separate from resolving: a spec can be checked anywhere (the coordinator has no GPU), while
// whether the GPU exists is only known on the host that computes.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "torch/types.h"

namespace distill::student {

struct DeviceRequest {
  enum class Kind { kAuto, kCpu, kCuda };
  Kind kind = Kind::kAuto;
  int index = -1;  // kCuda with an explicit ":N"; -1 = not given
};

// Parses `text`; INVALID_ARGUMENT naming `field` for anything but the forms above
// ("training.distributed.device: must be \"cpu\", \"cuda\" or \"cuda:N\", got \"gpu\"").
absl::StatusOr<DeviceRequest> ParseDeviceRequest(std::string_view text, std::string_view field);

// CUDA GPUs this process can use: 0 on a build without CUDA, a host without a GPU or without a driver.
// Never throws; the first call initialises CUDA when there is a GPU.
int CudaDeviceCount();

// Resolves a request on this host, with `gpu_for_cuda` the GPU a plain "cuda" means here (a trainer's rank).
// FAILED_PRECONDITION naming `field` and what was found when the GPU is not there:
//   "training.distributed.device: \"cuda:1\" asks for GPU 1, but this host has 1 CUDA GPU (cuda:0)"
//   "inference model device: \"cuda\" asks for a GPU, but this host has none (no CUDA device visible)"
absl::StatusOr<torch::Device> ResolveDevice(const DeviceRequest& request, int gpu_for_cuda,
                                            std::string_view field);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_RUNTIME_DEVICE_H_
