/* libFuzzer target for the Lite-C API (issue 17): the fuzzer's bytes are an 8-byte
 * script followed by a model blob, and the script decides how the blob is driven:
 *
 *   byte 0  load: 0 LITE_load_model_from_mem (copy), 1 ..._with_shared_mem (in place,
 *           64-byte aligned), 2 LITE_load_model_from_path (written to a temporary file);
 *           bit 2: make the network with LITE_make_network_config(*default_config())
 *   byte 1  actions: bit 0 set a layout, bit 1 caller memory for inputs, bit 2 caller
 *           memory for outputs, bit 3 forward twice, bit 4 a second network sharing the
 *           runtime memory, bit 5 read names through LITE_get_all_*_name
 *   byte 2  layout change: input index (low 4 bits), which dim (high 4 bits)
 *   byte 3  layout change: signed delta of that dim (0 keeps the shape: same plan)
 *   byte 4  caller-memory size delta, signed (0 = exact size; others must be refused)
 *   byte 5  input fill seed; odd: integer inputs zero (in range as indices), even: small
 *           values;  bytes 6-7 reserved
 *
 * As in fuzz_loader.c the blob's kernel_set_id is set to the linked one and its CRC-32
 * fixed, so mutations reach the structural checks and the kernels. Allocations go through
 * capped hooks (LITE_megcc_set_hooks) so hostile sizes fail with NO_MEMORY instead of
 * exhausting the fuzzer. Every failing call must leave a message; every output read goes
 * byte by byte so ASan sees a bad pointer or size.
 *
 * Build: fuzz/build.sh KERNELS_C OUT fuzz_lite.c   (MEGCC_FUZZ_VERBOSE=1: one line per
 * input with the load status and forwards run, for the smoke test). */
#define _POSIX_C_SOURCE 200112L /* posix_memalign, getpid */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lite-c/global_c.h"
#include "lite-c/network_c.h"
#include "lite-c/tensor_c.h"
#include "megcc/megcc.h"
#include "../runtime/src/internal.h" /* mgc_crc32: same code as the loader */

#define SCRIPT 8
#define ALLOC_CAP (16u << 20) /* no single hook allocation above this (arena included) */

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

#define SENTINEL "bad log level 99"

static void need_message(void) {
    if (!LITE_get_last_error()[0]) abort(); /* every failure must say why */
}

/* Leave a known message, so a later failure is seen to write its own (load). */
static void arm_sentinel(void) {
    if (LITE_set_log_level((LiteLogLevel)99) == 0) abort();
}

static void need_own_message(void) {
    need_message();
    if (!strcmp(LITE_get_last_error(), SENTINEL)) abort();
}

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

static size_t elem_size(LiteDataType dt) {
    switch (dt) {
    case LITE_INT8: case LITE_UINT8: return 1;
    case LITE_INT16: case LITE_UINT16: case LITE_HALF: case LITE_MEGCC_BFLOAT16: return 2;
    case LITE_INT64: case LITE_MEGCC_FLOAT64: case LITE_MEGCC_UINT64: return 8;
    case LITE_MEGCC_FLOAT8E4M3FN: case LITE_MEGCC_FLOAT8E4M3FNUZ: case LITE_MEGCC_FLOAT8E5M2:
    case LITE_MEGCC_FLOAT8E5M2FNUZ: case LITE_MEGCC_FLOAT8E8M0: case LITE_MEGCC_FLOAT4E2M1:
    case LITE_MEGCC_INT4: case LITE_MEGCC_UINT4: case LITE_MEGCC_INT2: case LITE_MEGCC_UINT2:
        return 1;
    default: return 4;
    }
}

/* Floats in [-2, 2); integers zero (script byte 5 odd: in range as indices) or in [-8, 8).
 * Integer kernels use C arithmetic, so values that overflow would be UB in the *test*
 * input, not a loader bug (README: known gap, integer overflow); halves are zero. */
