#include "common/student/runtime/training_process.h"

#include <malloc.h>

#include "ATen/Context.h"
#include "ATen/Parallel.h"

namespace distill::student {

int ConfigureTrainingProcess(int threads) {
  // M_MMAP_MAX 0: every block comes from the heap, whatever its size (the mmap threshold cannot be raised
  // past 32 MiB, and the largest per-step tensors of t5-v1_1-small are 64 MiB). Setting the trim threshold
  // (which also stops glibc from adjusting it) keeps freed memory at the top of the heap mapped.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);  // -1: never (glibc manual)
  mallopt(M_TOP_PAD, 64 << 20);
  at::globalContext().setFlushDenormal(true);
  if (threads > 0) at::set_num_threads(threads);
  return at::get_num_threads();
}

}  // namespace distill::student
