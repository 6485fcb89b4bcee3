/* Dynamic plans through the public APIs (docs/dynamic-shapes.md), on the model "dyn" of
 * tests/runtime/dynamic_models.py: inputs x (N, 3), z (N, 2); outputs o = relu(2x) * 0.5
 * (2.0 on the static plan for N = 4), o_last = o's last row, zo = relu(z).
 *
 *   dynamic_api_test DYN.tiny
 *
 * Prints "required <N> <bytes>" (checked by the Python side against emit/dynamic.py) and
 * "PASSED" when every check held. */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lite-c/global_c.h"
#include "lite-c/network_c.h"
#include "lite-c/tensor_c.h"
#include "megcc/megcc.h"

static int failures;
#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                     \
            failures++;                                                                \
        }                                                                              \
    } while (0)

/* Counting hooks: growth of an owned arena is the only allocation after create. */
static int n_allocs;
static void *count_alloc(void *user, size_t size, size_t align) {
    void *p = NULL;
    (void)user;
    n_allocs++;
    if (align < sizeof(void *)) align = sizeof(void *);
    return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void count_free(void *user, void *p) {
    (void)user;
    free(p);
}

static int set_n(megcc_network *net, int32_t n) {
    int32_t x[2], z[2];
    x[0] = n; x[1] = 3;
    z[0] = n; z[1] = 2;
    return megcc_network_set_input_shape(net, 0, x, 2) == MEGCC_OK &&
           megcc_network_set_input_shape(net, 1, z, 2) == MEGCC_OK;
}

/* Fill the inputs, run, compare every output with the reference. */
static int run_and_check(megcc_network *net, int32_t n) {
    megcc_tensor_info info;
    float *x, *z, *o, *last, *zo, scale = n == 4 ? 2.0f : 0.5f;
    int32_t i, ok = 1;
    if (megcc_network_input_info(net, 0, &info) != MEGCC_OK || info.dims[0] != n ||
        info.nbytes != (size_t)n * 12)
        return 0;
    x = (float *)megcc_network_input_data(net, 0);
    z = (float *)megcc_network_input_data(net, 1);
    if (!x || !z) return 0;
    for (i = 0; i < 3 * n; i++) x[i] = (float)(i % 7) - 3.0f;
    for (i = 0; i < 2 * n; i++) z[i] = (float)(i % 5) - 2.0f;
    if (megcc_network_forward(net) != MEGCC_OK) {
        printf("forward: %s\n", megcc_network_last_error(net));
        return 0;
    }
    if (megcc_network_output_info(net, 1, &info) != MEGCC_OK || info.dims[0] != 3) return 0;
    o = (float *)megcc_network_output_data(net, 0);
    last = (float *)megcc_network_output_data(net, 1);
    zo = (float *)megcc_network_output_data(net, 2);
    if (!o || !last || !zo) return 0;
    for (i = 0; i < 3 * n; i++) {
        float v = 2.0f * x[i];
        if (o[i] != (v > 0 ? v : 0) * scale) ok = 0;
    }
    for (i = 0; i < 3; i++)
        if (last[i] != o[3 * (n - 1) + i]) ok = 0;
    for (i = 0; i < 2 * n; i++)
        if (zo[i] != (z[i] > 0 ? z[i] : 0)) ok = 0;
    return ok;
}

static void caller_arena(const megcc_model *m) {
    size_t hint = megcc_network_arena_size(m, 0), need = 0;
    void *small = NULL, *big = NULL;
    megcc_network *net;
    CHECK(posix_memalign(&small, 64, hint) == 0);
    CHECK(megcc_network_create(m, small, hint, &net) == MEGCC_OK);
    CHECK(run_and_check(net, 2));
    CHECK(set_n(net, 40));
    CHECK(megcc_network_required_arena_size(net, &need) == MEGCC_OK && need > hint);
    printf("required 40 %lu\n", (unsigned long)need);
    CHECK(megcc_network_forward(net) == MEGCC_ERR_ARENA_TOO_SMALL);
    CHECK(strstr(megcc_network_last_error(net), "need an arena of") != NULL);
    CHECK(megcc_network_input_data(net, 0) == NULL);
    CHECK(megcc_network_set_arena(net, small, hint) == MEGCC_ERR_ARENA_TOO_SMALL);
    CHECK(posix_memalign(&big, 64, need) == 0);
    CHECK(megcc_network_set_arena(net, big, need) == MEGCC_OK);
    CHECK(run_and_check(net, 40));
    /* back to a smaller size: fits the big arena */
    CHECK(set_n(net, 3));
    CHECK(megcc_network_required_arena_size(net, &need) == MEGCC_OK);
    printf("required 3 %lu\n", (unsigned long)need);
    CHECK(run_and_check(net, 3));
    megcc_network_destroy(net);
    free(small);
    free(big);
}

static void owned_arena(const void *blob, size_t size) {
    megcc_hooks h;
    megcc_model *m;
    megcc_network *net;
    int before;
    int32_t n;
    memset(&h, 0, sizeof h);
    h.alloc = count_alloc;
    h.free = count_free;
    CHECK(megcc_model_load_from_memory_ex(blob, size, 1, &h, &m) == MEGCC_OK);
    CHECK(megcc_model_plan_is_dynamic(m, 0) && !megcc_model_plan_is_dynamic(m, 1));
    CHECK(megcc_network_create(m, NULL, 0, &net) == MEGCC_OK);
    before = n_allocs;
    for (n = 1; n <= 64; n += (n < 8 ? 1 : 14)) {
        if (n == 5) continue; /* refused by the guard (below) */
        CHECK(set_n(net, n));
        CHECK(run_and_check(net, n));
        CHECK(megcc_network_plan(net) == (n == 4 ? 1u : 0u));
    }
    CHECK(n_allocs > before); /* the arena grew */
    before = n_allocs;
    CHECK(set_n(net, 64)); /* same again: no-op */
    CHECK(set_n(net, 2));
    CHECK(run_and_check(net, 2));
    CHECK(megcc_network_forward(net) == MEGCC_OK);
    CHECK(n_allocs == before); /* nothing allocated once the arena is big enough */
    /* refusals leave the network unusable until the shapes are set again */
    CHECK(set_n(net, 5));
    CHECK(megcc_network_forward(net) == MEGCC_ERR_INVALID_ARG);
    CHECK(strstr(megcc_network_last_error(net), "N must not be 5") != NULL);
    CHECK(megcc_network_input_data(net, 0) == NULL);
    CHECK(set_n(net, 65));
    CHECK(megcc_network_forward(net) == MEGCC_ERR_INVALID_ARG);
    CHECK(strstr(megcc_network_last_error(net), "outside [1, 64]") != NULL);
    {
        int32_t bad[2] = {7, 2};
        CHECK(set_n(net, 6));
        CHECK(megcc_network_set_input_shape(net, 1, bad, 2) == MEGCC_OK);
        CHECK(megcc_network_forward(net) == MEGCC_ERR_INVALID_ARG);
        CHECK(strstr(megcc_network_last_error(net), "input 1 (z)") != NULL);
        CHECK(megcc_network_set_input_shape(net, 2, bad, 2) == MEGCC_ERR_INVALID_ARG);
    }
    CHECK(set_n(net, 6));
    CHECK(run_and_check(net, 6));
    /* select_plan returns to a plan's compiled (hint) shapes */
    CHECK(megcc_network_select_plan(net, 0) == MEGCC_OK);
    CHECK(run_and_check(net, 2));
    megcc_network_destroy(net);
    megcc_model_free(m);
}

static void lite(const void *blob, size_t size) {
    LiteNetwork net;
    LiteTensor x, z, o;
    LiteLayout l = default_layout;
    float *px, *pz, *po;
    size_t i, bytes;
    int ok = 1;
    CHECK(LITE_make_network(&net, *default_config(), *default_network_io()) == 0);
    CHECK(LITE_load_model_from_mem(net, (void *)blob, size) == 0);
    CHECK(LITE_get_io_tensor(net, "x", LITE_INPUT, &x) == 0);
    CHECK(LITE_get_io_tensor(net, "z", LITE_INPUT, &z) == 0);
    CHECK(LITE_get_io_tensor(net, "o", LITE_OUTPUT, &o) == 0);
    l.ndim = 2;
    l.data_type = LITE_FLOAT;
    l.shapes[0] = 9;
    l.shapes[1] = 3;
    CHECK(LITE_set_tensor_layout(x, l) == 0);
    l.shapes[1] = 2;
    CHECK(LITE_set_tensor_layout(z, l) == 0);
    CHECK(LITE_get_tensor_total_size_in_byte(x, &bytes) == 0 && bytes == 9 * 12);
    CHECK(LITE_get_tensor_memory(x, (void **)&px) == 0);
    CHECK(LITE_get_tensor_memory(z, (void **)&pz) == 0);
    for (i = 0; i < 27; i++) px[i] = (float)i - 10.0f;
    for (i = 0; i < 18; i++) pz[i] = 1.0f;
    CHECK(LITE_forward(net) == 0 && LITE_wait(net) == 0);
    CHECK(LITE_get_tensor_layout(o, &l) == 0 && l.ndim == 2 && l.shapes[0] == 9);
    CHECK(LITE_get_tensor_memory(o, (void **)&po) == 0);
    for (i = 0; i < 27; i++)
        if (po[i] != (px[i] > 0 ? px[i] : 0.0f)) ok = 0; /* relu(2x) * 0.5 */
    CHECK(ok);
    l.shapes[0] = 70; /* outside the bounds: refused by the next call needing tensors */
    l.shapes[1] = 3;
    CHECK(LITE_set_tensor_layout(x, l) == 0);
    CHECK(LITE_forward(net) != 0);
    CHECK(strstr(LITE_get_last_error(), "outside [1, 64]") != NULL);
    l.data_type = LITE_INT;
    CHECK(LITE_set_tensor_layout(x, l) != 0); /* no plan of that dtype */
    CHECK(LITE_destroy_network(net) == 0);
}

int main(int argc, char **argv) {
    FILE *f;
    long size;
    void *blob;
    megcc_model *m;
    if (argc != 2) return 2;
    f = fopen(argv[1], "rb");
    if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET)) return 2;
    blob = malloc((size_t)size);
    if (!blob || fread(blob, 1, (size_t)size, f) != (size_t)size) return 2;
    fclose(f);
    CHECK(megcc_model_load_from_memory(blob, (size_t)size, 1, &m) == MEGCC_OK);
    caller_arena(m);
    megcc_model_free(m);
    owned_arena(blob, (size_t)size);
    lite(blob, (size_t)size);
    free(blob);
    if (failures) return 1;
    printf("PASSED\n");
    return 0;
}
