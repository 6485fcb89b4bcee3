/* digits: classify 100 real handwritten digits (8x8, sklearn's digits data set) with a
 * small CNN compiled by megcc, and print the predictions and the accuracy.
 * Built three times (SConscript): the fp32 model "digits", its int8 version "digits_int8"
 * (-DDIGITS_INT8, MegEngine's quantization) and "digits_int8_qdq" (-DDIGITS_INT8_QDQ,
 * onnxruntime's QDQ quantization); all take float pixels and give float logits.
 *
 * The same file runs on a Linux box, under qemu-user, and on a bare-metal Cortex-M:
 *   - the model is a const C array (megcc_model_digits, generated as digits.tiny.c) used in
 *     place: on a microcontroller it stays in flash, only the arena is RAM;
 *   - the images are const C arrays too (generated from digits_test.npz): no file system;
 *   - no heap: the arena is a static block sized by MEGCC_DIGITS_ARENA_SIZE (a compile-time
 *     constant from the generated kernels.h), and the runtime's few bookkeeping tables come
 *     from a small static pool through the alloc hook.
 *
 * Output: one line per image ("image 7: label 3 predicted 3 logits <hex>..."; the logits are
 * the raw float32 bit patterns, exact and cheap to print without float printf), then
 * "accuracy: N/100". Exit status 0 when every image ran, 1 on a runtime error. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "digits_images.h"
#include "kernels.h" /* generated: MEGCC_DIGITS_ARENA_SIZE */
#include "megcc/megcc.h"

#if defined(DIGITS_INT8) /* the model's name decides its symbols and arena-size macro */
#define MODEL_NAME "digits_int8"
#define MODEL_DATA megcc_model_digits_int8
#define MODEL_SIZE megcc_model_digits_int8_size
#define MODEL_ARENA_SIZE MEGCC_DIGITS_INT8_ARENA_SIZE
#elif defined(DIGITS_INT8_QDQ) /* the ONNX QDQ route (make_qdq_model.py) */
#define MODEL_NAME "digits_int8_qdq"
#define MODEL_DATA megcc_model_digits_int8_qdq
#define MODEL_SIZE megcc_model_digits_int8_qdq_size
#define MODEL_ARENA_SIZE MEGCC_DIGITS_INT8_QDQ_ARENA_SIZE
#else
#define MODEL_NAME "digits"
#define MODEL_DATA megcc_model_digits
#define MODEL_SIZE megcc_model_digits_size
#define MODEL_ARENA_SIZE MEGCC_DIGITS_ARENA_SIZE
#endif

extern const unsigned char MODEL_DATA[];
extern const unsigned int MODEL_SIZE;

/* Activations and kernel workspaces: sized by the compiler, aligned as the runtime needs. */
static uint8_t arena[MODEL_ARENA_SIZE] __attribute__((aligned(MEGCC_ARENA_ALIGN)));

/* The runtime allocates only its tables at load/create time (model: plan table; network:
 * tensor pointers), always through the hooks. A bump allocator over a static pool keeps
 * the program heap-free; the pool's high-water mark is printed so it can be trimmed. */
static uint8_t pool[2048] __attribute__((aligned(16)));
static size_t pool_used;

static void *pool_alloc(void *user, size_t size, size_t align) {
    size_t start = (pool_used + align - 1) & ~(align - 1);
    (void)user;
    if (start > sizeof pool || size > sizeof pool - start) return NULL;
    pool_used = start + size;
    return pool + start;
}

static void pool_free(void *user, void *ptr) { (void)user; (void)ptr; } /* freed at exit */

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int main(void) {
    megcc_hooks hooks = {NULL, pool_alloc, pool_free, NULL, NULL};
    megcc_model *model;
    megcc_network *net;
    megcc_tensor_info in_info, out_info;
    int correct = 0, i, k;

    if (megcc_model_load_from_memory_ex(MODEL_DATA, MODEL_SIZE, 0, &hooks, &model) != MEGCC_OK ||
        megcc_network_create(model, arena, sizeof arena, &net) != MEGCC_OK) {
        printf("error: %s\n", megcc_last_error());
        return 1;
    }
    megcc_network_input_info(net, 0, &in_info);
    megcc_network_output_info(net, 0, &out_info);
    if (in_info.nbytes != sizeof digits_images[0] || out_info.nbytes != 10 * sizeof(float)) {
        printf("error: the model does not take 8x8 images / give 10 logits\n");
        return 1;
    }
    printf("%s: model %u bytes in place, arena %u bytes (static), runtime tables %u bytes\n",
           MODEL_NAME, (unsigned)MODEL_SIZE, (unsigned)sizeof arena, (unsigned)pool_used);

    for (i = 0; i < DIGITS_COUNT; i++) {
        const float *logits;
        int best = 0;
        memcpy(megcc_network_input_data(net, 0), digits_images[i], sizeof digits_images[i]);
        if (megcc_network_forward(net) != MEGCC_OK) {
            printf("error: %s\n", megcc_network_last_error(net));
            return 1;
        }
        logits = (const float *)megcc_network_output_data(net, 0);
        for (k = 1; k < 10; k++)
            if (logits[k] > logits[best]) best = k;
        correct += best == digits_labels[i];
        printf("image %d: label %d predicted %d logits", i, digits_labels[i], best);
        for (k = 0; k < 10; k++) printf(" %08lx", (unsigned long)float_bits(logits[k]));
        printf("\n");
    }
    printf("accuracy: %d/%d\n", correct, DIGITS_COUNT);
    megcc_network_destroy(net);
    megcc_model_free(model);
    return 0;
}
