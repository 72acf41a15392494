#include "common/student/runtime/training_process.h"

#include <dlfcn.h>
#include <malloc.h>

#include <cstddef>

#include "ATen/Context.h"
#include "ATen/Parallel.h"

namespace distill::student {
namespace {

// Sets OpenBLAS's thread count when `threads` > 0 and returns the count in effect, or -1 when OpenBLAS is
// not loaded. Looked up at run time: libtorch links its BLAS privately and any BLAS may sit behind it.
int OpenBlasThreads(int threads) {
  void* lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
  if (lib == nullptr) return -1;
  auto set = reinterpret_cast<void (*)(int)>(dlsym(lib, "openblas_set_num_threads"));
  auto get = reinterpret_cast<int (*)()>(dlsym(lib, "openblas_get_num_threads"));
  int result = -1;
  if (set != nullptr && get != nullptr) {
    if (threads > 0) set(threads);
    result = get();
  }
  dlclose(lib);
  return result;
}

}  // namespace

TrainingThreads ConfigureTrainingProcess(const TrainingThreads& threads) {
  // M_MMAP_MAX 0: every block comes from the heap, whatever its size (the mmap threshold cannot be raised
  // past 32 MiB, and the largest per-step tensors of t5-v1_1-small are 64 MiB). Setting the trim threshold
  // (which also stops glibc from adjusting it) keeps freed memory at the top of the heap mapped.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);  // -1: never (glibc manual)
  mallopt(M_TOP_PAD, 64 << 20);
  at::globalContext().setFlushDenormal(true);
  if (threads.torch_threads > 0) at::set_num_threads(threads.torch_threads);
  TrainingThreads result;
  result.torch_threads = at::get_num_threads();
  result.blas_threads = OpenBlasThreads(threads.blas_threads);
  return result;
}

}  // namespace distill::student
