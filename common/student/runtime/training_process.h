#ifndef DISTILL_COMMON_STUDENT_RUNTIME_TRAINING_PROCESS_H_
#define DISTILL_COMMON_STUDENT_RUNTIME_TRAINING_PROCESS_H_

// Process-wide settings for a process that trains the student on the CPU (the trainer's worker, and the
// student benchmark, which must measure what the worker runs). Call once, early, from the main thread.

namespace distill::student {

struct TrainingThreads {
  // libtorch's intra-op (OpenMP) pool, used by elementwise ops and reductions; 0 leaves it as it is.
  int torch_threads = 0;
  // OpenBLAS's own pthread pool, used by every matmul (at::set_num_threads does not size it); 0 leaves it
  // as it is. Ignored when the BLAS in this process is not OpenBLAS.
  int blas_threads = 0;
};

// Applies, process-wide:
//   - the thread counts in `threads`;
//   - glibc malloc tuning: no mmap for large blocks and no trimming of the heap. A training step allocates
//     and frees the same large tensors (activations, gradients, logits) every step; by default glibc
//     serves blocks over 32 MiB with mmap and unmaps them on free, so each step page-faults them in again
//     (measured: 15-20% of a t5-v1_1-small step). With these settings freed memory stays in the heap and
//     is reused; the process keeps its peak footprint until it exits.
//   - flush-to-zero for denormals (T5Model::Create does this too), which keeps float math on tiny values
//     from slowing down.
// Returns the counts in effect afterwards (blas_threads -1 when the BLAS is not OpenBLAS).
TrainingThreads ConfigureTrainingProcess(const TrainingThreads& threads);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_RUNTIME_TRAINING_PROCESS_H_
