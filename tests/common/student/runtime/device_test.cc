#include "common/student/runtime/device.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace distill::student {
namespace {

using ::testing::HasSubstr;
using Kind = DeviceRequest::Kind;

TEST(ParseDeviceRequestTest, AcceptsTheFourForms) {
  auto parsed = ParseDeviceRequest("", "device");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, Kind::kAuto);
  parsed = ParseDeviceRequest("cpu", "device");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, Kind::kCpu);
  parsed = ParseDeviceRequest("cuda", "device");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, Kind::kCuda);
  EXPECT_EQ(parsed->index, -1);
  parsed = ParseDeviceRequest("cuda:3", "device");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, Kind::kCuda);
  EXPECT_EQ(parsed->index, 3);
}

TEST(ParseDeviceRequestTest, RejectsAnythingElseNamingTheField) {
  for (const char* bad :
       {"gpu", "Cpu", "cuda:", "cuda:+1", "cuda: 1", "cuda:1x", "cuda:12345", "mps", " cpu"}) {
    auto parsed = ParseDeviceRequest(bad, "models[0].device");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(
        std::string(parsed.status().message()),
        HasSubstr(std::string("models[0].device: must be \"cpu\", \"cuda\" or \"cuda:N\", got \"") + bad));
  }
}

TEST(ResolveDeviceTest, CpuAlwaysAndAutoFollowsTheHost) {
  auto cpu = ResolveDevice({Kind::kCpu, -1}, 0, "device");
  ASSERT_TRUE(cpu.ok());
  EXPECT_TRUE(cpu->is_cpu());
  auto automatic = ResolveDevice({Kind::kAuto, -1}, 0, "device");
  ASSERT_TRUE(automatic.ok());
  EXPECT_EQ(automatic->is_cuda(), CudaDeviceCount() > 0);
}

TEST(ResolveDeviceTest, AMissingGpuIsFailedPreconditionSayingWhatWasFound) {
  const int gpus = CudaDeviceCount();
  auto beyond = ResolveDevice({Kind::kCuda, gpus}, gpus, "inference.models[0].device");
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(beyond.status().message());
  EXPECT_THAT(message, HasSubstr("inference.models[0].device: \"cuda:" + std::to_string(gpus) + "\""));
  if (gpus == 0) {
    EXPECT_THAT(message, HasSubstr("this host has none"));
  } else {
    EXPECT_THAT(message, HasSubstr("this host has " + std::to_string(gpus) + " CUDA GPU"));
  }
}

}  // namespace
}  // namespace distill::student
