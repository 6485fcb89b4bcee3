/* Robustness harness for the loader, built with ASan+UBSan by tests/test_runtime_loader.py.
 *
 *   load_harness truncate BLOB   every prefix [0, n) must fail to load; full n must load
 *   load_harness cases FILE      FILE = records {u32 flags, u32 len, bytes[len]};
 *                                prints "<case> <status>" per record
 *   load_harness time BLOB           loads BLOB in place 9 times; prints
 *                                "<status> <best seconds per load>" (linear-cost tests)
 *
 * Each buffer is loaded in place from an exactly-sized, 64-byte aligned heap block (so ASan
 * sees any read past the end) and again with copy=1. When a load succeeds the harness
 * walks every plan and its I/O through the public API; with flags & 1 it also runs
 * forward() on every plan (only for blobs whose kernel params are known to be sane: the
 * loader cannot check what a kernel does with its params). */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "megcc/megcc.h"

static unsigned char *aligned_copy(const unsigned char *src, size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1) != 0) {
        fprintf(stderr, "posix_memalign failed\n");
        exit(2);
    }
    if (n) memcpy(p, src, n);
    return (unsigned char *)p;
}

static void exercise(megcc_model *m, int forward) {
    megcc_network *net;
    uint32_t p, i;
    if (megcc_network_create(m, NULL, 0, &net) != MEGCC_OK) {
        fprintf(stderr, "create failed on a valid model: %s\n", megcc_last_error());
        exit(3);
    }
    for (p = 0; p < megcc_model_num_plans(m); p++) {
        if (megcc_network_select_plan(net, p) != MEGCC_OK) exit(4);
        for (i = 0; i < megcc_network_num_inputs(net); i++) {
            megcc_tensor_info info;
            megcc_network_input_info(net, i, &info);
            memset(megcc_network_input_data(net, i), 0, info.nbytes);
        }
        for (i = 0; i < megcc_network_num_outputs(net); i++) {
            megcc_tensor_info info;
            megcc_network_output_info(net, i, &info);
            (void)megcc_network_output_data(net, i);
        }
        if (forward) (void)megcc_network_forward(net);
    }
    megcc_network_destroy(net);
}

/* Returns the in-place status; checks copy=1 agrees. */
static int load_both(const unsigned char *data, size_t n, int forward) {
    unsigned char *buf = aligned_copy(data, n);
    megcc_model *m = NULL;
    megcc_status s0, s1;
    s0 = megcc_model_load_from_memory(buf, n, 0, &m);
    if (s0 == MEGCC_OK) {
        exercise(m, forward);
        megcc_model_free(m);
    } else if (m || !megcc_last_error()[0]) {
        fprintf(stderr, "failed load left a model or no message\n");
        exit(5);
    }
    s1 = megcc_model_load_from_memory(buf, n, 1, &m);
    if (s1 == MEGCC_OK) megcc_model_free(m);
    if (s0 != s1) {
        fprintf(stderr, "copy=0 status %d != copy=1 status %d\n", (int)s0, (int)s1);
        exit(6);
    }
    free(buf);
    return (int)s0;
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long len;
    if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) exit(7);
    buf = (unsigned char *)malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) exit(7);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

int main(int argc, char **argv) {
    size_t n, k;
    unsigned char *data;
    if (argc != 3) return 2;
    data = read_file(argv[2], &n);
    if (!strcmp(argv[1], "truncate")) {
        size_t failures = 0;
        for (k = 0; k < n; k++)
            if (load_both(data, k, 0) != MEGCC_OK) failures++;
        printf("truncations %lu failed %lu full %d\n", (unsigned long)n,
               (unsigned long)failures, load_both(data, n, 1));
    } else if (!strcmp(argv[1], "cases")) {
        size_t pos = 0, idx = 0;
        while (pos + 8 <= n) {
            uint32_t flags = rd32(data + pos), len = rd32(data + pos + 4);
            pos += 8;
            if (len > n - pos) return 8;
            printf("%lu %d\n", (unsigned long)idx++, load_both(data + pos, len, (int)(flags & 1)));
            pos += len;
        }
    } else if (!strcmp(argv[1], "time")) {
        unsigned char *buf = aligned_copy(data, n);
        double best = 1e30;
        int st = 0;
        for (k = 0; k < 9; k++) {
            struct timespec t0, t1;
            megcc_model *m = NULL;
            double dt;
            /* the process's CPU time: what the loader costs, whatever else the machine
             * runs (a wall clock on a loaded machine measures the scheduler) */
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
            st = (int)megcc_model_load_from_memory(buf, n, 0, &m);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
            megcc_model_free(m);
            dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            if (dt < best) best = dt;
        }
        printf("%d %.6f\n", st, best);
        free(buf);
    } else {
        return 2;
    }
    free(data);
    return 0;
}
