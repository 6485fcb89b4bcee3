/* libFuzzer target: load a model blob from the fuzzer's bytes and, if it loads, run every
 * plan (at most MAX_PLANS) on a deterministic input with a capped arena.
 *
 * Build with fuzz/build.sh KERNELS_C OUT (clang -fsanitize=fuzzer,address,undefined over
 * the runtime sources, KERNELS_C and this file), where KERNELS_C is the kernels.c of the
 * seed bundle (fuzz/make_seeds.py).
 *
 * Two fix-ups let mutations reach the deep checks instead of dying at the first two: the
 * header's kernel_set_id is set to the linked one and the CRC-32 is recomputed (both
 * checks are one comparison each and are covered by tests/test_runtime_loader.py). Every
 * other field is the fuzzer's.
 *
 * MEGCC_FUZZ_VERBOSE=1 prints one line per input (load status, forwards run) — the smoke
 * test uses it to prove the seeds load and run, i.e. the fuzzer starts from deep states. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "megcc/megcc.h"
#include "../runtime/src/internal.h" /* mgc_crc32, mgc_rd32: same code as the loader */

#define MAX_PLANS 4
#define ARENA_CAP (8u << 20)  /* bytes; bigger plans are loaded but not run */
#define ALLOC_CAP (64u << 20) /* no single hook allocation above this */

/* Hooks: libc, but refusing absurd sizes so a hostile size cannot exhaust the fuzzer's
 * memory (the runtime must handle NULL from alloc anyway: MEGCC_ERR_NO_MEMORY). */
static void *cap_alloc(void *user, size_t size, size_t align) {
    void *p = NULL;
    (void)user;
    if (size > ALLOC_CAP) return NULL;
    if (align < sizeof(void *)) align = sizeof(void *);
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}
static void cap_free(void *user, void *p) {
    (void)user;
    free(p);
}

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

/* Deterministic input: small floats, or small integers (in range for index inputs on
 * even plans, arbitrary on odd ones so kernels' runtime index checks run too). */
static void fill_input(megcc_network *net, uint32_t i, uint32_t plan) {
    megcc_tensor_info info;
    uint8_t *data = (uint8_t *)megcc_network_input_data(net, i);
    uint32_t seed = 12345u + i + 77u * plan;
    size_t k;
    if (!data || megcc_network_input_info(net, i, &info) != MEGCC_OK) return;
    if (info.dtype == MEGCC_FLOAT32) {
        for (k = 0; k + 4 <= info.nbytes; k += 4) {
            float v = (float)((int)(lcg(&seed) >> 24) - 128) / 64.0f;
            memcpy(data + k, &v, 4);
        }
    } else if (plan % 2 == 0) {
        memset(data, 0, info.nbytes);
    } else {
        for (k = 0; k < info.nbytes; k++) data[k] = (uint8_t)(lcg(&seed) >> 24);
    }
}

/* Forward once and read every output, so a bad pointer or size shows up under ASan. */
static void forward_and_read(megcc_network *net, uint32_t plan, int *forwards) {
    megcc_tensor_info info;
    uint32_t i;
    for (i = 0; i < megcc_network_num_inputs(net); i++) fill_input(net, i, plan);
    if (megcc_network_forward(net) != MEGCC_OK) return;
    ++*forwards;
    for (i = 0; i < megcc_network_num_outputs(net); i++) {
        const uint8_t *o = (const uint8_t *)megcc_network_output_data(net, i);
        volatile uint8_t sink = 0;
        size_t k;
        if (o && megcc_network_output_info(net, i, &info) == MEGCC_OK)
            for (k = 0; k < info.nbytes; k++) sink ^= o[k];
        (void)sink;
    }
}

/* A dynamic plan (docs/dynamic-shapes.md) also runs at random shapes around its hint:
 * each round picks one input dimension and a new value in [0, 2 d + 4) for it and for
 * every input dimension on the same axis with the same hint (as dimensions sharing a
 * symbol must change together); the last round changes every dimension on its own. So
 * bounds, guards and inconsistent inputs are refused, and accepted shapes re-place the
 * arena (grown through the hooks) and run. */
