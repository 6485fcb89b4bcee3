/* megcc.h API test: api_test A.tiny B.tiny C.tiny (models written by the pytest file).
 * A: o = relu(x + y) * 0.5 + w (w = 0..5), outputs o, o_flat (view of o), xc (= x)
 * B: plan 0 x(1,4) -> out = relu(x); plan 1 x(2,4) -> out = relu(2x), bigger arena
 * C: one instruction whose kernel returns 7 */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "megcc/megcc.h"

static int failures;
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
            failures++;                                                      \
        }                                                                    \
    } while (0)

/* Counting hooks: every allocation is freed, none happens during forward. */
static long n_alloc, n_free;
static megcc_hooks base;
static void *count_alloc(void *u, size_t size, size_t align) {
    n_alloc++;
    return base.alloc(u, size, align);
}
static void count_free(void *u, void *p) {
    n_free++;
    base.free(u, p);
}
static unsigned n_profiled;
static void on_profile(void *user, uint32_t idx, const char *name, uint64_t ns) {
    (void)user; (void)ns;
    if (name && name[0] && idx == n_profiled) n_profiled++;
}

static void *aligned(size_t n, size_t align) {
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : 1)) exit(2);
    return p;
}

static void fill_a(float *x, float *y) {
    int i;
    for (i = 0; i < 6; i++) {
        x[i] = (float)i - 2.5f;
        y[i] = 0.25f * (float)i;
    }
}

static int check_a(const float *o, const float *of, const float *xc) {
    int i, ok = 1;
    for (i = 0; i < 6; i++) {
        float s = ((float)i - 2.5f) + 0.25f * (float)i;
        float want = (s > 0 ? s : 0) * 0.5f + (float)i;
        if (o[i] != want || of[i] != want || xc[i] != (float)i - 2.5f) ok = 0;
    }
    return ok;
}

static void test_a(const char *path) {
    megcc_model *m;
    megcc_network *net;
    megcc_hooks h;
    megcc_tensor_info info;
    size_t need;
    void *arena;
    float *ux, *uy, uo[6], uof[6];
    long allocs_before;
    megcc_default_hooks(&base);
    h = base;
    h.alloc = count_alloc;
    h.free = count_free;
    CHECK(megcc_model_load_from_path_ex(path, &h, &m) == MEGCC_OK);
    CHECK(!strcmp(megcc_model_name(m), "modelA"));
    CHECK(megcc_model_num_plans(m) == 1);
    need = megcc_network_arena_size(m, 0);
    CHECK(need == 512 && megcc_network_arena_size(m, -1) == 512);
    CHECK(megcc_network_arena_size(m, 1) == 0);

    /* caller-provided arena: too small, misaligned, exact */
    arena = aligned(need + 64, 64);
    CHECK(megcc_network_create(m, arena, need - 1, &net) == MEGCC_ERR_ARENA_TOO_SMALL);
    CHECK(strstr(megcc_last_error(), "512") != NULL);
    CHECK(megcc_network_create(m, (char *)arena + 4, need, &net) == MEGCC_ERR_ALIGNMENT);
    CHECK(megcc_network_create(m, arena, need, &net) == MEGCC_OK);
    CHECK(megcc_network_num_inputs(net) == 2 && megcc_network_num_outputs(net) == 3);
    CHECK(megcc_network_input_info(net, 0, &info) == MEGCC_OK);
    CHECK(!strcmp(info.name, "x") && info.dtype == MEGCC_FLOAT32 && info.ndim == 2 &&
          info.dims[0] == 2 && info.dims[1] == 3 && info.nbytes == 24);
    CHECK(megcc_network_input_info(net, 2, &info) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_find_output(net, "o_flat") == 1);
    CHECK(megcc_network_find_input(net, "nope") == -1);
    CHECK((char *)megcc_network_input_data(net, 1) == (char *)arena + 64);

    fill_a((float *)megcc_network_input_data(net, 0), (float *)megcc_network_input_data(net, 1));
    allocs_before = n_alloc;
    CHECK(megcc_network_forward(net) == MEGCC_OK);
    CHECK(n_alloc == allocs_before);
    CHECK(check_a((float *)megcc_network_output_data(net, 0),
                  (float *)megcc_network_output_data(net, 1),
                  (float *)megcc_network_output_data(net, 2)));

    /* zero-copy inputs and outputs; o_flat is a view so it goes through the copy path */
    ux = (float *)aligned(24, 16);
    uy = (float *)aligned(24, 16);
    fill_a(ux, uy);
    memset(megcc_network_input_data(net, 0), 0xff, 24); /* arena copy must not be used */
    CHECK(megcc_network_set_input_memory(net, 0, ux, 23) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_set_input_memory(net, 0, (char *)ux + 1, 24) == MEGCC_ERR_ALIGNMENT);
    CHECK(megcc_network_set_input_memory(net, 0, ux, 24) == MEGCC_OK);
    CHECK(megcc_network_set_input_memory(net, 1, uy, 24) == MEGCC_OK);
    CHECK(megcc_network_input_data(net, 0) == (void *)ux);
    CHECK(megcc_network_set_output_memory(net, 0, uo, sizeof uo) == MEGCC_OK);
    CHECK(megcc_network_set_output_memory(net, 1, uof, sizeof uof) == MEGCC_OK);
    memset(uo, 0, sizeof uo);
    memset(uof, 0, sizeof uof);
    CHECK(megcc_network_set_profiler(net, on_profile, NULL) == MEGCC_OK);
    CHECK(megcc_network_forward(net) == MEGCC_OK);
    CHECK(n_profiled == 5);
    CHECK(check_a(uo, uof, (float *)megcc_network_output_data(net, 2)));
    CHECK(megcc_network_output_data(net, 0) == (void *)uo);
    /* back to the arena */
    CHECK(megcc_network_set_output_memory(net, 0, NULL, 0) == MEGCC_OK);
    CHECK(megcc_network_output_data(net, 0) == NULL); /* no result in the arena yet */
    CHECK(megcc_network_forward(net) == MEGCC_OK);
    CHECK(megcc_network_output_data(net, 0) == (void *)((char *)arena + 384));
    CHECK(megcc_network_select_plan(net, 1) == MEGCC_ERR_INVALID_ARG);
    CHECK(strstr(megcc_network_last_error(net), "plan 1") != NULL);
    megcc_network_destroy(net);
    megcc_model_free(m);
    CHECK(n_alloc == n_free && n_alloc > 0);
    free(arena);
    free(ux);
    free(uy);
}

