/* classify: run a MobileNet-class image classifier compiled by megcc; print the top-5
 * classes and the latency.
 *
 *   classify MODEL.tiny [-i IMAGE.bin] [-t ITERATIONS] [--hex]
 *
 * The model is loaded from a file (megcc_model_load_from_path), as an app on a phone or a
 * Linux board would. IMAGE.bin is the raw float32 input tensor (e.g. 1x3x224x224, already
 * normalised); without it a deterministic synthetic image is used (the same on every
 * target, so runs on different machines can be compared). --hex prints every output value
 * as its float32 bit pattern, one line per value, for exact comparisons.
 *
 * Bare-metal builds (MEGCC_NO_LIBC_HOOKS: no file system, no malloc, no clock) take the
 * model from the const array the build embeds (megcc_model_classify), use a static arena of
 * MEGCC_CLASSIFY_ARENA_SIZE bytes, always print --hex and report no latency.
 *
 * Numbers are printed with integer arithmetic only, so the program also links with an
 * integer-only printf (picolibc on Cortex-M). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels.h" /* generated: MEGCC_CLASSIFY_ARENA_SIZE */
#include "megcc/megcc.h"

#ifdef MEGCC_NO_LIBC_HOOKS
#define BAREMETAL 1
#else
#define BAREMETAL 0
#include <stdlib.h>
#endif

/* The synthetic image: a 32-bit LCG (Numerical Recipes constants), 16 bits to [-1, 1).
 * Exact in float32, so any target (and numpy) produces the same pixels. */
static void synthetic_image(float *x, size_t n) {
    uint32_t state = 12345u;
    size_t i;
    for (i = 0; i < n; i++) {
        state = state * 1664525u + 1013904223u;
        x[i] = (float)((state >> 8) & 0xFFFFu) / 32768.0f - 1.0f;
    }
}

