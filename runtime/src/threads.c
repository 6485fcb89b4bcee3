/* The default parallel-for of a network: a pool of pthreads workers (megcc/parallel.h).
 * Hosted POSIX builds only; with MEGCC_NO_THREADS or MEGCC_NO_LIBC_HOOKS (bare metal) there
 * is no pool, and megcc_network_set_threads(n > 1) reports MEGCC_ERR_UNSUPPORTED (an RTOS
 * passes its own megcc_parallel to megcc_network_set_parallel instead).
 *
 * One job at a time, posted under a mutex: the caller publishes (fn, arg, n, parts), bumps
 * the generation and wakes the workers; worker t runs part t (part 0 is the caller's); the
 * caller waits until every worker has checked back in. Only mutex/condvar synchronisation,
 * so the pool is clean under ThreadSanitizer. Memory comes from the model's hooks, once, when
 * the pool is made. */
#if !defined(MEGCC_NO_THREADS) && !defined(MEGCC_NO_LIBC_HOOKS) && \
    (defined(__unix__) || defined(__APPLE__))
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
    /* the current job, guarded by mu */
    uint64_t generation;
    megcc_range_fn fn;
    void *arg;
    int32_t n, parts, pending;
    int stop;
};

static void *worker_main(void *p) {
    mgc_worker *w = (mgc_worker *)p;
    mgc_pool *pool = w->pool;
    uint64_t seen = 0; /* generation 0 posts nothing; a late starter still sees job 1 */
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        megcc_range_fn fn;
        void *arg;
        int32_t n, parts, begin, end;
        while (!pool->stop && pool->generation == seen) pthread_cond_wait(&pool->wake, &pool->mu);
        if (pool->stop) break;
        seen = pool->generation;
        fn = pool->fn;
        arg = pool->arg;
        n = pool->n;
        parts = pool->parts;
        pthread_mutex_unlock(&pool->mu);
        if (w->index < parts) {
            megcc_parallel_split(n, parts, w->index, &begin, &end);
            fn(arg, begin, end);
        }
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0) pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

static void pool_run(const megcc_parallel *par, int32_t n, megcc_range_fn fn, void *arg) {
    mgc_pool *pool = (mgc_pool *)par->user;
    int32_t parts = n < par->threads ? n : par->threads, begin, end;
    pthread_mutex_lock(&pool->mu);
    pool->fn = fn;
    pool->arg = arg;
    pool->n = n;
    pool->parts = parts;
    pool->pending = pool->n_workers;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    megcc_parallel_split(n, parts, 0, &begin, &end);
    fn(arg, begin, end);
    pthread_mutex_lock(&pool->mu);
    while (pool->pending > 0) pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}

static void stop_workers(mgc_pool *pool, int32_t started) {
    int32_t i;
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
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
