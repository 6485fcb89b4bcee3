/* The default parallel-for of a network: a pool of pthreads workers (megcc/parallel.h).
 * Hosted POSIX builds only; with MEGCC_NO_THREADS or MEGCC_NO_LIBC_HOOKS (bare metal) there
 * is no pool, and megcc_network_set_threads(n > 1) reports MEGCC_ERR_UNSUPPORTED (an RTOS
 * passes its own megcc_parallel to megcc_network_set_parallel instead).
 *
 * One job at a time: the caller writes (fn, arg, n, parts), publishes it by bumping the
 * generation (release store; waking sleeping workers under the mutex) and runs part 0;
 * worker t runs part t; the caller waits until `pending` drops to 0. Both sides spin a
 * little before sleeping on a condition variable. GCC/Clang atomics (hosts with pthreads
 * have them), acquire/release pairs only, so the pool is clean under ThreadSanitizer.
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

/* Spin this many rounds (a pause each) watching for the next job or for the workers to
 * finish, before sleeping on a condition variable (a wake-up costs about ten microseconds).
 * Short by default: measured on a 2-core machine shared with a dozen busy processes, a
 * dispatch cost 10 us with no spinning, 12 us with 100 rounds and 35 us with 300 (a spinning
 * thread holds a core its partner needs); on idle cores longer spins pay. Build with
 * -DMEGCC_POOL_SPIN=N to tune. */
#ifndef MEGCC_POOL_SPIN
#define MEGCC_POOL_SPIN 100
#endif
#define MGC_SPIN_ROUNDS MEGCC_POOL_SPIN

#if defined(__x86_64__) || defined(__i386__)
#define mgc_pause() __asm__ __volatile__("pause")
#elif defined(__aarch64__) || (defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7)
#define mgc_pause() __asm__ __volatile__("yield")
#else
#define mgc_pause() ((void)0)
#endif

/* The two words read without the mutex (GCC/Clang atomics; the job fields are published by
 * the release store of `generation` and read after its acquire load). */
#define mgc_load(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define mgc_store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

typedef struct mgc_worker {
    mgc_pool *pool;
    int32_t index; /* 1.. : the part it runs */
    pthread_t thread;
} mgc_worker;

struct mgc_pool {
    megcc_parallel par; /* par.user = the pool */
    megcc_hooks hooks;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    mgc_worker *workers;
    int32_t n_workers;
    /* the current job: written by the caller before it publishes `generation` */
    megcc_range_fn fn;
    void *arg;
    int32_t n, parts;
    uint64_t generation; /* atomic */
    int32_t pending;     /* atomic: workers not yet done with the current job */
    int32_t stop;        /* atomic */
    int32_t sleepers;    /* under mu: workers waiting on `wake` */
    int32_t caller_waits;/* under mu: the caller waits on `done` */
};

/* Wait until the generation differs from `seen` or the pool stops. */
static void wait_for_job(mgc_pool *pool, uint64_t seen) {
    int32_t spin;
    for (spin = 0; spin < MGC_SPIN_ROUNDS; spin++) {
        if (mgc_load(&pool->generation) != seen || mgc_load(&pool->stop)) return;
        mgc_pause();
    }
    pthread_mutex_lock(&pool->mu);
    pool->sleepers++;
    while (mgc_load(&pool->generation) == seen && !mgc_load(&pool->stop))
        pthread_cond_wait(&pool->wake, &pool->mu);
    pool->sleepers--;
    pthread_mutex_unlock(&pool->mu);
}

static void *worker_main(void *p) {
    mgc_worker *w = (mgc_worker *)p;
    mgc_pool *pool = w->pool;
    uint64_t seen = 0; /* generation 0 posts nothing; a late starter still sees job 1 */
    for (;;) {
        int32_t begin, end;
        wait_for_job(pool, seen);
        if (mgc_load(&pool->stop)) break;
        seen = mgc_load(&pool->generation);
        if (w->index < pool->parts) {
            megcc_parallel_split(pool->n, pool->parts, w->index, &begin, &end);
            pool->fn(pool->arg, begin, end);
        }
        if (__atomic_sub_fetch(&pool->pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&pool->mu);
            if (pool->caller_waits) pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
    return NULL;
}

static void pool_run(const megcc_parallel *par, int32_t n, megcc_range_fn fn, void *arg) {
    mgc_pool *pool = (mgc_pool *)par->user;
    int32_t parts = n < par->threads ? n : par->threads, begin, end, spin;
    pool->fn = fn;
    pool->arg = arg;
    pool->n = n;
    pool->parts = parts;
    mgc_store(&pool->pending, pool->n_workers);
    pthread_mutex_lock(&pool->mu);
    mgc_store(&pool->generation, pool->generation + 1);
    if (pool->sleepers) pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    megcc_parallel_split(n, parts, 0, &begin, &end);
    fn(arg, begin, end);
    for (spin = 0; spin < MGC_SPIN_ROUNDS && mgc_load(&pool->pending); spin++) mgc_pause();
    if (mgc_load(&pool->pending)) {
        pthread_mutex_lock(&pool->mu);
        pool->caller_waits = 1;
        while (mgc_load(&pool->pending)) pthread_cond_wait(&pool->done, &pool->mu);
        pool->caller_waits = 0;
        pthread_mutex_unlock(&pool->mu);
    }
}

static void stop_workers(mgc_pool *pool, int32_t started) {
    int32_t i;
    pthread_mutex_lock(&pool->mu);
    mgc_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (i = 0; i < started; i++) pthread_join(pool->workers[i].thread, NULL);
}

megcc_status mgc_pool_create(const megcc_hooks *hooks, uint32_t threads, mgc_pool **out) {
    mgc_pool *pool;
    int32_t i;
    *out = NULL;
    if (threads < 2 || threads > 1024) return MEGCC_ERR_INVALID_ARG;
    pool = (mgc_pool *)mgc_alloc(hooks, sizeof *pool, 16);
    if (!pool) return MEGCC_ERR_NO_MEMORY;
    memset(pool, 0, sizeof *pool);
    pool->hooks = *hooks;
    pool->n_workers = (int32_t)threads - 1;
    pool->workers = (mgc_worker *)mgc_alloc(hooks, sizeof(mgc_worker) * (size_t)pool->n_workers,
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
        pool->workers[i].pool = pool;
        pool->workers[i].index = i + 1;
        if (pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]) != 0) {
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
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mu);
    hooks = pool->hooks;
    mgc_free(&hooks, pool->workers);
    mgc_free(&hooks, pool);
}

const megcc_parallel *mgc_pool_parallel(const mgc_pool *pool) { return &pool->par; }

#endif
