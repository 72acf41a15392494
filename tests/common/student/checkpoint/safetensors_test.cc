#include "common/student/checkpoint/safetensors.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/student/checkpoint/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace distill::student {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

using TempDir = ::distill::testing::TempDir;

std::string LengthPrefix(uint64_t n) { return std::string(reinterpret_cast<const char*>(&n), 8); }

// A file with the given header JSON (unpadded) and data buffer.
std::string MakeFile(const std::string& header, const std::string& buffer) {
  return LengthPrefix(header.size()) + header + buffer;
}

Tensor RandomTensor(std::mt19937* rng, DType dtype, std::vector<int64_t> shape) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> values(NumElements(shape));
  for (float& v : values) v = normal(*rng);
  return FromFloat32(values, std::move(shape), dtype);
}

TEST(SafetensorsTest, RoundTripIsBitExact) {
  std::mt19937 rng(42);
  SafetensorsFile file;
  file.metadata["format"] = "pt";
  file.metadata["distill"] = "round trip";
  file.tensors["encoder.block.0.layer.0.SelfAttention.q.weight"] = RandomTensor(&rng, DType::kF32, {17, 9});
  file.tensors["shared.weight"] = RandomTensor(&rng, DType::kF16, {31, 7});
  file.tensors["lm_head.weight"] = RandomTensor(&rng, DType::kBF16, {5, 3, 2});
  file.tensors["scalar"] = RandomTensor(&rng, DType::kF32, {});
  file.tensors["empty"] = RandomTensor(&rng, DType::kF16, {0, 4});
  file.tensors["steps"] = FromFloat32({1, 2, 3}, {3}, DType::kI64);
  file.tensors["ids"] = FromFloat32({-4, 5}, {2}, DType::kI32);

  TempDir dir;
  const std::string path = dir.File("model.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, file).ok());
  absl::StatusOr<std::string> first = ReadFileToString(path);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*ReadFileToString(path), *SerializeSafetensors(file));
  uint64_t header_len;
  std::memcpy(&header_len, first->data(), 8);
  EXPECT_EQ(header_len % 8, 0u);

  absl::StatusOr<SafetensorsFile> read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->metadata, file.metadata);
  ASSERT_EQ(read->tensors.size(), file.tensors.size());
  for (const auto& [name, tensor] : file.tensors) {
    const Tensor& got = read->tensors.at(name);
    EXPECT_EQ(got.dtype, tensor.dtype) << name;
    EXPECT_EQ(got.shape, tensor.shape) << name;
    EXPECT_EQ(got.bytes, tensor.bytes) << name;
  }

  const std::string path2 = dir.File("again.safetensors");
  ASSERT_TRUE(WriteSafetensors(path2, *read).ok());
  EXPECT_EQ(*ReadFileToString(path2), *first);
  // No temporary files are left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()), 2);
}

// A tiny file spelled out byte by byte: header length 144 (139 bytes of JSON + 5 spaces), then
// a = F32 [1, -2] and b = BF16 scalar 1.5.
const unsigned char kGolden[] = {
    0x90, 0, 0, 0, 0, 0, 0, 0,
    '{', '"', '_', '_', 'm', 'e', 't', 'a', 'd', 'a', 't', 'a', '_', '_', '"', ':', '{', '"', 'f', 'o', 'r', 'm',
    'a', 't', '"', ':', '"', 'p', 't', '"', '}', ',', '"', 'a', '"', ':', '{', '"', 'd', 't', 'y', 'p', 'e', '"',
    ':', '"', 'F', '3', '2', '"', ',', '"', 's', 'h', 'a', 'p', 'e', '"', ':', '[', '2', ']', ',', '"', 'd', 'a',
    't', 'a', '_', 'o', 'f', 'f', 's', 'e', 't', 's', '"', ':', '[', '0', ',', '8', ']', '}', ',', '"', 'b', '"',
    ':', '{', '"', 'd', 't', 'y', 'p', 'e', '"', ':', '"', 'B', 'F', '1', '6', '"', ',', '"', 's', 'h', 'a', 'p',
    'e', '"', ':', '[', ']', ',', '"', 'd', 'a', 't', 'a', '_', 'o', 'f', 'f', 's', 'e', 't', 's', '"', ':', '[',
    '8', ',', '1', '0', ']', '}', '}', ' ', ' ', ' ', ' ', ' ',
    0x00, 0x00, 0x80, 0x3f,  // 1.0f
    0x00, 0x00, 0x00, 0xc0,  // -2.0f
    0xc0, 0x3f,              // bf16 1.5
};

