/* Runtime misuse: what an application can get wrong through the native and the Lite-C API
 * must give a clear status (and message), never a crash. Built with ASan + UBSan by
 * tests/test_runtime_misuse.py.
 *
 *   misuse_test CNN.tiny ELTWISE.tiny MOVEMENT.tiny OTHER_SET.tiny
 *
 * CNN/ELTWISE/MOVEMENT come from fuzz/make_seeds.py's bundle, whose kernels.c this program
 * links; OTHER_SET.tiny was compiled in another bundle (another kernel set). ELTWISE has
 * two plans: x=(2,3,4) and x=(1,3,2); MOVEMENT takes x (1,3,4) float and idx (2) int64. */
#define _POSIX_C_SOURCE 200112L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lite-c/global_c.h"
#include "lite-c/network_c.h"
#include "lite-c/tensor_c.h"
#include "megcc/megcc.h"

static int failures;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
            failures++;                                                              \
        }                                                                            \
    } while (0)
#define CONTAINS(text, part) CHECK((text) != NULL && strstr((text), (part)) != NULL)

typedef struct {
    void *data;
    size_t size;
} file_buf;

static file_buf read_file(const char *path) {
    file_buf b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    long n;
    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) exit(3);
    if (posix_memalign(&b.data, 64, (size_t)n + 64)) exit(3);
    if (fread(b.data, 1, (size_t)n, f) != (size_t)n) exit(3);
    fclose(f);
    b.size = (size_t)n;
    return b;
}

static void *aligned(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1)) exit(3);
    return p;
}

static megcc_model *load(const file_buf *b) {
    megcc_model *m = NULL;
    if (megcc_model_load_from_memory(b->data, b->size, 1, &m) != MEGCC_OK) {
        printf("cannot load: %s\n", megcc_last_error());
        exit(4);
    }
    return m;
}

static void fill_inputs(megcc_network *net, uint32_t seed) {
    uint32_t i;
    size_t k;
    for (i = 0; i < megcc_network_num_inputs(net); i++) {
        megcc_tensor_info info;
        uint8_t *d = (uint8_t *)megcc_network_input_data(net, i);
        if (megcc_network_input_info(net, i, &info) != MEGCC_OK || !d) exit(5);
        if (info.dtype == MEGCC_FLOAT32)
            for (k = 0; k < info.nbytes / 4; k++)
                ((float *)d)[k] = (float)((k * 7 + seed) % 11) - 5;
        else
            memset(d, 0, info.nbytes); /* valid indices */
    }
}

/* ------------------------------------------------------------------ NULL everywhere */

static void null_pointers(const file_buf *cnn) {
    megcc_model *m = NULL;
    megcc_network *net = NULL;
    megcc_tensor_info info;
    megcc_hooks hooks;
    CHECK(megcc_model_load_from_memory(NULL, 100, 1, &m) == MEGCC_ERR_INVALID_ARG && !m);
    CHECK(megcc_model_load_from_memory(cnn->data, cnn->size, 1, NULL) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_model_load_from_memory_ex(cnn->data, cnn->size, 1, NULL, &m) ==
          MEGCC_ERR_INVALID_ARG);
    memset(&hooks, 0, sizeof hooks);
    CHECK(megcc_model_load_from_memory_ex(cnn->data, cnn->size, 1, &hooks, &m) ==
          MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_model_load_from_path(NULL, &m) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_model_load_from_path("/nonexistent/model.tiny", &m) == MEGCC_ERR_IO);
    CONTAINS(megcc_last_error(), "/nonexistent/model.tiny");
    CHECK(megcc_default_hooks(NULL) == MEGCC_ERR_INVALID_ARG);
    megcc_model_free(NULL);
    CHECK(megcc_model_name(NULL) == NULL && megcc_model_num_plans(NULL) == 0);
    CHECK(megcc_model_plan_name(NULL, 0) == NULL);
    CHECK(megcc_model_plan_num_inputs(NULL, 0) == 0 && megcc_model_plan_num_outputs(NULL, 0) == 0);
    CHECK(megcc_model_plan_input_info(NULL, 0, 0, &info) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_arena_size(NULL, -1) == 0);
    CHECK(megcc_network_create(NULL, NULL, 0, &net) == MEGCC_ERR_INVALID_ARG && !net);
    megcc_network_destroy(NULL);
    CHECK(megcc_network_forward(NULL) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_set_arena(NULL, NULL, 0) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_select_plan(NULL, 0) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_plan(NULL) == 0 && megcc_network_num_inputs(NULL) == 0 &&
          megcc_network_num_outputs(NULL) == 0);
    CHECK(megcc_network_input_info(NULL, 0, &info) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_output_info(NULL, 0, &info) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_find_input(NULL, "x") == -1 && megcc_network_find_output(NULL, "y") == -1);
    CHECK(megcc_network_input_data(NULL, 0) == NULL && megcc_network_output_data(NULL, 0) == NULL);
    CHECK(megcc_network_set_input_memory(NULL, 0, NULL, 0) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_set_output_memory(NULL, 0, NULL, 0) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_set_profiler(NULL, NULL, NULL) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_last_error(NULL) != NULL);
    CHECK(megcc_status_string((megcc_status)999) != NULL);
    CHECK(megcc_dtype_size((megcc_dtype)0) == 0);

    m = load(cnn);
    CHECK(megcc_network_create(m, NULL, 0, NULL) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_model_plan_input_info(m, 0, 0, NULL) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_model_plan_input_info(m, 9, 0, &info) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_model_plan_input_info(m, 0, 9, &info) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_model_plan_name(m, 9) == NULL && megcc_network_arena_size(m, 9) == 0);
    CHECK(megcc_network_create(m, NULL, 0, &net) == MEGCC_OK);
    CHECK(megcc_network_input_info(net, 0, NULL) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_find_input(net, NULL) == -1);
    CHECK(megcc_network_find_input(net, "no such input") == -1);
    CHECK(megcc_network_set_arena(net, NULL, 1 << 20) == MEGCC_ERR_INVALID_ARG);
    CONTAINS(megcc_network_last_error(net), "NULL");
    megcc_network_destroy(net);
    megcc_model_free(m);
}

