// The libtorch every target links is the pinned torch wheel's, and it shares processes with Debian's gRPC
// and protobuf: its version, the C++ ABI both sides use, protobuf kept apart, and its threading (MKL on
// OpenMP, one pool).

#include <dlfcn.h>

#include <filesystem>
#include <string>

#include "ATen/Context.h"
#include "ATen/Parallel.h"
#include "c10/util/Exception.h"
#include "distill/v1/trainer.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/stubs/common.h"
#include "gtest/gtest.h"
#include "torch/torch.h"
#include "torch/version.h"

namespace distill::student {
namespace {

TEST(StackTest, LibtorchIsThePinnedWheel) {
  const std::string headers = TORCH_VERSION;
  // What the virtualenv's torch reported at configure time ("2.11.0+cu130").
  const std::string wheel = DISTILL_TORCH_VERSION;
  EXPECT_EQ(wheel.rfind(headers, 0), 0u) << "headers " << headers << ", wheel " << wheel;
  EXPECT_EQ(TORCH_VERSION_MAJOR, 2);
  EXPECT_EQ(TORCH_VERSION_MINOR, 11);
}

TEST(StackTest, BothSidesUseTheCxx11Abi) {
  // gRPC, protobuf, abseil and yaml-cpp from Debian use the cxx11 std::string; so must libtorch, or strings
  // crossing into it would be misread.
  EXPECT_EQ(_GLIBCXX_USE_CXX11_ABI, 1);
  EXPECT_EQ(torch::Device("cuda:1").str(), "cuda:1");
  try {
    torch::ones({2, 3}).view({7});
    FAIL() << "view to a wrong size did not throw";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("shape '[7]' is invalid"), std::string::npos)
        << e.what_without_backtrace();
  }
}

TEST(StackTest, TheStandardLibraryIsDebiansNotTorchsCopy) {
  // libtorch_cpu.so exports GCC 13's std::filesystem; our GCC 12-compiled calls must reach libstdc++'s.
  using CurrentPath = std::filesystem::path (*)();
  Dl_info info;
  ASSERT_NE(dladdr(reinterpret_cast<void*>(static_cast<CurrentPath>(&std::filesystem::current_path)), &info),
            0);
  EXPECT_NE(std::string(info.dli_fname).find("libstdc++.so"), std::string::npos) << info.dli_fname;
  const std::filesystem::path path = std::filesystem::path("/a/b") / "c.txt";
  EXPECT_EQ(path.parent_path().string(), "/a/b");
  EXPECT_EQ(path.filename().string(), "c.txt");
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::current_path()));
}

TEST(StackTest, ProtobufIsDebiansAndTorchsCopyStaysHidden) {
  // The headers and the library this process uses are Debian's protobuf 3.21, not torch's bundled 3.13.
  EXPECT_EQ(GOOGLE_PROTOBUF_VERSION / 1000, 3021);
  Dl_info info;
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&google::protobuf::internal::VersionString), &info), 0);
  EXPECT_NE(std::string(info.dli_fname).find("libprotobuf.so"), std::string::npos) << info.dli_fname;

  // libtorch_cpu links its protobuf privately: looking the runtime's symbols up in it (and what it
  // depends on) finds nothing that could interpose on Debian's.
  void* torch_cpu = dlopen("libtorch_cpu.so", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(torch_cpu, nullptr) << "libtorch_cpu.so is not loaded";
  for (const char* symbol : {"_ZN6google8protobuf8internal13VersionStringB5cxx11Ei",
                             "_ZNK6google8protobuf7Message11DebugStringB5cxx11Ev",
                             "_ZN6google8protobuf14DescriptorPool14generated_poolEv",
                             "_ZN6google8protobuf2io16CodedInputStream20ReadVarint32FallbackEj"}) {
    EXPECT_NE(dlsym(RTLD_DEFAULT, symbol), nullptr) << symbol << " is not in Debian's libprotobuf";
    EXPECT_EQ(dlsym(torch_cpu, symbol), nullptr) << symbol << " is exported by libtorch_cpu.so";
  }
  dlclose(torch_cpu);

  // Generated code, descriptors and reflection work with libtorch loaded.
  const google::protobuf::Descriptor* spec =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName("distill.v1.RunSpec");
  ASSERT_NE(spec, nullptr);
  v1::RunSpec original;
  original.set_name("stack");
  original.mutable_training()->mutable_hyperparameters()->set_learning_rate(3e-4);
  v1::RunSpec parsed;
  ASSERT_TRUE(parsed.ParseFromString(original.SerializeAsString()));
  EXPECT_EQ(parsed.DebugString(), original.DebugString());
  EXPECT_EQ((torch::ones({2}) * 2).sum().item<float>(), 4.0f);
}

TEST(StackTest, OneThreadPoolServesOpsAndMatrixProducts) {
  // The wheel's BLAS is MKL on libtorch's OpenMP pool: at::set_num_threads sizes both (there is no
  // separate BLAS pool to size, as Debian's OpenBLAS build had).
  EXPECT_TRUE(at::hasMKL());
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  const std::string info = at::get_parallel_info();
  EXPECT_NE(info.find("ATen parallel backend: OpenMP"), std::string::npos) << info;
  EXPECT_NE(info.find("mkl_get_max_threads() : 2"), std::string::npos) << info;
  at::set_num_threads(1);
  EXPECT_NE(at::get_parallel_info().find("mkl_get_max_threads() : 1"), std::string::npos);
  at::set_num_threads(before);
  EXPECT_EQ(dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD), nullptr) << "OpenBLAS is loaded";
}

}  // namespace
}  // namespace distill::student
