/* The default parallel-for of a network: a pool of pthreads workers (megcc/parallel.h).
 * Hosted POSIX builds only; with MEGCC_NO_THREADS or MEGCC_NO_LIBC_HOOKS (bare metal) there
 * is no pool, and megcc_network_set_threads(n > 1) reports MEGCC_ERR_UNSUPPORTED (an RTOS
 * passes its own megcc_parallel to megcc_network_set_parallel instead).
 *
 * One job at a time: the caller writes (fn, arg, n), posts it with a new generation in the
 * `claim` word (release store; waking sleeping workers under the mutex), then, like every
 * worker that is awake, takes parts from `claim` until none is left, and waits until all
 * parts are finished. Idle threads watch for work a while before sleeping on a condition
 * variable. GCC/Clang atomics (hosts with pthreads have them), acquire/release pairs only,
 * so the pool is clean under ThreadSanitizer.
 * Memory comes from the model's hooks, once, when the pool is made. */
#if !defined(MEGCC_NO_THREADS) && !defined(MEGCC_NO_LIBC_HOOKS) && \
    (defined(__unix__) || defined(__APPLE__)) && defined(__GNUC__)
#define MGC_HAVE_POOL 1
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200112L /* pthreads under -std=c99 */
#endif
#endif

#include <string.h>

#include "internal.h"

#ifndef MGC_HAVE_POOL

megcc_status mgc_pool_create(const megcc_hooks *hooks, uint32_t threads, mgc_pool **out) {
    (void)hooks;
    (void)threads;
    *out = NULL;
    return MEGCC_ERR_UNSUPPORTED;
}

void mgc_pool_destroy(mgc_pool *pool) { (void)pool; }

const megcc_parallel *mgc_pool_parallel(const mgc_pool *pool) {
    (void)pool;
    return NULL;
}

#else

#include <pthread.h>
#include <sched.h>
#include <time.h>

/* How long a thread that has nothing to do keeps watching for work (the next job, or the
 * other threads finishing theirs) before it sleeps on a condition variable. Waking a
 * sleeping thread takes some tens of microseconds on a virtual machine (its idle vCPU is
 * halted), and most jobs of a small network take less than that: with a watch of 100
 * pauses (a few microseconds) MobileNet-SSD at 320x320 ran 7.4 ms on two threads against
 * 5.3 ms on one, and ResNet-50 gained 1.25x; watching 200 us, 3.3-3.8 ms and 1.7x. After
 * MEGCC_POOL_YIELD_AFTER_US the watcher yields its core at each look (sched_yield), so on a
 * machine with more runnable threads than cores it does not hold a core another thread
 * needs. Build with -DMEGCC_POOL_SPIN_US=N to tune (0: sleep at once). */
#ifndef MEGCC_POOL_SPIN_US
#define MEGCC_POOL_SPIN_US 200
#endif
#ifndef MEGCC_POOL_YIELD_AFTER_US
#define MEGCC_POOL_YIELD_AFTER_US 50
#endif

#if defined(__x86_64__) || defined(__i386__)
#define mgc_pause() __asm__ __volatile__("pause")
#elif defined(__aarch64__) || (defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7)
#define mgc_pause() __asm__ __volatile__("yield")
#else
#define mgc_pause() ((void)0)
#endif

/* GCC/Clang atomics. A job's fields are written before the release store of `claim` that
 * posts it, and read by a worker only after its acquire compare-and-swap of `claim` won a
 * part: the job cannot end while a won part is unfinished, so the fields stay put. */
#define mgc_load(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define mgc_store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* `claim` packs the job's generation (high 32 bits), its number of parts (16 bits) and the
 * next part to hand out (16 bits): one word, so a thread can never take a part of a job
 * other than the one it looked at. */
#define CLAIM_GEN(c) ((uint32_t)((c) >> 32))
#define CLAIM_PARTS(c) ((int32_t)(((c) >> 16) & 0xffffu))
#define CLAIM_NEXT(c) ((int32_t)((c)&0xffffu))