/* ------------------------------------------------------------------ native misuse */

static void native_misuse(const file_buf *elt, const file_buf *mov, const file_buf *other) {
    megcc_model *m = load(elt), *bad = NULL;
    megcc_network *net = NULL;
    megcc_tensor_info info;
    size_t need = megcc_network_arena_size(m, 0), need_all = megcc_network_arena_size(m, -1);
    uint8_t *arena = (uint8_t *)aligned(need_all + 64);
    float *buf = (float *)aligned(4096);
    uint32_t i;

    /* a model compiled for another kernel set, truncated, misaligned in place */
    CHECK(megcc_model_load_from_memory(other->data, other->size, 1, &bad) ==
          MEGCC_ERR_KERNEL_MISMATCH && !bad);
    CONTAINS(megcc_last_error(), "kernel");
    CHECK(megcc_model_load_from_memory(elt->data, elt->size - 1, 1, &bad) == MEGCC_ERR_BAD_SIZE);
    memmove((char *)elt->data + 4, elt->data, elt->size);
    CHECK(megcc_model_load_from_memory((char *)elt->data + 4, elt->size, 0, &bad) ==
          MEGCC_ERR_ALIGNMENT);
    memmove(elt->data, (char *)elt->data + 4, elt->size);

    /* arenas: too small, misaligned */
    CHECK(megcc_network_create(m, arena, need - 1, &net) == MEGCC_ERR_ARENA_TOO_SMALL && !net);
    CONTAINS(megcc_last_error(), "arena");
    CHECK(megcc_network_create(m, arena + 8, need, &net) == MEGCC_ERR_ALIGNMENT);
    CHECK(megcc_network_create(m, arena, need, &net) == MEGCC_OK);
    CHECK(megcc_network_set_arena(net, arena, need - 1) == MEGCC_ERR_ARENA_TOO_SMALL);
    CHECK(megcc_network_set_arena(net, arena + 1, need) == MEGCC_ERR_ALIGNMENT);
    if (need < need_all) {
        CHECK(megcc_network_select_plan(net, 1) == MEGCC_ERR_ARENA_TOO_SMALL);
        CONTAINS(megcc_network_last_error(net), "arena");
    }
    CHECK(megcc_network_select_plan(net, 7) == MEGCC_ERR_INVALID_ARG);

    /* output read before forward, after a plan switch, after a new output buffer */
    CHECK(megcc_network_output_data(net, 0) == NULL);
    CONTAINS(megcc_network_last_error(net), "before a successful forward");
    fill_inputs(net, 1);
    CHECK(megcc_network_forward(net) == MEGCC_OK);
    CHECK(megcc_network_output_data(net, 0) != NULL);
    CHECK(megcc_network_output_data(net, 5) == NULL);
    CONTAINS(megcc_network_last_error(net), "out of range");
    CHECK(megcc_network_output_info(net, 0, &info) == MEGCC_OK);
    CHECK(megcc_network_set_output_memory(net, 0, buf, info.nbytes) == MEGCC_OK);
    CHECK(megcc_network_output_data(net, 0) == NULL);
    CHECK(megcc_network_forward(net) == MEGCC_OK);
    CHECK(megcc_network_output_data(net, 0) == (void *)buf);
    megcc_network_destroy(net);

    /* wrong input size/alignment/index (the native API's "wrong shape") */
    CHECK(megcc_network_create(m, NULL, 0, &net) == MEGCC_OK);
    CHECK(megcc_network_input_info(net, 0, &info) == MEGCC_OK);
    CHECK(megcc_network_set_input_memory(net, 0, buf, info.nbytes - 4) == MEGCC_ERR_INVALID_ARG);
    CONTAINS(megcc_network_last_error(net), "bytes");
    CHECK(megcc_network_set_input_memory(net, 0, (char *)buf + 2, info.nbytes) ==
          MEGCC_ERR_ALIGNMENT);
    CHECK(megcc_network_set_input_memory(net, 3, buf, info.nbytes) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_input_data(net, 3) == NULL);
    CHECK(megcc_network_select_plan(net, 1) == MEGCC_OK); /* own arena: reaches every plan */
    CHECK(megcc_network_output_data(net, 0) == NULL);
    fill_inputs(net, 2);
    CHECK(megcc_network_forward(net) == MEGCC_OK && megcc_network_output_data(net, 0) != NULL);
    megcc_network_destroy(net);
    megcc_model_free(m);

    /* a kernel refusing a runtime value (Gather index out of range): failed forward, no
     * output, and the network is usable again after */
    m = load(mov);
    CHECK(megcc_network_create(m, NULL, 0, &net) == MEGCC_OK);
    fill_inputs(net, 3);
    i = (uint32_t)megcc_network_find_input(net, "idx");
    CHECK(i < 2);
    ((int64_t *)megcc_network_input_data(net, i))[1] = 1000;
    CHECK(megcc_network_forward(net) == MEGCC_ERR_KERNEL_FAILED);
    CONTAINS(megcc_network_last_error(net), "gather");
    CHECK(megcc_network_output_data(net, 0) == NULL);
    ((int64_t *)megcc_network_input_data(net, i))[1] = -1; /* from the end: valid */
    CHECK(megcc_network_forward(net) == MEGCC_OK && megcc_network_output_data(net, 0) != NULL);
    megcc_network_destroy(net);
    megcc_model_free(m);
    free(arena);
    free(buf);
}