static void fill(uint8_t *data, size_t n, LiteDataType dt, uint32_t seed, int zero_ints) {
    size_t k, isz = elem_size(dt);
    if (dt == LITE_FLOAT) {
        for (k = 0; k + 4 <= n; k += 4) {
            float v = (float)((int)(lcg(&seed) >> 24) - 128) / 64.0f;
            memcpy(data + k, &v, 4);
        }
    } else if (zero_ints || dt == LITE_HALF || dt == LITE_MEGCC_FLOAT64) {
        memset(data, 0, n);
    } else {
        for (k = 0; k + isz <= n; k += isz) {
            int64_t v = (int64_t)(lcg(&seed) >> 28) - 8;
            memcpy(data + k, &v, isz); /* little-endian host: the low bytes, sign-extended */
        }
    }
}

static void read_all(const uint8_t *p, size_t n) {
    volatile uint8_t sink = 0;
    size_t k;
    for (k = 0; k < n; k++) sink ^= p[k];
    (void)sink;
}

typedef struct {
    void **bufs;
    size_t n, cap;
} owned;

/* Caller memory for one tensor: size + delta bytes (a wrong size must be refused). */
static void caller_memory(LiteTensor t, int delta, owned *o, uint32_t seed, int zero_ints) {
    size_t size = 0;
    LiteLayout layout;
    void *buf = NULL;
    size_t len;
    if (LITE_get_tensor_total_size_in_byte(t, &size) || LITE_get_tensor_layout(t, &layout)) {
        need_message();
        return;
    }
    len = (delta < 0 && (size_t)-delta > size) ? 0 : size + (size_t)(long)delta;
    if (o->n == o->cap) {
        void **grown = (void **)realloc(o->bufs, (o->cap * 2 + 8) * sizeof(void *));
        if (!grown) return;
        o->bufs = grown;
        o->cap = o->cap * 2 + 8;
    }
    if (posix_memalign(&buf, 64, len ? len : 1) != 0) return;
    o->bufs[o->n++] = buf;
    fill((uint8_t *)buf, len, layout.data_type, seed, zero_ints);
    if (LITE_reset_tensor_memory(t, buf, len) != 0) need_message();
}

static int run(LiteNetwork net, const uint8_t *s, owned *o) {
    size_t n_in = 0, n_out = 0, i;
    const char *name0;
    int forwards = 0;
    if (s[1] & 32) {
        const char **names;
        if (LITE_get_all_input_name(net, &n_in, NULL) || LITE_get_all_output_name(net, &n_out, NULL))
            need_message();
        names = (const char **)malloc((n_in + 1) * sizeof *names);
        if (names && LITE_get_all_input_name(net, NULL, names)) need_message();
        free(names);
    } else {
        while (LITE_get_input_name(net, n_in, &name0) == 0) n_in++;
        while (LITE_get_output_name(net, n_out, &name0) == 0) n_out++;
    }
    for (i = 0; i < n_in; i++) {
        const char *name;
        LiteTensor t;
        LiteLayout layout;
        void *mem;
        size_t size;
        if (LITE_get_input_name(net, i, &name) || LITE_get_io_tensor(net, name, LITE_INPUT, &t)) {
            need_message();
            continue;
        }
        if ((s[1] & 1) && i == (size_t)(s[2] & 15) && LITE_get_tensor_layout(t, &layout) == 0 &&
            layout.ndim) {
            size_t d = (size_t)(s[2] >> 4) % layout.ndim;
            layout.shapes[d] += (size_t)(long)(int8_t)s[3];
            if (LITE_set_tensor_layout(t, layout) != 0) need_message();
        }
        if (s[1] & 2) {
            caller_memory(t, (int8_t)s[4], o, s[5] + (uint32_t)i, s[5] & 1);
        } else if (LITE_get_tensor_memory(t, &mem) == 0 &&
                   LITE_get_tensor_total_size_in_byte(t, &size) == 0 &&
                   LITE_get_tensor_layout(t, &layout) == 0) {
            fill((uint8_t *)mem, size, layout.data_type, s[5] + (uint32_t)i, s[5] & 1);
        } else {
            need_message();
        }
    }
    if (s[1] & 4)
        for (i = 0; i < n_out; i++) {
            const char *name;
            LiteTensor t;
            if (LITE_get_output_name(net, i, &name) ||
                LITE_get_io_tensor(net, name, LITE_OUTPUT, &t)) {
                need_message();
                continue;
            }
            caller_memory(t, (int8_t)s[4], o, 7, 1);
        }
    for (i = 0; i < ((s[1] & 8) ? 2u : 1u); i++) {
        size_t k;
        if (LITE_forward(net) != 0 || LITE_wait(net) != 0) {
            need_message();
            break;
        }
        forwards++;
        for (k = 0; k < n_out; k++) {
            const char *name;
            LiteTensor t;
            void *mem;
            size_t size;
            if (LITE_get_output_name(net, k, &name) ||
                LITE_get_io_tensor(net, name, LITE_OUTPUT, &t) ||
                LITE_get_tensor_memory(t, &mem) || LITE_get_tensor_total_size_in_byte(t, &size)) {
                need_message();
                continue;
            }
            read_all((const uint8_t *)mem, size);
        }
    }
    return forwards;
}