/* The words one thread writes while others watch them each get a cache line of their own
 * (and the pool as a whole is aligned to one), so a watching thread's reads do not keep
 * pulling away a line that a busy thread, or the network beside the pool, writes. */
#define MGC_LINE 128

/* A job of n units is cut into at most this many parts per thread. With one part per
 * thread, a job took as long as its slowest thread: on a 2-core virtual machine where the
 * second core was shared with another busy thread, MobileNetV2 ran 14 ms on two threads
 * against 8.5 ms on one. With four per thread the free thread takes the parts the busy one
 * has not reached (the same run: 7 ms). With sixteen, a job of up to 16 units per thread
 * (a GEMM's 10-20 column panels, Winograd's tile ranges) gets one part per unit: cut into
 * four per thread, 10 panels made parts of 1 and 2, and whoever took the last 2 finished
 * alone (idle 10-12 % of two threads' time on such layers, 3-4 % with sixteen). Parts are
 * units of the kernel's own choosing and each is computed the same way whoever runs it, so
 * outputs do not change. */
#ifndef MEGCC_POOL_PARTS_PER_THREAD
#define MEGCC_POOL_PARTS_PER_THREAD 16
#endif

/* -DMEGCC_POOL_STATS: the pool counts its jobs and parts and times, per thread, the parts
 * it ran and, for the caller, the jobs from post to finish; it prints them to stderr when
 * destroyed (benchmarks/layer_profile.py --pool-stats). A diagnostic: off by default. */
#ifdef MEGCC_POOL_STATS
#include <stdio.h>
#define MGC_STATS_THREADS 16
#endif

struct mgc_pool {
    uint64_t claim;      /* atomic: generation | parts | next part */
    char pad_claim[MGC_LINE - sizeof(uint64_t)];
    int32_t finished;    /* atomic: parts of the current job done */
    char pad_finished[MGC_LINE - sizeof(int32_t)];
    /* the current job: written by the caller before it posts it in `claim` */
    megcc_range_fn fn;
    void *arg;
    int32_t n;
    uint32_t posted;     /* the caller's own count of the jobs it posted */
    int32_t stop;        /* atomic */
    int32_t sleepers;    /* under mu: workers waiting on `wake` */
    int32_t caller_waits;/* under mu: the caller waits on `done` */
    megcc_parallel par;  /* par.user = the pool */
    megcc_hooks hooks;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t *workers;
    int32_t n_workers;
    int32_t started;     /* atomic: workers that have started */
#ifdef MEGCC_POOL_STATS
    int64_t jobs, parts, job_ns, busy_ns[MGC_STATS_THREADS];
#endif
    char pad_end[MGC_LINE];
};

static int64_t now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

#ifdef MEGCC_POOL_STATS
static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}
#endif

/* Watch `ready` for MEGCC_POOL_SPIN_US (pausing, then yielding the core); 1 if it came
 * true. The clock is read once per 32 pauses: a pause is some tens of cycles. */
static int watch(mgc_pool *pool, int (*ready)(mgc_pool *, const void *), const void *arg) {
    int64_t start, waited;
    int32_t i;
    if (MEGCC_POOL_SPIN_US <= 0) return ready(pool, arg);
    start = now_us();
    for (;;) {
        for (i = 0; i < 32; i++) {
            if (ready(pool, arg)) return 1;
            mgc_pause();
        }
        waited = now_us() - start;
        if (waited >= MEGCC_POOL_SPIN_US) return ready(pool, arg);
        if (waited >= MEGCC_POOL_YIELD_AFTER_US) sched_yield();
    }
}

/* Take the next part of job `gen`: its index, or -1 when every part is taken (or a newer
 * job is posted). *parts gets the job's number of parts. */
