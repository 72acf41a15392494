#include "common/student/runtime/blas_threads.h"

#include <dlfcn.h>

namespace distill::student {
namespace {

struct OpenBlasFunctions {
  void (*set)(int) = nullptr;
  int (*get)() = nullptr;
};

// Both null unless OpenBLAS is loaded and has both. The handle is kept: the library stays loaded as long as
// libtorch is.
const OpenBlasFunctions& OpenBlas() {
  static const OpenBlasFunctions functions = [] {
    OpenBlasFunctions f;
    void* lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
    if (lib == nullptr) return f;
    f.set = reinterpret_cast<void (*)(int)>(dlsym(lib, "openblas_set_num_threads"));
    f.get = reinterpret_cast<int (*)()>(dlsym(lib, "openblas_get_num_threads"));
    if (f.set == nullptr || f.get == nullptr) f = OpenBlasFunctions{};
    return f;
  }();
  return functions;
}

}  // namespace

int OpenBlasThreads() { return OpenBlas().get != nullptr ? OpenBlas().get() : -1; }

bool SetOpenBlasThreads(int threads) {
  if (OpenBlas().set == nullptr) return false;
  OpenBlas().set(threads);
  return true;
}

}  // namespace distill::student
