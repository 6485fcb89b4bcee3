/* parallel.h — the runtime's parallel-for, as the generated kernels see it.
 *
 * A network that runs on several threads hands every kernel a `megcc_parallel` (NULL when
 * it runs on one). A kernel cuts its work into `n` independent units (GEMM row or column
 * panels, channels, element ranges) and calls megcc_parallel_for: `fn` then runs on
 * disjoint contiguous ranges [begin, end) that cover [0, n), concurrently, and the call
 * returns when all are done. The ranges depend only on n and the thread count, and a kernel
 * computes every output element the same way whatever range holds it (no reduction is ever
 * split), so the results are bitwise identical for every thread count.
 *
 * The runtime's default is a pthreads pool per network (megcc_network_set_threads, hosted
 * targets); an RTOS supplies its own `run` (megcc_network_set_parallel); a bare-metal build
 * (MEGCC_NO_THREADS or MEGCC_NO_LIBC_HOOKS) has no threads and passes NULL. */
#ifndef MEGCC_PARALLEL_H
#define MEGCC_PARALLEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One share of a parallel loop: units [begin, end). */
typedef void (*megcc_range_fn)(void *arg, int32_t begin, int32_t end);

typedef struct megcc_parallel {
    /* Run fn over [0, n) cut into contiguous ranges (megcc_parallel_split over a number of
     * parts that depends only on n and `threads`; the default pool cuts up to 4 per thread
     * and lets whichever thread is free take the next, so a thread that is slow or
     * descheduled does not hold the others up), some perhaps on the calling thread, and
     * return when every range is done. Called only with n >= 2, threads >= 2. */
    void (*run)(const struct megcc_parallel *par, int32_t n, megcc_range_fn fn, void *arg);
    int32_t threads; /* parts a loop is cut into at most */
    void *user;      /* for `run` */
} megcc_parallel;

/* What a kernel split into parts hands each of them: its own arguments, and the number of
 * parts (a kernel needing one scratch area per part sizes its workspace for the most parts
 * it makes, megcc_builder/codegen/parallel.py). */
typedef struct megcc_kernel_args {
    void *const *in_ptrs;
    void *const *out_ptrs;
    const int32_t *p;
    void *workspace;
    int32_t parts;
} megcc_kernel_args;

/* The part `t` of `parts` of [0, n): contiguous, sizes differing by at most one. */
static inline void megcc_parallel_split(int32_t n, int32_t parts, int32_t t, int32_t *begin,
                                        int32_t *end) {
    *begin = (int32_t)((int64_t)n * t / parts);
    *end = (int32_t)((int64_t)n * (t + 1) / parts);
}

/* fn over [0, n): in the calling thread when there is no pool or nothing to split. */
static inline void megcc_parallel_for(const megcc_parallel *par, int32_t n, megcc_range_fn fn,
                                      void *arg) {
    if (n <= 0) return;
    if (!par || par->threads < 2 || n < 2)
        fn(arg, 0, n);
    else
        par->run(par, n, fn, arg);
}

#ifdef __cplusplus
}
#endif
#endif /* MEGCC_PARALLEL_H */