TEST(SafetensorsTest, GoldenFileParsesAndReserializesIdentically) {
  std::string bytes(reinterpret_cast<const char*>(kGolden), sizeof(kGolden));
  absl::StatusOr<SafetensorsFile> file = ParseSafetensors(bytes, "golden.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metadata.at("format"), "pt");
  ASSERT_EQ(file->tensors.size(), 2u);
  const Tensor& a = file->tensors.at("a");
  EXPECT_EQ(a.dtype, DType::kF32);
  EXPECT_EQ(a.shape, std::vector<int64_t>({2}));
  EXPECT_EQ(ToFloat32(a), std::vector<float>({1.0f, -2.0f}));
  const Tensor& b = file->tensors.at("b");
  EXPECT_EQ(b.dtype, DType::kBF16);
  EXPECT_TRUE(b.shape.empty());
  EXPECT_EQ(ToFloat32(b), std::vector<float>({1.5f}));
  EXPECT_EQ(*SerializeSafetensors(*file), bytes);
}

TEST(SafetensorsTest, TensorsInAnyOffsetOrderParse) {
  std::string header =
      R"({"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}})";
  absl::StatusOr<SafetensorsFile> file = ParseSafetensors(MakeFile(header, std::string(8, '\0')), "f");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->tensors.at("x").shape, std::vector<int64_t>({2}));
}

TEST(SafetensorsTest, TruncatedFiles) {
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors("abc", "short.safetensors");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("short.safetensors"));

  std::string golden(reinterpret_cast<const char*>(kGolden), sizeof(kGolden));
  // Header cut off.
  r = ParseSafetensors(golden.substr(0, 100), "cut.safetensors");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("cut.safetensors"), HasSubstr("header length 144 runs past the end")));
  // Data cut off.
  r = ParseSafetensors(golden.substr(0, golden.size() - 1), "cut.safetensors");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("cut.safetensors"), HasSubstr("b: data_offsets [8, 10]"),
                                          HasSubstr("9-byte data buffer")));
}

TEST(SafetensorsTest, ReadMissingFileIsNotFound) {
  TempDir dir;
  absl::StatusOr<SafetensorsFile> r = ReadSafetensors(dir.File("nope.safetensors"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("nope.safetensors"));
}

TEST(SafetensorsTest, ReadNamesThePath) {
  TempDir dir;
  const std::string path = dir.File("bad.safetensors");
  ASSERT_TRUE(WriteFileAtomically(path, MakeFile("{nope", "")).ok());
  absl::StatusOr<SafetensorsFile> r = ReadSafetensors(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr(path), HasSubstr("bad JSON header")));
}

TEST(SafetensorsTest, BadJsonHeader) {
  for (const std::string header : {"{\"a\": ", "[1, 2]", "not json at all", "{\"a\": 3}"}) {
    absl::StatusOr<SafetensorsFile> r = ParseSafetensors(MakeFile(header, ""), "m.safetensors");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << header;
    EXPECT_THAT(r.status().message(), HasSubstr("m.safetensors: ")) << header;
  }
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors(MakeFile("{\"a\": ", ""), "m.safetensors");
  EXPECT_THAT(r.status().message(), HasSubstr("bad JSON header"));
}

