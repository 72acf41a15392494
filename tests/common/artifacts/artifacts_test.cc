#include "common/artifacts/artifacts.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace distill::artifacts {
namespace {

using ::testing::HasSubstr;

TEST(ResolveUriTest, ArtifactFileAndAbsolutePaths) {
  EXPECT_EQ(*ResolveUri("/store", "artifact://runs/r1/", "output_uri"), "/store/runs/r1/");
  EXPECT_EQ(*ResolveUri("/store", "file:///data/x.jsonl", "dataset.uri"), "/data/x.jsonl");
  EXPECT_EQ(*ResolveUri("/store", "/data/x.jsonl", "dataset.uri"), "/data/x.jsonl");
  for (const char* bad : {"artifact://../etc/passwd", "artifact:///abs", "artifact://", "relative/x", "s3://b/k"}) {
    absl::StatusOr<std::string> r = ResolveUri("/store", bad, "dataset.uri");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("dataset.uri")) << bad;
  }
}

TEST(ContentHashTest, HashesAndVerifies) {
  distill::testing::TempDir dir;
  const std::string path = dir.File("abc.txt");
  std::ofstream(path) << "abc";
  EXPECT_EQ(*FileContentHash(path), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(VerifyContentHash(path, "", "dataset").ok());
  EXPECT_TRUE(VerifyContentHash(path, *FileContentHash(path), "dataset").ok());
  absl::Status mismatch = VerifyContentHash(path, "sha256:00", "dataset");
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(mismatch.message(), HasSubstr("dataset.content_hash"));
  EXPECT_EQ(VerifyContentHash(dir.File("none"), "sha256:00", "dataset").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace distill::artifacts
