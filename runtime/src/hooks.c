/* Default platform hooks: malloc/free, stderr, a monotonic clock.
 * Compiled out with MEGCC_NO_LIBC_HOOKS so a bare-metal build links no stdio/malloc. */
#if !defined(MEGCC_NO_LIBC_HOOKS) && (defined(__unix__) || defined(__APPLE__))
#define _POSIX_C_SOURCE 199309L /* clock_gettime: C99 has only clock(), CPU time in ticks */
#endif

#include "internal.h"

#ifdef MEGCC_NO_LIBC_HOOKS

megcc_status megcc_default_hooks(megcc_hooks *hooks) {
    (void)hooks;
    return MEGCC_ERR_UNSUPPORTED;
}

#else

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *default_alloc(void *user, size_t size, size_t align) {
    (void)user;
    return mgc_aligned_from(malloc, size, align);
}

static void default_free(void *user, void *ptr) {
    (void)user;
    mgc_unaligned_free(free, ptr);
}

static void default_log(void *user, int level, const char *message) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    (void)user;
    fprintf(stderr, "megcc %s: %s\n", (level >= 0 && level <= 3) ? names[level] : "log",
            message);
}

static uint64_t default_time_ns(void *user) {
    (void)user;
#if defined(CLOCK_MONOTONIC)
    {
        struct timespec ts;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
            return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
#endif
    return (uint64_t)((double)clock() * (1e9 / CLOCKS_PER_SEC));
}

megcc_status megcc_default_hooks(megcc_hooks *hooks) {
    if (!hooks) return MEGCC_ERR_INVALID_ARG;
    hooks->user = NULL;
    hooks->alloc = default_alloc;
    hooks->free = default_free;
    hooks->log = default_log;
    hooks->time_ns = default_time_ns;
    return MEGCC_OK;
}

#endif
