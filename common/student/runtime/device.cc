#include "common/student/runtime/device.h"

#include <exception>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "c10/util/Exception.h"
#include "torch/cuda.h"

namespace distill::student {

absl::StatusOr<DeviceRequest> ParseDeviceRequest(std::string_view text, std::string_view field) {
  DeviceRequest request;
  if (text.empty()) return request;
  if (text == "cpu") {
    request.kind = DeviceRequest::Kind::kCpu;
    return request;
  }
  constexpr std::string_view kCuda = "cuda";
  if (text.substr(0, kCuda.size()) == kCuda) {
    const std::string_view rest = text.substr(kCuda.size());
    request.kind = DeviceRequest::Kind::kCuda;
    if (rest.empty()) return request;
    int index = -1;
    if (rest[0] == ':' && rest.size() > 1 && rest.size() <= 4 &&
        rest.substr(1).find_first_not_of("0123456789") == std::string_view::npos &&
        absl::SimpleAtoi(absl::string_view(rest.data() + 1, rest.size() - 1), &index)) {
      request.index = index;
      return request;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(absl::string_view(field.data(), field.size()),
                                                 ": must be \"cpu\", \"cuda\" or \"cuda:N\", got \"",
                                                 absl::string_view(text.data(), text.size()), "\""));
}

int CudaDeviceCount() {
  try {
    return static_cast<int>(torch::cuda::device_count());
  } catch (const std::exception&) {
    return 0;
  }
}

absl::StatusOr<torch::Device> ResolveDevice(const DeviceRequest& request, int gpu_for_cuda,
                                            std::string_view field) {
  const absl::string_view name(field.data(), field.size());
  if (request.kind == DeviceRequest::Kind::kCpu) return torch::Device(torch::kCPU);
  const int count = CudaDeviceCount();
  if (request.kind == DeviceRequest::Kind::kAuto && count == 0) return torch::Device(torch::kCPU);
  const int index = request.index >= 0 ? request.index : gpu_for_cuda;
  const std::string asked =
      request.kind == DeviceRequest::Kind::kAuto
          ? "the default device"
          : (request.index >= 0 ? absl::StrCat("\"cuda:", request.index, "\"") : std::string("\"cuda\""));
  if (count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": ", asked, " asks for a GPU, but this host has none (no CUDA device visible",
                     torch::cuda::is_available() ? "" : "; CUDA is not available to this process", ")"));
  }
  if (index < 0 || index >= count) {
    return absl::FailedPreconditionError(absl::StrCat(
        name, ": ", asked, " asks for GPU ", index, ", but this host has ", count, " CUDA GPU",
        count == 1 ? "" : "s", " (cuda:0", count > 1 ? absl::StrCat("..cuda:", count - 1) : "", ")"));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace distill::student