static int load(LiteNetwork net, int mode, uint8_t *blob, size_t size) {
    static char path[64];
    int r;
    if (mode == 1) return LITE_load_model_with_shared_mem(net, blob, size);
    if (mode != 2) return LITE_load_model_from_mem(net, blob, size);
    if (!path[0]) snprintf(path, sizeof path, "/tmp/megcc-fuzz-lite-%ld.tiny", (long)getpid());
    {
        FILE *f = fopen(path, "wb");
        if (!f) return LITE_load_model_from_mem(net, blob, size);
        if (size) fwrite(blob, 1, size, f);
        fclose(f);
    }
    r = LITE_load_model_from_path(net, path);
    remove(path);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int verbose = -1;
    static const megcc_hooks hooks = {NULL, cap_alloc, cap_free, NULL, NULL};
    const uint8_t *s = data;
    LiteNetwork net = NULL, net2 = NULL;
    uint8_t *blob = NULL;
    size_t n;
    int st, forwards = 0, mode;
    owned o;
    if (verbose < 0) {
        verbose = getenv("MEGCC_FUZZ_VERBOSE") != NULL;
        if (LITE_megcc_set_hooks(&hooks) != 0) abort();
    }
    if (size < SCRIPT) return 0;
    n = size - SCRIPT;
    mode = s[0] & 3;
    memset(&o, 0, sizeof o);
    if (posix_memalign((void **)&blob, 64, n ? n : 1) != 0) return 0;
    if (n) memcpy(blob, data + SCRIPT, n);
    if (n >= 64) {
        uint64_t id = megcc_kernel_set_id;
        uint32_t crc;
        memcpy(blob + 16, &id, 8);
        crc = mgc_crc32(blob + 16, n - 16);
        memcpy(blob + 12, &crc, 4);
    }
    st = (s[0] & 4) ? LITE_make_network_config(&net, *default_config())
                    : LITE_make_default_network(&net);
    if (st != 0) abort(); /* the defaults are always valid */
    arm_sentinel();
    st = load(net, mode, blob, n);
    if (st != 0) {
        need_own_message();
    } else {
        forwards = run(net, s, &o);
        if ((s[1] & 16) && LITE_make_default_network(&net2) == 0) {
            if (LITE_share_runtime_memroy(net, net2) != 0) need_message();
            if (LITE_load_model_from_mem(net2, blob, n) == 0) {
                forwards += run(net2, s, &o);
                /* again on the first: the shared arena may have moved under it (inputs
                 * in the arena are refilled: activations are not kept across) */
                forwards += run(net, s, &o);
            } else {
                need_message();
            }
        }
    }
    if (verbose)
        fprintf(stderr, "megcc-fuzz-lite: status %d forwards %d %s\n", st, forwards,
                st ? LITE_get_last_error() : "");
    if (net2 && LITE_destroy_network(net2) != 0) abort();
    if (LITE_destroy_network(net) != 0) abort();
    while (o.n) free(o.bufs[--o.n]); /* after the networks: they may point at these */
    free(o.bufs);
    free(blob);
    return 0;
}
