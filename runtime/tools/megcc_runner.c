/* megcc_runner: run a compiled model on raw input files; used by the Python side (host and
 * emulator runs) and handy by hand.
 *
 *   megcc_runner MODEL.tiny IN_DIR OUT_DIR [-p plan] [-w warmup] [-t iters] [--profile]
 *
 * Reads IN_DIR/input_<i>.bin (raw little-endian, exactly the tensor's bytes, plan input
 * order), runs, writes OUT_DIR/output_<i>.bin. With -t prints
 * "latency_ms min=<..> median=<..>"; with --profile one run (N with --profile-runs N) prints
 * "profile <instr> <kernel> <microseconds>" per instruction. Any error: one line on stderr,
 * exit status 1.
 * --cpu-clock: time with the thread's CPU clock instead of the monotonic one (POSIX hosts):
 * on a shared, loaded machine wall-clock times include other processes' time slices.
 * --threads N: run the kernels on N threads (megcc_network_set_threads).
 * -p: the plan to run (default: the model's first plan this build runs).
 * -s I:D0,D1,...: run input I at that shape (megcc_network_set_input_shape; a dynamic plan,
 * or the static plan compiled for it); then prints "output_shape <i> D0,D1,..." per output. */
#if defined(__unix__) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L /* clock_gettime, CLOCK_THREAD_CPUTIME_ID */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "megcc/megcc.h"

