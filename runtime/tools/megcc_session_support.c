/* megcc_session_support: what the in-process Python session (megcc_builder/session.py)
 * needs beyond the public API, linked into the session's shared library next to the
 * runtime and the kernels. Timing loops and profiling run here, in C, so the numbers are
 * the same as the standalone runner's (no Python call between two forwards, no Python
 * callback inside one). Hosted (POSIX) builds only; not part of the runtime. */
#if defined(__unix__) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L /* clock_gettime, CLOCK_THREAD_CPUTIME_ID */
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "megcc/megcc.h"

static uint64_t ns_of(clockid_t clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void *user) {
    (void)user;
#if defined(CLOCK_THREAD_CPUTIME_ID)
    return ns_of(CLOCK_THREAD_CPUTIME_ID);
#else
    return ns_of(CLOCK_MONOTONIC);
#endif
}

static uint64_t process_cpu_ns(void *user) {
    (void)user;
#if defined(CLOCK_PROCESS_CPUTIME_ID)
    return ns_of(CLOCK_PROCESS_CPUTIME_ID);
#else
    return ns_of(CLOCK_MONOTONIC);
#endif
}

static uint64_t wall_ns(void *user) {
    (void)user;
    return ns_of(CLOCK_MONOTONIC);
}

/* The default hooks with the given clock for profiling: 0 monotonic, 1 thread CPU time,
 * 2 process CPU time (all threads: what a multi-threaded forward costs in CPU). */
megcc_status megcc_session_hooks(megcc_hooks *hooks, int clock) {
    megcc_status st = megcc_default_hooks(hooks);
    if (st != MEGCC_OK) return st;
    hooks->time_ns = clock == 1 ? thread_cpu_ns : clock == 2 ? process_cpu_ns : wall_ns;
    return MEGCC_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* `warmup` untimed then `iters` timed forwards; ms[0..iters) gets the sorted latencies in
 * milliseconds measured with `clock` (as megcc_session_hooks). */
megcc_status megcc_session_time_forward(megcc_network *net, int clock, uint32_t warmup,
                                        uint32_t iters, double *ms) {
    uint64_t (*now)(void *) = clock == 1 ? thread_cpu_ns : clock == 2 ? process_cpu_ns : wall_ns;
    uint32_t i;
    megcc_status st;
    for (i = 0; i < warmup; i++)
        if ((st = megcc_network_forward(net)) != MEGCC_OK) return st;
    for (i = 0; i < iters; i++) {
        uint64_t t0 = now(NULL);
        if ((st = megcc_network_forward(net)) != MEGCC_OK) return st;
        ms[i] = (double)(now(NULL) - t0) / 1e6;
    }
    qsort(ms, iters, sizeof(double), cmp_double);
    return MEGCC_OK;
}

/* Profiler that keeps, per instruction, the fastest of the profiled runs: `user` points at
 * an array of n_instrs uint64_t, initialised to UINT64_MAX by the caller. */
static void record_min(void *user, uint32_t instr, const char *kernel, uint64_t ns) {
    uint64_t *best = (uint64_t *)user;
    (void)kernel;
    if (ns < best[instr]) best[instr] = ns;
}

megcc_status megcc_session_profile(megcc_network *net, uint32_t runs, uint64_t *best_ns) {
    megcc_status st = megcc_network_set_profiler(net, record_min, best_ns);
    uint32_t i;
    if (st != MEGCC_OK) return st;
    for (i = 0; i < runs && st == MEGCC_OK; i++) st = megcc_network_forward(net);
    megcc_network_set_profiler(net, NULL, NULL);
    return st;
}

/* One run from Python in one foreign call: point input i at in_ptr[i] and output i at
 * out_ptr[i] (each of in_size[i] / out_size[i] bytes; a NULL pointer leaves that tensor as
 * it is) and forward. */
megcc_status megcc_session_run(megcc_network *net, uint32_t n_in, void *const *in_ptr,
                               const size_t *in_size, uint32_t n_out, void *const *out_ptr,
                               const size_t *out_size) {
    megcc_status st;
    uint32_t i;
    for (i = 0; i < n_in; i++)
        if (in_ptr[i] && (st = megcc_network_set_input_memory(net, i, in_ptr[i], in_size[i])))
            return st;
    for (i = 0; i < n_out; i++)
        if (out_ptr[i] &&
            (st = megcc_network_set_output_memory(net, i, out_ptr[i], out_size[i])))
            return st;
    return megcc_network_forward(net);
}