/* "-12.3456" without float printf: sign, integer part, 4 decimals (rounded). */
static void print_fixed(float v) {
    long scaled;
    const char *sign = v < 0 ? "-" : "";
    if (v < 0) v = -v;
    scaled = (long)(v * 10000.0f + 0.5f);
    printf("%s%ld.%04ld", sign, scaled / 10000, scaled % 10000);
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void print_top5(const float *scores, uint32_t n) {
    int best[5] = {-1, -1, -1, -1, -1};
    uint32_t i;
    int k, j;
    for (i = 0; i < n; i++) { /* insertion into a sorted top-5; ties keep the lower index */
        for (k = 0; k < 5; k++)
            if (best[k] < 0 || scores[i] > scores[best[k]]) break;
        if (k == 5) continue;
        for (j = 4; j > k; j--) best[j] = best[j - 1];
        best[k] = (int)i;
    }
    for (k = 0; k < 5 && best[k] >= 0; k++) {
        printf("top%d: class %d score ", k + 1, best[k]);
        print_fixed(scores[best[k]]);
        printf("\n");
    }
}

#if BAREMETAL
extern const unsigned char megcc_model_classify[];
extern const unsigned int megcc_model_classify_size;
static uint8_t arena[MEGCC_CLASSIFY_ARENA_SIZE] __attribute__((aligned(MEGCC_ARENA_ALIGN)));
static uint8_t pool[4096] __attribute__((aligned(16)));
static size_t pool_used;

static void *pool_alloc(void *user, size_t size, size_t align) {
    size_t start = (pool_used + align - 1) & ~(align - 1);
    (void)user;
    if (start > sizeof pool || size > sizeof pool - start) return NULL;
    pool_used = start + size;
    return pool + start;
}
static void pool_free(void *user, void *ptr) { (void)user; (void)ptr; }
#endif

int main(int argc, char **argv) {
    megcc_model *model;
    megcc_network *net;
    megcc_tensor_info in_info, out_info;
    const char *image = NULL;
    long iters = 10;
    int hex = BAREMETAL, a;
    uint32_t i, n_out;
    const float *out;
#if BAREMETAL
    megcc_hooks hooks = {NULL, pool_alloc, pool_free, NULL, NULL};
    (void)argc;
    (void)argv;
    iters = 0;
    if (megcc_model_load_from_memory_ex(megcc_model_classify, megcc_model_classify_size, 0,
                                        &hooks, &model) != MEGCC_OK ||
        megcc_network_create(model, arena, sizeof arena, &net) != MEGCC_OK) {
        printf("error: %s\n", megcc_last_error());
        return 1;
    }
#else
    megcc_hooks hooks;
    const char *model_path = NULL;
    for (a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-i") && a + 1 < argc) image = argv[++a];
        else if (!strcmp(argv[a], "-t") && a + 1 < argc) iters = atol(argv[++a]);
        else if (!strcmp(argv[a], "--hex")) hex = 1;
        else if (argv[a][0] != '-' && !model_path) model_path = argv[a];
        else {
            fprintf(stderr, "usage: classify MODEL.tiny [-i IMAGE.bin] [-t ITERATIONS] [--hex]\n");
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "usage: classify MODEL.tiny [-i IMAGE.bin] [-t ITERATIONS] [--hex]\n");
        return 2;
    }
    megcc_default_hooks(&hooks);
    if (megcc_model_load_from_path(model_path, &model) != MEGCC_OK ||
        megcc_network_create(model, NULL, 0, &net) != MEGCC_OK) {
        fprintf(stderr, "error: %s\n", megcc_last_error());
        return 1;
    }
#endif
    megcc_network_input_info(net, 0, &in_info);
    megcc_network_output_info(net, 0, &out_info);
    if (in_info.dtype != MEGCC_FLOAT32 || out_info.dtype != MEGCC_FLOAT32) {
        printf("error: expected a float32 model\n");
        return 1;
    }
    printf("model %s: input %s (", megcc_model_name(model), in_info.name);
    for (i = 0; i < in_info.ndim; i++) printf(i ? ",%d" : "%d", (int)in_info.dims[i]);
    printf("), arena %lu bytes\n", (unsigned long)megcc_network_arena_size(model, -1));

    if (image) {
#if !BAREMETAL
        FILE *f = fopen(image, "rb");
        size_t got = f ? fread(megcc_network_input_data(net, 0), 1, in_info.nbytes, f) : 0;
        if (f) fclose(f);
        if (got != in_info.nbytes) {
            fprintf(stderr, "error: %s must hold %lu bytes of float32\n", image,
                    (unsigned long)in_info.nbytes);
            return 1;
        }
#endif
    } else {
        synthetic_image((float *)megcc_network_input_data(net, 0), in_info.nbytes / sizeof(float));
    }

    if (megcc_network_forward(net) != MEGCC_OK) {
        printf("error: %s\n", megcc_network_last_error(net));
        return 1;
    }
#if !BAREMETAL
    if (iters > 0) { /* the input stays in place: forward does not modify it */
        uint64_t best = (uint64_t)-1, total = 0;
        long t;
        for (t = 0; t < iters; t++) {
            uint64_t t0 = hooks.time_ns(NULL), dt;
            megcc_network_forward(net);
            dt = hooks.time_ns(NULL) - t0;
            total += dt;
            if (dt < best) best = dt;
        }
        printf("latency: min %lu us, mean %lu us over %ld runs\n", (unsigned long)(best / 1000),
               (unsigned long)(total / 1000 / (uint64_t)iters), iters);
    }
#else
    printf("latency: not measured (no clock on this target)\n");
#endif
    out = (const float *)megcc_network_output_data(net, 0);
    n_out = (uint32_t)(out_info.nbytes / sizeof(float));
    print_top5(out, n_out);
    if (hex)
        for (i = 0; i < n_out; i++) printf("out %lu %08lx\n", (unsigned long)i,
                                           (unsigned long)float_bits(out[i]));
    megcc_network_destroy(net);
    megcc_model_free(model);
    return 0;
}
