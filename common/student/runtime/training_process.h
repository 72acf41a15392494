#ifndef DISTILL_COMMON_STUDENT_RUNTIME_TRAINING_PROCESS_H_
#define DISTILL_COMMON_STUDENT_RUNTIME_TRAINING_PROCESS_H_

// Process-wide settings for a process that trains the student on the CPU (the trainer's worker, and the
// student benchmark, which must measure what the worker runs). Call once, early, from the main thread.

namespace distill::student {

// Applies, process-wide:
//   - `threads` intra-op threads (0 leaves the count as it is). libtorch's one pool serves everything: the
//     wheel's MKL runs its matrix products on the same OpenMP threads as elementwise ops and reductions;
//   - glibc malloc tuning: no mmap for large blocks and no trimming of the heap. A training step allocates
//     and frees the same large tensors (activations, gradients, logits) every step; by default glibc
//     serves blocks over 32 MiB with mmap and unmaps them on free, so each step page-faults them in again.
//     With these settings freed memory stays in the heap and is reused; the process keeps its peak
//     footprint until it exits;
//   - flush-to-zero for denormals (T5Model::Create does this too), which keeps float math on tiny values
//     from slowing down.
// Returns the intra-op thread count in effect afterwards.
int ConfigureTrainingProcess(int threads);

}  // namespace distill::student

#endif  // DISTILL_COMMON_STUDENT_RUNTIME_TRAINING_PROCESS_H_
