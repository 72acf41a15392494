#ifndef DISTILL_TESTS_SUPPORT_PATHS_H_
#define DISTILL_TESTS_SUPPORT_PATHS_H_

// Where a test finds the repository, the build tree and promtool. They are not compiled in: no absolute
// path of this checkout is part of a test's compile command, so a fresh clone elsewhere (CI) compiles the
// same commands and ccache serves them. A test binary lives under the build tree, whose CMakeCache.txt
// names the source directory (CMAKE_HOME_DIRECTORY) and promtool (DISTILL_PROMTOOL); the environment
// variables DISTILL_SOURCE_DIR, DISTILL_BINARY_DIR and DISTILL_PROMTOOL override them.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace distill::testing {

namespace internal {

// The nearest directory above this executable that holds CMakeCache.txt; empty if none.
inline std::string BuildTreeOfThisBinary() {
  std::error_code error;
  std::filesystem::path dir = std::filesystem::read_symlink("/proc/self/exe", error).parent_path();
  for (; !error && !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    if (std::filesystem::exists(dir / "CMakeCache.txt", error)) return dir.string();
  }
  return "";
}

// The value of `key` ("NAME:TYPE=value") in the build tree's CMakeCache.txt; empty if absent.
inline std::string CacheValue(const std::string& build_tree, const std::string& key) {
  std::ifstream cache(build_tree + "/CMakeCache.txt");
  std::string line;
  while (std::getline(cache, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    const size_t equals = line.find('=');
    if (equals != std::string::npos) return line.substr(equals + 1);
  }
  return "";
}

// The environment's value, else `fallback`; when both are empty, a path that names the problem, so
// whatever the test opens fails saying so.
inline std::string Resolve(const char* variable, const std::string& fallback) {
  const char* value = std::getenv(variable);
  if (value != nullptr && *value != '\0') return value;
  if (!fallback.empty()) return fallback;
  return std::string("<") + variable + " unknown: no CMakeCache.txt above this test binary>";
}

}  // namespace internal

// The CMake build tree (binaries under bin/).
inline const std::string& BinaryDir() {
  static const std::string dir = internal::Resolve("DISTILL_BINARY_DIR", internal::BuildTreeOfThisBinary());
  return dir;
}
// The repository root.
inline const std::string& SourceDir() {
  static const std::string dir =
      internal::Resolve("DISTILL_SOURCE_DIR", internal::CacheValue(BinaryDir(), "CMAKE_HOME_DIRECTORY"));
  return dir;
}
// Debian's promtool.
inline const std::string& Promtool() {
  static const std::string path =
      internal::Resolve("DISTILL_PROMTOOL", internal::CacheValue(BinaryDir(), "DISTILL_PROMTOOL"));
  return path;
}

}  // namespace distill::testing

#endif  // DISTILL_TESTS_SUPPORT_PATHS_H_
