#ifndef DISTILL_COMMON_STUDENT_RUNTIME_BLAS_THREADS_H_
#define DISTILL_COMMON_STUDENT_RUNTIME_BLAS_THREADS_H_

// OpenBLAS's own thread pool, which at::set_num_threads does not size. Its functions are looked up once, at
// run time: libtorch links its BLAS privately and any BLAS may sit behind it.

namespace distill::student {

// OpenBLAS's thread count, or -1 when the BLAS in this process is not OpenBLAS. Cheap: callable per product.
int OpenBlasThreads();

// Sets OpenBLAS's thread count (threads >= 1); returns false, changing nothing, when the BLAS in this
// process is not OpenBLAS.
bool SetOpenBlasThreads(int threads);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_RUNTIME_BLAS_THREADS_H_
