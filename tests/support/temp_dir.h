#ifndef DISTILL_TESTS_SUPPORT_TEMP_DIR_H_
#define DISTILL_TESTS_SUPPORT_TEMP_DIR_H_

// A fresh directory under $TEST_TMPDIR (or /tmp), removed with everything in it when the object dies.

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace distill::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "distill_test") {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string templ = std::string(base != nullptr ? base : "/tmp") + "/" + prefix + ".XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Empty if the directory could not be created.
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace distill::testing

#endif  // DISTILL_TESTS_SUPPORT_TEMP_DIR_H_