TEST(SafetensorsTest, AbsurdHeaderLength) {
  std::string bytes = LengthPrefix(uint64_t{1} << 40) + "{}";
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors(bytes, "huge.safetensors");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("huge.safetensors"), HasSubstr("header length 1099511627776"),
                                          HasSubstr("100000000")));
  // Just over the limit is still rejected before the file size matters.
  r = ParseSafetensors(LengthPrefix(kMaxSafetensorsHeaderBytes + 1), "huge.safetensors");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SafetensorsTest, UnknownDtype) {
  absl::StatusOr<SafetensorsFile> r =
      ParseSafetensors(MakeFile(R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "x"), "m");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("m: w: "), HasSubstr("unknown dtype \"F8_E4M3\"")));
}

TEST(SafetensorsTest, BadShapeOrOffsets) {
  for (const std::string header : {
           R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
           R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})",
           R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
           R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})",
           R"({"w":{"dtype":"F32","data_offsets":[0,4]}})",
           R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}})",
       }) {
    absl::StatusOr<SafetensorsFile> r = ParseSafetensors(MakeFile(header, std::string(4, '\0')), "m");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << header;
    EXPECT_THAT(r.status().message(), HasSubstr("m: w: ")) << header;
  }
}

TEST(SafetensorsTest, ShapeOffsetMismatchNamesTensorAndBothSizes) {
  std::string header =
      R"({"encoder.block.0.layer.0.SelfAttention.q.weight":{"dtype":"F32","shape":[512,512],"data_offsets":[0,1000]}})";
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors(MakeFile(header, std::string(1000, '\0')), "model.safetensors");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "model.safetensors: encoder.block.0.layer.0.SelfAttention.q.weight: shape [512, 512] of F32 needs "
            "1048576 bytes, data_offsets give 1000");
}

TEST(SafetensorsTest, OverlappingOffsets) {
  std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors(MakeFile(header, std::string(8, '\0')), "m");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("m: tensors overlap"), HasSubstr("b [4, 8)"), HasSubstr("a [0, 8)")));
}

TEST(SafetensorsTest, Gaps) {
  std::string header =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors(MakeFile(header, std::string(12, '\0')), "m");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("m: gap"), HasSubstr("[4, 8)"), HasSubstr("before b")));

  header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  r = ParseSafetensors(MakeFile(header, std::string(8, '\0')), "m");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("[0, 4)"));

  // Trailing bytes after the last tensor.
  header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  r = ParseSafetensors(MakeFile(header, std::string(6, '\0')), "m");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("2 trailing bytes"));
}

TEST(SafetensorsTest, NonStringMetadataIsRejected) {
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors(MakeFile(R"({"__metadata__":{"step":3}})", ""), "m");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("__metadata__: step: must be a string"));
}

TEST(SafetensorsTest, WriteRejectsInconsistentTensor) {
  SafetensorsFile file;
  file.tensors["w"] = Tensor{DType::kF32, {2, 2}, std::string(12, '\0')};
  TempDir dir;
  absl::Status s = WriteSafetensors(dir.File("w.safetensors"), file);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("w: shape [2, 2] of F32 needs 16 bytes, the tensor holds 12"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("w.safetensors")));
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