/* ------------------------------------------------------------------ Lite-C misuse */

static void lite_misuse(const file_buf *elt, const file_buf *other, const char *elt_path) {
    LiteNetwork net = NULL;
    LiteTensor in, out;
    LiteLayout layout = default_layout;
    void *mem = NULL;
    size_t size = 0;
    float small[2];
    CHECK(LITE_set_log_level(LITE_ERROR + 1) != 0);
    CHECK(LITE_set_log_level(ERROR) == 0);
    CHECK(LITE_make_default_network(NULL) != 0);
    CHECK(LITE_forward(NULL) != 0 && LITE_wait(NULL) != 0);
    CHECK(LITE_destroy_network(NULL) != 0);
    CHECK(LITE_load_model_from_path(NULL, elt_path) != 0);
    CHECK(LITE_get_tensor_memory(NULL, &mem) != 0);
    CHECK(LITE_get_tensor_layout(NULL, &layout) != 0);
    CHECK(LITE_destroy_tensor(NULL) != 0);
    CHECK(LITE_make_default_network(&net) == 0);
    CHECK(LITE_forward(net) != 0); /* no model yet */
    CONTAINS(LITE_get_last_error(), "no model");
    CHECK(LITE_load_model_from_path(net, NULL) != 0);
    CHECK(LITE_load_model_from_mem(net, other->data, other->size) != 0); /* other kernel set */
    CONTAINS(LITE_get_last_error(), "kernel");
    CHECK(LITE_load_model_from_mem(net, NULL, 10) != 0);
    CHECK(LITE_load_model_from_mem(net, elt->data, elt->size) == 0);
    CHECK(LITE_get_io_tensor(net, "nope", LITE_INPUT, &in) != 0);
    CHECK(LITE_get_io_tensor(net, NULL, LITE_INPUT, &in) != 0);
    CHECK(LITE_get_io_tensor(net, "x", LITE_INPUT, NULL) != 0);
    CHECK(LITE_get_io_tensor(net, "x", LITE_INPUT, &in) == 0);
    CHECK(LITE_get_io_tensor(net, "y", LITE_OUTPUT, &out) == 0);
    CHECK(LITE_get_tensor_memory(in, NULL) != 0);
    CHECK(LITE_get_tensor_total_size_in_byte(in, NULL) != 0);
    /* as in MegEngine Lite, an output's memory is valid before the first forward (the
     * native API's megcc_network_output_data still refuses to read it: api tests) */
    CHECK(LITE_get_tensor_memory(out, &mem) == 0 && mem != NULL);
    /* wrong shape, wrong dtype: no compiled plan matches */
    CHECK(LITE_get_tensor_layout(in, &layout) == 0 && layout.ndim == 3);
    layout.shapes[0] = 5;
    CHECK(LITE_set_tensor_layout(in, layout) != 0);
    CONTAINS(LITE_get_last_error(), "no compiled plan");
    layout.shapes[0] = 2;
    layout.data_type = LITE_INT;
    CHECK(LITE_set_tensor_layout(in, layout) != 0);
    layout.data_type = LITE_FLOAT;
    layout.ndim = 9;
    CHECK(LITE_set_tensor_layout(in, layout) != 0);
    /* too small a buffer, NULL buffer */
    CHECK(LITE_reset_tensor_memory(in, small, sizeof small) != 0);
    CHECK(LITE_reset_tensor_memory(in, NULL, 1024) != 0);
    CHECK(LITE_get_tensor_memory(in, &mem) == 0 && mem != NULL);
    CHECK(LITE_get_tensor_total_size_in_byte(in, &size) == 0 && size == 2 * 3 * 4 * 4);
    memset(mem, 0, size);
    CHECK(LITE_forward(net) == 0 && LITE_wait(net) == 0);
    CHECK(LITE_get_tensor_memory(out, &mem) == 0 && mem != NULL);
    CHECK(LITE_destroy_network(net) == 0);
}

