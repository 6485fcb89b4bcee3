/* Concurrent LITE_make_default_network + failing loads (issue 17.5): every thread must
 * read back exactly its own last-error message, never one torn by another thread, and
 * ThreadSanitizer must see no shared write (tests/test_runtime_threads.py).
 *
 *   thread_errors_test MODEL.tiny   prints "PASSED <messages checked>" or a failure */
#define _POSIX_C_SOURCE 200112L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lite-c/global_c.h"
#include "lite-c/network_c.h"
#include "megcc/megcc.h"

#define THREADS 4
#define ITERS 400

static unsigned char *g_blob; /* read-only after main starts the threads */
static size_t g_size;

typedef struct {
    int id;
    long checked, wrong;
    char first_wrong[512];
} job;

static void expect(job *j, const char *got, const char *want) {
    j->checked++;
    if (strcmp(got, want) != 0) {
        if (!j->wrong++)
            snprintf(j->first_wrong, sizeof j->first_wrong, "got '%s' want '%s'", got, want);
    }
}

static void *worker(void *arg) {
    job *j = (job *)arg;
    char want[512], path[128];
    int it;
    for (it = 0; it < ITERS; it++) {
        LiteNetwork net = NULL;
        LiteConfig *cfg = default_config();
        size_t n = 64 + (size_t)(j->id * ITERS + it) % (g_size - 64); /* unique per thread */
        if (cfg->device_type != LITE_CPU || cfg->options.var_sanity_check_first_run != 1) {
            j->wrong++;
            continue;
        }
        if (LITE_make_default_network(&net) != 0) {
            j->wrong++;
            continue;
        }
        if (it % 2) { /* truncated buffer: the message names this thread's size */
            if (LITE_load_model_from_mem(net, g_blob, n) == 0) j->wrong++;
            snprintf(want, sizeof want, "header says %lu bytes but the buffer has %lu "
                     "(truncated?)", (unsigned long)g_size, (unsigned long)n);
            expect(j, LITE_get_last_error(), want);
            expect(j, megcc_last_error(), want);
        } else { /* a path that names this thread and iteration */
            snprintf(path, sizeof path, "/nonexistent/megcc-thread-%d/iteration-%d.tiny", j->id,
                     it);
            if (LITE_load_model_from_path(net, path) == 0) j->wrong++;
            snprintf(want, sizeof want, "cannot open '%s'", path);
            expect(j, LITE_get_last_error(), want);
            expect(j, megcc_last_error(), want);
        }
        if (LITE_destroy_network(net) != 0) j->wrong++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    FILE *f;
    long len;
    pthread_t t[THREADS];
    job jobs[THREADS];
    long checked = 0, wrong = 0;
    int i;
    if (argc != 2 || !(f = fopen(argv[1], "rb"))) return 2;
    if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 65 || fseek(f, 0, SEEK_SET)) return 2;
    g_size = (size_t)len;
    g_blob = (unsigned char *)malloc(g_size);
    if (!g_blob || fread(g_blob, 1, g_size, f) != g_size) return 2;
    fclose(f);
    LITE_set_log_level(LITE_ERROR + 0); /* configuration first, then threads */
    memset(jobs, 0, sizeof jobs);
    for (i = 0; i < THREADS; i++) {
        jobs[i].id = i;
        if (pthread_create(&t[i], NULL, worker, &jobs[i])) return 3;
    }
    for (i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    for (i = 0; i < THREADS; i++) {
        checked += jobs[i].checked;
        wrong += jobs[i].wrong;
        if (jobs[i].wrong) printf("thread %d: %ld wrong, first: %s\n", i, jobs[i].wrong,
                                  jobs[i].first_wrong);
    }
    free(g_blob);
    if (wrong || checked != (long)THREADS * ITERS * 2) {
        printf("FAILED %ld of %ld\n", wrong, checked);
        return 1;
    }
    printf("PASSED %ld\n", checked);
    return 0;
}