static void run_shapes(const megcc_model *m, megcc_network *net, uint32_t plan, uint32_t salt,
                       int *forwards) {
    uint32_t round, i, k, seed = salt, n_in = megcc_network_num_inputs(net);
    for (round = 0; round < 4 && n_in; round++) {
        size_t need = 0;
        megcc_tensor_info pick;
        uint32_t r = lcg(&seed), axis, v;
        if (megcc_model_plan_input_info(m, plan, r % n_in, &pick) != MEGCC_OK || !pick.ndim)
            continue;
        axis = (r >> 8) % pick.ndim;
        v = (lcg(&seed) >> 8) % (2u * (uint32_t)pick.dims[axis] + 4u);
        for (i = 0; i < n_in; i++) {
            megcc_tensor_info info;
            int32_t dims[MEGCC_MAX_DIMS];
            if (megcc_model_plan_input_info(m, plan, i, &info) != MEGCC_OK) return;
            for (k = 0; k < info.ndim; k++) {
                dims[k] = info.dims[k];
                if (round == 3)
                    dims[k] = (int32_t)((lcg(&seed) >> 8) % (2u * (uint32_t)info.dims[k] + 4u));
                else if (k == axis && info.dims[k] == pick.dims[axis])
                    dims[k] = (int32_t)v;
            }
            (void)megcc_network_set_input_shape(net, i, dims, info.ndim);
        }
        if (megcc_network_required_arena_size(net, &need) != MEGCC_OK || need > ARENA_CAP) {
            (void)megcc_network_forward(net); /* must refuse again, cleanly */
            continue;
        }
        forward_and_read(net, plan, forwards);
    }
}

static int run_plan(const megcc_model *m, uint32_t plan, uint32_t salt, int *forwards) {
    megcc_network *net = NULL;
    size_t arena = megcc_network_arena_size(m, (int)plan);
    if (arena > ARENA_CAP) return 0;
    if (megcc_network_create(m, NULL, 0, &net) != MEGCC_OK) return 0;
    if (megcc_network_select_plan(net, plan) == MEGCC_OK) {
        forward_and_read(net, plan, forwards);
        if (megcc_model_plan_is_dynamic(m, plan)) run_shapes(m, net, plan, salt, forwards);
        (void)megcc_network_last_error(net);
    }
    megcc_network_destroy(net);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int verbose = -1;
    megcc_hooks hooks = {NULL, cap_alloc, cap_free, NULL, NULL};
    megcc_model *m = NULL;
    megcc_status st;
    uint8_t *buf = NULL;
    int forwards = 0;
    uint32_t plan, n;
    if (verbose < 0) verbose = getenv("MEGCC_FUZZ_VERBOSE") != NULL;
    /* Exactly `size` bytes, 64-byte aligned: the in-place (copy = 0) path, and ASan sees
     * any read past the end of the blob. */
    if (posix_memalign((void **)&buf, 64, size ? size : 1) != 0) return 0;
    if (size) memcpy(buf, data, size);
    if (size >= 64) {
        uint64_t id = megcc_kernel_set_id;
        uint32_t crc;
        memcpy(buf + 16, &id, 8); /* host is little-endian (the loader refuses otherwise) */
        crc = mgc_crc32(buf + 16, size - 16);
        memcpy(buf + 12, &crc, 4);
    }
    mgc_fail_global(MEGCC_OK, "%s", ""); /* clear: a rejection must write its own message */
    st = megcc_model_load_from_memory_ex(buf, size, 0, &hooks, &m);
    if (st == MEGCC_OK) {
        n = megcc_model_num_plans(m);
        for (plan = 0; plan < n && plan < MAX_PLANS; plan++)
            run_plan(m, plan, mgc_rd32(buf + 12), &forwards);
        megcc_model_free(m);
    } else if (megcc_last_error()[0] == '\0') {
        abort(); /* every rejection must come with a message */
    }
    if (verbose)
        fprintf(stderr, "megcc-fuzz: status %d forwards %d %s\n", (int)st, forwards,
                st ? megcc_last_error() : "");
    free(buf);
    return 0;
}