static void die(const char *what, const char *detail) {
    fprintf(stderr, "megcc_runner: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static long parse_count(const char *flag, const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1000000) die("bad number for", flag);
    return v;
}

static void read_input(const char *dir, unsigned i, void *dst, size_t want) {
    char path[4096];
    FILE *f;
    long len = 0;
    snprintf(path, sizeof path, "%s/input_%u.bin", dir, i);
    f = fopen(path, "rb");
    if (!f) die("cannot open input", path);
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        die("cannot size input", path);
    if ((unsigned long)len != want) {
        char msg[4200];
        snprintf(msg, sizeof msg, "%s has %ld bytes, input %u needs %lu", path, len, i,
                 (unsigned long)want);
        fclose(f);
        die("input size mismatch", msg);
    }
    if (want && fread(dst, 1, want, f) != want) die("short read on", path);
    fclose(f);
}

static void write_output(const char *dir, unsigned i, const void *src, size_t n) {
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/output_%u.bin", dir, i);
    f = fopen(path, "wb");
    if (!f) die("cannot create output", path);
    if ((n && fwrite(src, 1, n, f) != n) || fclose(f) != 0) die("cannot write output", path);
}

static void print_profile(void *user, uint32_t instr, const char *kernel, uint64_t ns) {
    (void)user;
    printf("profile %u %s %.3f\n", (unsigned)instr, kernel, (double)ns / 1000.0);
}

#if defined(__unix__)
#include <time.h>
#endif
#if defined(CLOCK_THREAD_CPUTIME_ID)
static uint64_t cpu_time_ns(void *user) {
    struct timespec ts;
    (void)user;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

#define MAX_SHAPES 64

typedef struct {
    uint32_t input, ndim;
    int32_t dims[MEGCC_MAX_DIMS];
} shape_arg;

/* "I:D0,D1,..." (a rank-0 shape is "I:") */
static void parse_shape(const char *s, shape_arg *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != ':' || v < 0 || v > 0xFFFF) die("bad -s (want I:D0,D1,...)", s);
    out->input = (uint32_t)v;
    out->ndim = 0;
    s = end + 1;
    while (*s) {
        if (out->ndim == MEGCC_MAX_DIMS) die("too many dimensions in -s", s);
        v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7FFFFFFF || (*end && *end != ','))
            die("bad -s dimension", s);
        out->dims[out->ndim++] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void forward(megcc_network *net) {
    if (megcc_network_forward(net) != MEGCC_OK)
        die("forward failed", megcc_network_last_error(net));
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *in_dir = NULL, *out_dir = NULL;
    long plan = -1, warmup = 0, iters = 0, profile_runs = 1, threads = 1;
    int profile = 0, cpu_clock = 0, npos = 0, a;
    megcc_model *model;
    megcc_network *net;
    megcc_hooks hooks;
    unsigned i;
    shape_arg shapes[MAX_SHAPES];
    int n_shapes = 0;
    for (a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--profile")) {
            profile = 1;
        } else if (!strcmp(argv[a], "-s")) {
            if (a + 1 >= argc) die("missing value for", argv[a]);
            if (n_shapes == MAX_SHAPES) die("too many -s options", NULL);
            parse_shape(argv[++a], &shapes[n_shapes++]);
        } else if (!strcmp(argv[a], "-p") || !strcmp(argv[a], "-w") || !strcmp(argv[a], "-t")) {
            long v;
            if (a + 1 >= argc) die("missing value for", argv[a]);
            v = parse_count(argv[a], argv[a + 1]);
            if (argv[a][1] == 'p') plan = v;
            else if (argv[a][1] == 'w') warmup = v;
            else iters = v;
            a++;
        } else if (strcmp(argv[a], "--profile-runs") == 0) {
            if (a + 1 >= argc) die("missing value for", argv[a]);
            profile_runs = parse_count(argv[a], argv[a + 1]);
            if (profile_runs < 1) die("bad number for", argv[a]);
            a++;
        } else if (strcmp(argv[a], "--threads") == 0) {
            if (a + 1 >= argc) die("missing value for", argv[a]);
            threads = parse_count(argv[a], argv[a + 1]);
            if (threads < 1) die("bad number for", argv[a]);
            a++;
        } else if (strcmp(argv[a], "--cpu-clock") == 0) {
            cpu_clock = 1;
        } else if (argv[a][0] == '-' && argv[a][1]) {
            die("unknown option", argv[a]);
        } else {
            if (npos == 0) model_path = argv[a];
            else if (npos == 1) in_dir = argv[a];
            else if (npos == 2) out_dir = argv[a];
            else die("too many arguments", argv[a]);
            npos++;
        }
    }
    if (npos != 3)
        die("usage", "megcc_runner MODEL.tiny IN_DIR OUT_DIR [-p plan] [-w warmup] [-t iters] "
                     "[--profile [--profile-runs N]] [--cpu-clock] [--threads N] "
                     "[-s I:D0,D1,...]");
    if (megcc_default_hooks(&hooks) != MEGCC_OK) die("no default hooks", NULL);
    if (cpu_clock) {
#if defined(CLOCK_THREAD_CPUTIME_ID)
        hooks.time_ns = cpu_time_ns;
#else
        die("--cpu-clock is not available on this platform", NULL);
#endif
    }
    if (megcc_model_load_from_path_ex(model_path, &hooks, &model) != MEGCC_OK)
        die("cannot load model", megcc_last_error());
    if (megcc_network_create(model, NULL, 0, &net) != MEGCC_OK)
        die("cannot create network", megcc_last_error());
    /* without -p: the network's default plan (the first this build can run) */
    if (plan >= 0 && megcc_network_select_plan(net, (uint32_t)plan) != MEGCC_OK)
        die("cannot select plan", megcc_network_last_error(net));
    if (megcc_network_set_threads(net, (uint32_t)threads) != MEGCC_OK)
        die("cannot set threads", megcc_network_last_error(net));
    for (a = 0; a < n_shapes; a++)
        if (megcc_network_set_input_shape(net, shapes[a].input, shapes[a].dims,
                                          shapes[a].ndim) != MEGCC_OK)
            die("cannot set input shape", megcc_network_last_error(net));
    for (i = 0; i < megcc_network_num_inputs(net); i++) {
        megcc_tensor_info info;
        void *data = NULL;
        if (megcc_network_input_info(net, i, &info) != MEGCC_OK ||
            !(data = megcc_network_input_data(net, i)))
            die("input shapes refused", megcc_network_last_error(net));
        read_input(in_dir, i, data, info.nbytes);
    }
    for (a = 0; a < warmup; a++) forward(net);
    if (iters > 0) {
        double *ms = (double *)malloc((size_t)iters * sizeof(double));
        if (!ms) die("out of memory", NULL);
        for (a = 0; a < iters; a++) {
            uint64_t t0 = hooks.time_ns(NULL);
            forward(net);
            ms[a] = (double)(hooks.time_ns(NULL) - t0) / 1e6;
        }
        qsort(ms, (size_t)iters, sizeof(double), cmp_double);
        printf("latency_ms min=%.4f median=%.4f\n", ms[0],
               iters % 2 ? ms[iters / 2] : 0.5 * (ms[iters / 2 - 1] + ms[iters / 2]));
        free(ms);
    }
    if (profile) {
        if (megcc_network_set_profiler(net, print_profile, NULL) != MEGCC_OK)
            die("cannot profile", megcc_network_last_error(net));
        /* --profile-runs N: readers take each instruction's minimum, since one run on a
         * loaded machine is noisy */
        for (a = 0; a < profile_runs; a++) forward(net);
        megcc_network_set_profiler(net, NULL, NULL);
    }
    if (iters == 0 && !profile) forward(net);
    for (i = 0; i < megcc_network_num_outputs(net); i++) {
        megcc_tensor_info info;
        megcc_network_output_info(net, i, &info);
        write_output(out_dir, i, megcc_network_output_data(net, i), info.nbytes);
        if (n_shapes) {
            uint32_t k;
            printf("output_shape %u ", i);
            for (k = 0; k < info.ndim; k++) printf(k ? ",%d" : "%d", (int)info.dims[k]);
            printf("\n");
        }
    }
    fflush(stdout);
    megcc_network_destroy(net);
    megcc_model_free(model);
    return 0;
}