static int32_t claim_part(mgc_pool *pool, uint32_t gen, int32_t *parts) {
    uint64_t c = mgc_load(&pool->claim);
    for (;;) {
        if (CLAIM_GEN(c) != gen || CLAIM_NEXT(c) >= CLAIM_PARTS(c)) return -1;
        if (__atomic_compare_exchange_n(&pool->claim, &c, c + 1, 1, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            *parts = CLAIM_PARTS(c);
            return CLAIM_NEXT(c);
        }
    }
}

/* Run every part of job `gen` this thread can still take. Parts are taken, not assigned:
 * a thread that is late (asleep, or descheduled on a busy machine) leaves its share to
 * whoever is running, so a job never waits for a thread that has not started. Which thread
 * runs a part does not change what the part computes. */
static void run_parts(mgc_pool *pool, uint32_t gen, int32_t self) {
    int32_t part, parts = 0, begin, end;
    (void)self;
    while ((part = claim_part(pool, gen, &parts)) >= 0) {
#ifdef MEGCC_POOL_STATS
        const int64_t t0 = now_ns();
#endif
        megcc_parallel_split(pool->n, parts, part, &begin, &end);
        pool->fn(pool->arg, begin, end);
#ifdef MEGCC_POOL_STATS
        if (self < MGC_STATS_THREADS)
            __atomic_add_fetch(&pool->busy_ns[self], now_ns() - t0, __ATOMIC_RELAXED);
        __atomic_add_fetch(&pool->parts, 1, __ATOMIC_RELAXED);
#endif
        if (__atomic_add_fetch(&pool->finished, 1, __ATOMIC_ACQ_REL) == parts) {
            pthread_mutex_lock(&pool->mu);
            if (pool->caller_waits) pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

static int job_posted(mgc_pool *pool, const void *seen) {
    return CLAIM_GEN(mgc_load(&pool->claim)) != *(const uint32_t *)seen ||
           mgc_load(&pool->stop);
}

/* Wait until a job newer than `seen` is posted or the pool stops. */
static void wait_for_job(mgc_pool *pool, uint32_t seen) {
    if (watch(pool, job_posted, &seen)) return;
    pthread_mutex_lock(&pool->mu);
    pool->sleepers++;
    while (!job_posted(pool, &seen)) pthread_cond_wait(&pool->wake, &pool->mu);
    pool->sleepers--;
    pthread_mutex_unlock(&pool->mu);
}

static void *worker_main(void *p) {
    mgc_pool *pool = (mgc_pool *)p;
    /* a number of its own for the statistics (the caller is 0) */
    const int32_t self = __atomic_add_fetch(&pool->started, 1, __ATOMIC_RELAXED);
    uint32_t seen = 0; /* generation 0 posts nothing; a late starter still sees job 1 */
    for (;;) {
        wait_for_job(pool, seen);
        if (mgc_load(&pool->stop)) break;
        seen = CLAIM_GEN(mgc_load(&pool->claim));
        run_parts(pool, seen, self);
    }
    return NULL;
}

typedef struct {
    int32_t parts;
} mgc_job_size;

static int job_finished(mgc_pool *pool, const void *size) {
    return mgc_load(&pool->finished) == ((const mgc_job_size *)size)->parts;
}

static void pool_run(const megcc_parallel *par, int32_t n, megcc_range_fn fn, void *arg) {
    mgc_pool *pool = (mgc_pool *)par->user;
    mgc_job_size size;
    const uint32_t gen = ++pool->posted;
#ifdef MEGCC_POOL_STATS
    const int64_t t0 = now_ns();
#endif
    size.parts = n < MEGCC_POOL_PARTS_PER_THREAD * par->threads
                     ? n : MEGCC_POOL_PARTS_PER_THREAD * par->threads;
    pool->fn = fn;
    pool->arg = arg;
    pool->n = n;
    mgc_store(&pool->finished, 0);
    pthread_mutex_lock(&pool->mu);
    mgc_store(&pool->claim, (uint64_t)gen << 32 | (uint64_t)size.parts << 16);
    if (pool->sleepers) pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    run_parts(pool, gen, 0);
    if (!watch(pool, job_finished, &size)) {
        pthread_mutex_lock(&pool->mu);
        pool->caller_waits = 1;
        while (!job_finished(pool, &size)) pthread_cond_wait(&pool->done, &pool->mu);
        pool->caller_waits = 0;
        pthread_mutex_unlock(&pool->mu);
    }
#ifdef MEGCC_POOL_STATS
    pool->job_ns += now_ns() - t0;
    pool->jobs++;
#endif
}

static void stop_workers(mgc_pool *pool, int32_t started) {
    int32_t i;
    pthread_mutex_lock(&pool->mu);
    mgc_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (i = 0; i < started; i++) pthread_join(pool->workers[i], NULL);
}

megcc_status mgc_pool_create(const megcc_hooks *hooks, uint32_t threads, mgc_pool **out) {
    mgc_pool *pool;
    int32_t i;
    *out = NULL;
    if (threads < 2 || threads > 1024) return MEGCC_ERR_INVALID_ARG;
    pool = (mgc_pool *)mgc_alloc(hooks, sizeof *pool, MGC_LINE);
    if (!pool) return MEGCC_ERR_NO_MEMORY;
    memset(pool, 0, sizeof *pool);
    pool->hooks = *hooks;
    pool->n_workers = (int32_t)threads - 1;
    pool->workers = (pthread_t *)mgc_alloc(hooks, sizeof(pthread_t) * (size_t)pool->n_workers,
                                           16);
    if (!pool->workers) {
        mgc_free(hooks, pool);
        return MEGCC_ERR_NO_MEMORY;
    }
    if (pthread_mutex_init(&pool->mu, NULL) != 0) goto no_sync;
    if (pthread_cond_init(&pool->wake, NULL) != 0) {
        pthread_mutex_destroy(&pool->mu);
        goto no_sync;
    }
    if (pthread_cond_init(&pool->done, NULL) != 0) {
        pthread_cond_destroy(&pool->wake);
        pthread_mutex_destroy(&pool->mu);
        goto no_sync;
    }
    pool->par.run = pool_run;
    pool->par.threads = (int32_t)threads;
    pool->par.user = pool;
    for (i = 0; i < pool->n_workers; i++) {
        if (pthread_create(&pool->workers[i], NULL, worker_main, pool) != 0) {
            stop_workers(pool, i);
            pool->n_workers = 0;
            mgc_pool_destroy(pool);
            return MEGCC_ERR_UNSUPPORTED;
        }
    }
    *out = pool;
    return MEGCC_OK;
no_sync:
    mgc_free(hooks, pool->workers);
    mgc_free(hooks, pool);
    return MEGCC_ERR_UNSUPPORTED;
}

void mgc_pool_destroy(mgc_pool *pool) {
    megcc_hooks hooks;
    if (!pool) return;
    stop_workers(pool, pool->n_workers);
#ifdef MEGCC_POOL_STATS
    {
        int32_t i;
        fprintf(stderr, "pool_stats threads=%d jobs=%lld parts=%lld job_ms=%.3f busy_ms=",
                (int)pool->par.threads, (long long)pool->jobs, (long long)pool->parts,
                (double)pool->job_ns / 1e6);
        for (i = 0; i < pool->par.threads && i < MGC_STATS_THREADS; i++)
            fprintf(stderr, "%s%.3f", i ? "," : "", (double)pool->busy_ns[i] / 1e6);
        fprintf(stderr, "\n");
    }
#endif
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mu);
    hooks = pool->hooks;
    mgc_free(&hooks, pool->workers);
    mgc_free(&hooks, pool);
}

const megcc_parallel *mgc_pool_parallel(const mgc_pool *pool) { return &pool->par; }

#endif
