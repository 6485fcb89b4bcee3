/* cv_digits: a real picture in, a digit out, with no OpenCV: the app reads an RGB image
 * (binary PPM), pre-processes it with the tinycv functions megcc generated for this build
 * (rgb2gray, resize_linear to the model's 8x8, normalize to float in [0, 1] with ink high),
 * runs the digits CNN compiled by megcc, and prints the class.
 *
 *   cv_digits [image.ppm]     (hosted; without an argument, and on bare metal, it uses
 *                              the embedded copy of digit.ppm)
 *
 * Output: "digit: N" and the 10 logits as float32 bit patterns (exact, no float printf). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "digit_ppm.h"  /* generated: the embedded picture */
#include "kernels.h"    /* generated: MEGCC_DIGITS_ARENA_SIZE */
#include "megcc/megcc.h"
#include "tinycv_c.h"   /* generated: the CV functions this build asked for */

extern const unsigned char megcc_model_digits[];
extern const unsigned int megcc_model_digits_size;

#ifdef MEGCC_NO_LIBC_HOOKS /* bare metal: only the embedded picture, RAM is scarce */
#define MAX_PIXELS (64 * 64)
#else
#define MAX_PIXELS (256 * 256)
static uint8_t file_buf[MAX_PIXELS * 3 + 64];
#endif
static uint8_t arena[MEGCC_DIGITS_ARENA_SIZE] __attribute__((aligned(MEGCC_ARENA_ALIGN)));
static uint8_t gray[MAX_PIXELS], small[8 * 8];

/* The runtime's few tables come from a static pool (no heap), as in samples/digits. */
static uint8_t pool[2048] __attribute__((aligned(16)));
static size_t pool_used;

static void *pool_alloc(void *user, size_t size, size_t align) {
    size_t start = (pool_used + align - 1) & ~(align - 1);
    (void)user;
    if (start > sizeof pool || size > sizeof pool - start) return NULL;
    pool_used = start + size;
    return pool + start;
}

static void pool_free(void *user, void *ptr) { (void)user; (void)ptr; }

/* A binary PPM ("P6 w h 255" then RGB bytes): the pixels and their size, or NULL. */
static const uint8_t *parse_ppm(const uint8_t *p, size_t n, size_t *w, size_t *h) {
    size_t v[3], k = 0, i = 2;
    if (n < 2 || p[0] != 'P' || p[1] != '6') return NULL;
    while (k < 3) {
        while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t')) i++;
        if (i >= n || p[i] < '0' || p[i] > '9') return NULL;
        for (v[k] = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++) v[k] = v[k] * 10 + (p[i] - '0');
        k++;
    }
    i++; /* the single whitespace after maxval */
    if (v[2] != 255 || v[0] == 0 || v[1] == 0 || v[0] * v[1] > MAX_PIXELS ||
        n < i + v[0] * v[1] * 3)
        return NULL;
    *w = v[0];
    *h = v[1];
    return p + i;
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int main(int argc, char **argv) {
    const uint8_t *data = digit_ppm, *rgb;
    size_t size = digit_ppm_size, w, h;
    static const float mean[1] = {255.0f}, std[1] = {-255.0f}; /* (255 - g) / 255: ink high */
    megcc_hooks hooks = {NULL, pool_alloc, pool_free, NULL, NULL};
    megcc_model *model;
    megcc_network *net;
    const float *logits;
    int best = 0, k;
#ifndef MEGCC_NO_LIBC_HOOKS /* hosted: an image file may be given */
    if (argc > 1) {
        FILE *f = fopen(argv[1], "rb");
        if (!f) { printf("error: cannot open %s\n", argv[1]); return 1; }
        size = fread(file_buf, 1, sizeof file_buf, f);
        fclose(f);
        data = file_buf;
    }
#else
    (void)argc; (void)argv;
#endif
    rgb = parse_ppm(data, size, &w, &h);
    if (!rgb) { printf("error: not a binary PPM of at most %d pixels\n", MAX_PIXELS); return 1; }
    if (megcc_model_load_from_memory_ex(megcc_model_digits, megcc_model_digits_size, 0, &hooks,
                                        &model) ||
        megcc_network_create(model, arena, sizeof arena, &net)) {
        printf("error: %s\n", megcc_last_error());
        return 1;
    }
    {
        TinyMat src = {h, w, 3, (void *)rgb}, g = {h, w, 1, gray}, s = {8, 8, 1, small};
        TinyMat in = {8, 8, 1, megcc_network_input_data(net, 0)}; /* float, 1x1x8x8 */
        tinycv_cvt_rgb2gray_ui8(&src, &g);
        tinycv_resize_linear_ui8(&g, &s);
        tinycv_normalize_ui8(&s, &in, mean, std);
    }
    if (megcc_network_forward(net)) { printf("error: %s\n", megcc_network_last_error(net)); return 1; }
    logits = (const float *)megcc_network_output_data(net, 0);
    for (k = 1; k < 10; k++)
        if (logits[k] > logits[best]) best = k;
    printf("image %ux%u: digit: %d logits", (unsigned)w, (unsigned)h, best);
    for (k = 0; k < 10; k++) printf(" %08lx", (unsigned long)float_bits(logits[k]));
    printf("\n");
    megcc_network_destroy(net);
    megcc_model_free(model);
    return 0;
}