TEST(HalfPrecisionTest, FloatToHalfTable) {
  struct Case {
    float value;
    uint16_t half;
  };
  const float kSubnormal = std::ldexp(1.0f, -24);
  const Case cases[] = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {1.0f, 0x3c00},
      {-2.0f, 0xc000},
      {65504.0f, 0x7bff},                                  // largest half
      {65519.0f, 0x7bff},                                  // below the halfway point to 65536
      {65520.0f, 0x7c00},                                  // tie rounds to even: infinity
      {1e10f, 0x7c00},                                     // overflow
      {kSubnormal, 0x0001},                                // smallest subnormal
      {kSubnormal / 2, 0x0000},                            // tie between 0 and 1 ulp: even (0)
      {kSubnormal * 1.5f, 0x0002},                         // tie between 1 and 2 ulp: even (2)
      {kSubnormal * 2.5f, 0x0002},                         // tie between 2 and 3 ulp: even (2)
      {kSubnormal * 0.51f, 0x0001},                        // above the tie
      {std::ldexp(1.0f, -14), 0x0400},                     // smallest normal
      {std::ldexp(1023.5f, -24), 0x0400},                  // largest subnormal + half ulp rounds up to normal
      {std::ldexp(1.0f, -30), 0x0000},                     // underflow
      {1.0f + std::ldexp(1.0f, -11), 0x3c00},              // tie: even (1.0)
      {1.0f + 3 * std::ldexp(1.0f, -11), 0x3c02},          // tie: even (1 + 2^-9)
      {1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20), 0x3c01},  // just above the tie
      {std::numeric_limits<float>::infinity(), 0x7c00},
      {-std::numeric_limits<float>::infinity(), 0xfc00},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FloatToHalf(c.value), c.half) << c.value;
  }
  uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  // A signalling NaN whose payload lives only in the low bits still converts to a NaN.
  float snan;
  uint32_t snan_bits = 0x7f800001;
  std::memcpy(&snan, &snan_bits, 4);
  EXPECT_NE(FloatToHalf(snan) & 0x03ff, 0);
}

TEST(HalfPrecisionTest, HalfToFloatTable) {
  EXPECT_EQ(Bits(HalfToFloat(0x0000)), Bits(0.0f));
  EXPECT_EQ(Bits(HalfToFloat(0x8000)), Bits(-0.0f));
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(HalfToFloat(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7c01)));
}

TEST(HalfPrecisionTest, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(f)))) << h;
    } else {
      EXPECT_EQ(FloatToHalf(f), h) << h;
    }
  }
}

TEST(HalfPrecisionTest, BFloat16Table) {
  EXPECT_EQ(FloatToBFloat16(0.0f), 0x0000);
  EXPECT_EQ(FloatToBFloat16(-0.0f), 0x8000);
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBFloat16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie: even
  EXPECT_EQ(FloatToBFloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie: even
  EXPECT_EQ(FloatToBFloat16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to infinity
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(std::numeric_limits<float>::quiet_NaN()))));
  float snan;
  uint32_t snan_bits = 0x7f800001;
  std::memcpy(&snan, &snan_bits, 4);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(snan))));
  EXPECT_EQ(BFloat16ToFloat(0x3fc0), 1.5f);
  EXPECT_EQ(BFloat16ToFloat(0x0001), std::ldexp(1.0f, -133));  // bf16 subnormal
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    float f = BFloat16ToFloat(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      EXPECT_EQ(FloatToBFloat16(f), b) << b;
    }
  }
}

TEST(HalfPrecisionTest, TensorConversions) {
  std::vector<float> values = {0.5f, -1.25f, 65504.0f, 1e-8f};
  Tensor f16 = FromFloat32(values, {2, 2}, DType::kF16);
  EXPECT_EQ(f16.bytes.size(), 8u);
  EXPECT_EQ(f16.shape, std::vector<int64_t>({2, 2}));
  EXPECT_EQ(ToFloat32(f16), std::vector<float>({0.5f, -1.25f, 65504.0f, 0.0f}));
  Tensor bf16 = FromFloat32(values, {4}, DType::kBF16);
  std::vector<float> back = ToFloat32(bf16);
  EXPECT_EQ(back[0], 0.5f);
  EXPECT_EQ(back[1], -1.25f);
  EXPECT_EQ(back[2], 65536.0f);
  Tensor f32 = FromFloat32(values, {4}, DType::kF32);
  EXPECT_EQ(ToFloat32(f32), values);
  Tensor i32 = FromFloat32({1.9f, -1.9f, std::nanf(""), 1e20f}, {4}, DType::kI32);
  EXPECT_EQ(ToFloat32(i32), std::vector<float>({1.0f, -1.0f, 0.0f, 2147483648.0f}));
}

}  // namespace
}  // namespace distill::student