static void test_b(const char *path) {
    megcc_model *m;
    megcc_network *net, *small;
    megcc_tensor_info info;
    void *arena;
    float *x, *out;
    int i;
    CHECK(megcc_model_load_from_path(path, &m) == MEGCC_OK);
    CHECK(megcc_model_num_plans(m) == 2);
    CHECK(!strcmp(megcc_model_plan_name(m, 1), "x=(2,4)"));
    CHECK(megcc_model_plan_name(m, 2) == NULL);
    CHECK(megcc_network_arena_size(m, -1) == megcc_network_arena_size(m, 1));
    CHECK(megcc_model_plan_input_info(m, 1, 0, &info) == MEGCC_OK && info.dims[0] == 2);
    /* an arena sized for plan 0 cannot switch to plan 1 */
    arena = aligned(megcc_network_arena_size(m, 0), 64);
    CHECK(megcc_network_create(m, arena, megcc_network_arena_size(m, 0), &small) == MEGCC_OK);
    CHECK(megcc_network_select_plan(small, 1) == MEGCC_ERR_ARENA_TOO_SMALL);
    CHECK(megcc_network_plan(small) == 0);
    megcc_network_destroy(small);
    free(arena);

    CHECK(megcc_network_create(m, NULL, 0, &net) == MEGCC_OK);
    CHECK(megcc_network_select_plan(net, 1) == MEGCC_OK);
    CHECK(megcc_network_input_info(net, 0, &info) == MEGCC_OK && info.nbytes == 32);
    x = (float *)megcc_network_input_data(net, 0);
    for (i = 0; i < 8; i++) x[i] = (float)i - 3.5f;
    CHECK(megcc_network_forward(net) == MEGCC_OK);
    out = (float *)megcc_network_output_data(net, 0);
    for (i = 0; i < 8; i++) CHECK(out[i] == (x[i] > 0 ? 2 * x[i] : 0));
    CHECK(megcc_network_select_plan(net, 0) == MEGCC_OK);
    x = (float *)megcc_network_input_data(net, 0);
    for (i = 0; i < 4; i++) x[i] = (float)i - 1.5f;
    CHECK(megcc_network_forward(net) == MEGCC_OK);
    out = (float *)megcc_network_output_data(net, 0);
    for (i = 0; i < 4; i++) CHECK(out[i] == (x[i] > 0 ? x[i] : 0));
    megcc_network_destroy(net);
    megcc_model_free(m);
}

static void test_c(const char *path) {
    megcc_model *m;
    megcc_network *net;
    CHECK(megcc_model_load_from_path(path, &m) == MEGCC_OK);
    CHECK(megcc_network_create(m, NULL, 0, &net) == MEGCC_OK);
    CHECK(megcc_network_forward(net) == MEGCC_ERR_KERNEL_FAILED);
    CHECK(strstr(megcc_network_last_error(net), "fail_i32") != NULL);
    CHECK(strstr(megcc_network_last_error(net), "returned 7") != NULL);
    megcc_network_destroy(net);
    megcc_model_free(m);
}

static void test_misc(const char *path_a) {
    megcc_model *m = (megcc_model *)1;
    FILE *f = fopen(path_a, "rb");
    unsigned char *raw = (unsigned char *)aligned(4096, 64);
    size_t n = fread(raw + 1, 1, 4095, f);
    fclose(f);
    CHECK(megcc_model_load_from_path("/nonexistent/x.tiny", &m) == MEGCC_ERR_IO && m == NULL);
    CHECK(megcc_model_load_from_memory(raw + 1, n, 0, &m) == MEGCC_ERR_ALIGNMENT);
    CHECK(megcc_model_load_from_memory(raw + 1, n, 1, &m) == MEGCC_OK); /* copy realigns */
    megcc_model_free(m);
    CHECK(megcc_model_load_from_memory(NULL, 10, 1, &m) == MEGCC_ERR_INVALID_ARG);
    CHECK(megcc_network_create(NULL, NULL, 0, NULL) == MEGCC_ERR_INVALID_ARG);
    CHECK(!strcmp(megcc_status_string(MEGCC_ERR_BAD_CRC), "model checksum mismatch"));
    megcc_network_destroy(NULL);
    megcc_model_free(NULL);
    free(raw);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    test_a(argv[1]);
    test_b(argv[2]);
    test_c(argv[3]);
    test_misc(argv[1]);
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures != 0;
}