/* ------------------------------------------------------------------ two threads */

#include <pthread.h>

#define ITERS 300

typedef struct {
    megcc_network *net;
    uint32_t seed;
    const uint8_t *ref; /* expected output 0 */
    size_t ref_size;
    int mismatches, errors;
} job;

static void *worker(void *arg) {
    job *j = (job *)arg;
    int it;
    for (it = 0; it < ITERS; it++) {
        const void *o;
        fill_inputs(j->net, j->seed);
        if (megcc_network_forward(j->net) != MEGCC_OK) {
            j->errors++;
            continue;
        }
        o = megcc_network_output_data(j->net, 0);
        if (!o || memcmp(o, j->ref, j->ref_size) != 0) j->mismatches++;
    }
    return NULL;
}

/* Reference output of a network run alone. */
static uint8_t *reference(megcc_network *net, uint32_t seed, size_t *size) {
    megcc_tensor_info info;
    uint8_t *copy;
    fill_inputs(net, seed);
    if (megcc_network_forward(net) != MEGCC_OK) exit(6);
    megcc_network_output_info(net, 0, &info);
    copy = (uint8_t *)malloc(info.nbytes);
    memcpy(copy, megcc_network_output_data(net, 0), info.nbytes);
    *size = info.nbytes;
    return copy;
}

static void run_pair(megcc_network *a, uint32_t sa, megcc_network *b, uint32_t sb) {
    job ja = {0}, jb = {0};
    pthread_t ta, tb;
    ja.net = a, ja.seed = sa, ja.ref = reference(a, sa, &ja.ref_size);
    jb.net = b, jb.seed = sb, jb.ref = reference(b, sb, &jb.ref_size);
    CHECK(pthread_create(&ta, NULL, worker, &ja) == 0);
    CHECK(pthread_create(&tb, NULL, worker, &jb) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(ja.errors == 0 && jb.errors == 0);
    CHECK(ja.mismatches == 0 && jb.mismatches == 0);
    free((void *)ja.ref);
    free((void *)jb.ref);
}

static void two_threads(const file_buf *cnn, const file_buf *elt) {
    megcc_model *mc = load(cnn), *me = load(elt);
    megcc_network *c1, *c2, *e1;
    CHECK(megcc_network_create(mc, NULL, 0, &c1) == MEGCC_OK);
    CHECK(megcc_network_create(mc, NULL, 0, &c2) == MEGCC_OK);
    CHECK(megcc_network_create(me, NULL, 0, &e1) == MEGCC_OK);
    run_pair(c1, 1, c2, 2); /* one model shared by two networks, different inputs */
    run_pair(c1, 3, e1, 4); /* two models */
    megcc_network_destroy(c1);
    megcc_network_destroy(c2);
    megcc_network_destroy(e1);
    megcc_model_free(mc);
    megcc_model_free(me);
}

int main(int argc, char **argv) {
    file_buf cnn, elt, mov, other;
    if (argc != 5) return 2;
    cnn = read_file(argv[1]);
    elt = read_file(argv[2]);
    mov = read_file(argv[3]);
    other = read_file(argv[4]);
    if (!getenv("MISUSE_THREADS_ONLY")) { /* the ThreadSanitizer build runs only the threads */
        null_pointers(&cnn);
        native_misuse(&elt, &mov, &other);
        lite_misuse(&elt, &other, argv[2]);
    }
    two_threads(&cnn, &elt);
    free(cnn.data);
    free(elt.data);
    free(mov.data);
    free(other.data);
    if (failures) {
        printf("FAILED (%d failures)\n", failures);
        return 1;
    }
    printf("PASSED\n");
    return 0;
}
