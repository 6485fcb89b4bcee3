/* The rest of MegEngine Lite's C API, used as Lite's own examples and tests use it:
 * host tensors (make, reshape, slice, fill, copy, share, concat, indexed memory), error
 * codes, threads and in-place mode, callbacks, a user allocator, shared weights, profiling,
 * I/O dumps, static memory info, model I/O info, and the documented "not supported" calls.
 *
 * lite_full_test B.tiny OUTDIR  (B: plan 0 x(1,4) -> relu(x); plan 1 x(2,4) -> relu(2x)) */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lite-c/global_c.h"
#include "lite-c/network_c.h"
#include "lite-c/tensor_c.h"

static int failures;
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            printf("FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond,      \
                   LITE_get_last_error());                                   \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static LiteLayout make_layout(size_t ndim, const size_t *shape, LiteDataType t) {
    LiteLayout l = default_layout;
    size_t k;
    l.ndim = ndim;
    for (k = 0; k < ndim; k++) l.shapes[k] = shape[k];
    l.data_type = t;
    return l;
}

static void test_host_tensors(void) {
    static const size_t shape[2] = {3, 4};
    LiteTensorDesc desc = default_desc;
    LiteTensor t, s, c, z, parts[2], shared, copy;
    LiteLayout l;
    float *p, *q;
    void *v;
    size_t i, bytes, start[2] = {1, 0}, end[2] = {3, 4}, step[2] = {1, 2};
    int cont, reshape[2] = {-1, 6}, dev;
    LiteDeviceType dt;

    desc.layout = make_layout(2, shape, LITE_FLOAT);
    CHECK(LITE_make_tensor(desc, &t) == 0);
    CHECK(LITE_get_tensor_total_size_in_byte(t, &bytes) == 0 && bytes == 48);
    CHECK(LITE_get_tensor_memory(t, (void **)&p) == 0 && p != NULL);
    for (i = 0; i < 12; i++) p[i] = (float)i;
    CHECK(LITE_get_tensor_memory_with_index(t, end, 1, &v) != 0); /* row 3 of 3 */
    start[0] = 2;
    CHECK(LITE_get_tensor_memory_with_index(t, start, 1, &v) == 0 && v == (void *)(p + 8));
    start[0] = 1;

    /* slice rows 1..2, every second column: a non-contiguous view of t's memory */
    CHECK(LITE_tensor_slice(t, start, end, step, 2, &s) == 0);
    CHECK(LITE_get_tensor_layout(s, &l) == 0 && l.ndim == 2 && l.shapes[0] == 2 &&
          l.shapes[1] == 2);
    CHECK(LITE_is_memory_continue(s, &cont) == 0 && cont == 0);
    CHECK(LITE_get_tensor_memory(s, (void **)&q) == 0 && q == p + 4);
    /* copy the slice out: 4, 6, 8, 10 */
    CHECK(LITE_make_tensor(default_desc, &copy) == 0);
    CHECK(LITE_tensor_copy(copy, s) == 0);
    CHECK(LITE_get_tensor_memory(copy, (void **)&q) == 0);
    CHECK(q[0] == 4 && q[1] == 6 && q[2] == 8 && q[3] == 10);
    CHECK(LITE_is_memory_continue(copy, &cont) == 0 && cont == 1);
    /* zero the slice in place: t keeps its other elements */
    CHECK(LITE_tensor_fill_zero(s) == 0);
    CHECK(p[4] == 0 && p[5] == 5 && p[6] == 0 && p[10] == 0 && p[11] == 11 && p[3] == 3);

    /* reshape with a deduced dimension */
    CHECK(LITE_tensor_reshape(t, reshape, 2) == 0);
    CHECK(LITE_get_tensor_layout(t, &l) == 0 && l.shapes[0] == 2 && l.shapes[1] == 6);
    reshape[1] = 5;
    CHECK(LITE_tensor_reshape(t, reshape, 2) != 0);
    CHECK(LITE_get_last_error_code() == LITE_INTERNAL_ERROR);

    /* concat along axis 1: (2,6) ++ (2,6) -> (2,12) */
    parts[0] = t;
    parts[1] = t;
    CHECK(LITE_tensor_concat(parts, 2, 1, LITE_CPU, -1, &c) == 0);
    CHECK(LITE_get_tensor_layout(c, &l) == 0 && l.shapes[0] == 2 && l.shapes[1] == 12);
    CHECK(LITE_get_tensor_memory(c, (void **)&q) == 0);
    CHECK(q[0] == p[0] && q[6] == p[0] && q[12] == p[6] && q[23] == p[11]);

    /* share memory: writes through one are seen through the other */
    CHECK(LITE_make_tensor(default_desc, &shared) == 0);
    CHECK(LITE_tensor_share_memory_with(shared, t) == 0);
    CHECK(LITE_get_tensor_memory(shared, (void **)&q) == 0 && q == p);
    CHECK(LITE_get_tensor_layout(shared, &l) == 0 && l.shapes[1] == 6);

    /* reset with caller memory and a new layout */
    {
        static float mine[6] = {1, 2, 3, 4, 5, 6};
        static const size_t six[1] = {6};
        CHECK(LITE_reset_tensor(shared, make_layout(1, six, LITE_FLOAT), mine) == 0);
        CHECK(LITE_get_tensor_memory(shared, (void **)&q) == 0 && q == mine);
    }

    CHECK(LITE_get_tensor_device_type(t, &dt) == 0 && dt == LITE_CPU);
    CHECK(LITE_get_tensor_device_id(t, &dev) == 0 && dev == 0);
    CHECK(LITE_is_pinned_host(t, &dev) == 0 && dev == 0);
    desc.device_type = LITE_CUDA;
    CHECK(LITE_make_tensor(desc, &z) != 0);

    /* as Lite's own tensor tests expect: a tensor made from default_desc is empty (0 bytes;
     * nothing to copy or share from it); the pinned-host flag is reported as made */
    {
        LiteTensor empty, pinned;
        LiteTensorDesc pin = desc;
        pin.device_type = LITE_CPU;
        pin.is_pinned_host = 1;
        CHECK(LITE_make_tensor(default_desc, &empty) == 0);
        CHECK(LITE_get_tensor_total_size_in_byte(empty, &bytes) == 0 && bytes == 0);
        CHECK(LITE_tensor_copy(t, empty) == -1 && LITE_get_last_error_code() != OK);
        CHECK(LITE_tensor_share_memory_with(t, empty) == -1);
        CHECK(LITE_make_tensor(pin, &pinned) == 0);
        CHECK(LITE_is_pinned_host(pinned, &dev) == 0 && dev == 1);
        CHECK(LITE_destroy_tensor(pinned) == 0);
        /* Lite's global holder: destroying a tensor twice is a no-op returning 0 (the
         * sanitizers see no use after free) */
        CHECK(LITE_destroy_tensor(empty) == 0);
        CHECK(LITE_destroy_tensor(empty) == 0);
        LITE_clear_last_error();
    }

    CHECK(LITE_destroy_tensor(s) == 0);
    CHECK(LITE_destroy_tensor(c) == 0);
    CHECK(LITE_destroy_tensor(copy) == 0);
    CHECK(LITE_destroy_tensor(shared) == 0);
    CHECK(LITE_destroy_tensor(t) == 0);
}

static int allocations, frees, starts, finishes, asyncs;

static void *count_alloc(LiteDeviceType device, int id, size_t size, size_t align) {
    void *p = NULL;
    (void)device, (void)id;
    allocations++;
    if (align < sizeof(void *)) align = sizeof(void *);
    return posix_memalign(&p, align, size ? size : 1) == 0 ? p : NULL;
}

static void count_free(LiteDeviceType device, int id, void *ptr) {
    (void)device, (void)id;
    frees++;
    free(ptr);
}

static int on_start(const LiteIO *inputs, const LiteTensor *tensors, size_t n, void *user) {
    float *x;
    (void)user;
    if (n != 1 || strcmp(inputs[0].name, "x") || inputs[0].config_layout.shapes[1] != 4) return 1;
    if (LITE_get_tensor_memory(tensors[0], (void **)&x)) return 1;
    starts++;
    return 0;
}

static int on_finish(const LiteIO *outputs, const LiteTensor *tensors, size_t n) {
    (void)tensors;
    if (n != 1 || strcmp(outputs[0].name, "out")) return 1;
    finishes++;
    return 0;
}

static int on_async(void *user) {
    (*(int *)user)++;
    return 0;
}

static int read_file(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f) return 0;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return 1;
}

static void test_network(const char *model, const char *outdir) {
    LiteNetwork net, twin;
    LiteTensor in, out, in2, out2;
    float *x, *y, *y_before, *x2, *y2;
    size_t threads, i;
    int inplace, id, info_size, k;
    const char *info;
    LiteDeviceType dt;
    char path[512], text[4096];
    LiteNetworkIO ios;

    CHECK(LITE_make_default_network(&net) == 0);
    CHECK(LITE_set_memory_allocator(net, count_alloc, count_free) == 0);
    CHECK(LITE_set_cpu_threads_number(net, 2) == 0); /* before load: applied at load */
    CHECK(LITE_load_model_from_path(net, model) == 0);
    CHECK(allocations > 0);
    CHECK(LITE_set_memory_allocator(net, count_alloc, count_free) != 0); /* too late */
    CHECK(LITE_get_cpu_threads_number(net, &threads) == 0 && threads == 2);
    CHECK(LITE_is_cpu_inplace_mode(net, &inplace) == 0 && inplace == 0);
    CHECK(LITE_set_cpu_inplace_mode(net) == 0);
    CHECK(LITE_is_cpu_inplace_mode(net, &inplace) == 0 && inplace == 1);
    CHECK(LITE_get_device_id(net, &id) == 0 && id == 0);
    CHECK(LITE_set_device_id(net, 0) == 0);
    CHECK(LITE_get_stream_id(net, &id) == 0 && id == 0);
    CHECK(LITE_get_device_type(net, &dt) == 0 && dt == LITE_CPU);
    CHECK(LITE_get_model_extra_info(net, &info, &info_size) == 0 && info_size == 0);
    CHECK(LITE_set_network_algo_policy(net, LITE_ALGO_PROFILE | LITE_ALGO_REPRODUCIBLE) == 0);
    CHECK(LITE_set_network_algo_workspace_limit(net, 1 << 20) == 0);

    /* I/O memory is valid before the first forward and stays the same after it */
    CHECK(LITE_get_io_tensor(net, "x", LITE_INPUT, &in) == 0);
    CHECK(LITE_get_io_tensor(net, "out", LITE_OUTPUT, &out) == 0);
    CHECK(LITE_get_tensor_memory(in, (void **)&x) == 0);
    CHECK(LITE_get_tensor_memory(out, (void **)&y_before) == 0 && y_before != NULL);

    CHECK(LITE_set_start_callback_with_userdata(net, on_start, NULL) == 0);
    CHECK(LITE_set_finish_callback(net, on_finish) == 0);
    CHECK(LITE_set_async_callback_with_userdata(net, on_async, &asyncs) == 0);
    sprintf(path, "%s/profile.json", outdir);
    CHECK(LITE_enable_profile_performance(net, path) == 0);
    sprintf(path, "%s/io.txt", outdir);
    CHECK(LITE_enable_io_txt_dump(net, path) == 0);
    CHECK(LITE_enable_io_bin_dump(net, outdir) == 0);
    for (k = 0; k < 3; k++) {
        for (i = 0; i < 4; i++) x[i] = (float)i - 1.5f - (float)k;
        CHECK(LITE_forward(net) == 0 && LITE_wait(net) == 0);
        CHECK(LITE_get_tensor_memory(out, (void **)&y) == 0 && y == y_before);
        for (i = 0; i < 4; i++) CHECK(y[i] == (x[i] > 0 ? x[i] : 0));
    }
    CHECK(starts == 3 && finishes == 3 && asyncs == 3);
    CHECK(read_file(path, text, sizeof text) && strstr(text, "output 'out' float32 (1,4)"));
    sprintf(path, "%s/output_out.bin", outdir);
    {
        float dumped[4];
        FILE *f = fopen(path, "rb");
        CHECK(f && fread(dumped, sizeof(float), 4, f) == 4);
        if (f) fclose(f);
        CHECK(memcmp(dumped, y, sizeof dumped) == 0);
    }
    CHECK(LITE_get_static_memory_alloc_info(net, outdir) == 0);
    sprintf(path, "%s/static_memory_alloc_info.json", outdir);
    CHECK(read_file(path, text, sizeof text) && strstr(text, "\"arena_bytes\"") &&
          strstr(text, "\"name\": \"x\""));

    /* a second network sharing the first one's weights and tables */
    CHECK(LITE_make_default_network(&twin) == 0);
    CHECK(LITE_shared_weight_with_network(twin, net) == 0);
    CHECK(LITE_get_io_tensor(twin, "x", LITE_INPUT, &in2) == 0);
    CHECK(LITE_get_io_tensor(twin, "out", LITE_OUTPUT, &out2) == 0);
    CHECK(LITE_get_tensor_memory(in2, (void **)&x2) == 0 && x2 != x);
    for (i = 0; i < 4; i++) x2[i] = 2.0f - (float)i;
    CHECK(LITE_forward(twin) == 0);
    CHECK(LITE_get_tensor_memory(out2, (void **)&y2) == 0);
    for (i = 0; i < 4; i++) CHECK(y2[i] == (x2[i] > 0 ? x2[i] : 0));
    CHECK(LITE_destroy_network(net) == 0); /* the model stays alive for twin */
    CHECK(LITE_forward(twin) == 0);
    CHECK(LITE_destroy_network(twin) == 0);
    CHECK(allocations == frees);
    sprintf(path, "%s/profile.json", outdir);
    CHECK(read_file(path, text, sizeof text) && strstr(text, "\"forwards\": 3") &&
          strstr(text, "\"calls\": 3"));

    /* model I/O without a network */
    CHECK(LITE_get_model_io_info_by_path(model, *default_config(), &ios) == 0);
    CHECK(ios.input_size == 1 && ios.output_size == 1 && !strcmp(ios.inputs[0].name, "x") &&
          !strcmp(ios.outputs[0].name, "out") && ios.inputs[0].config_layout.ndim == 2);
    CHECK(LITE_get_model_io_info_by_path("no-such-model.tiny", *default_config(), &ios) != 0);
}

static void test_errors_and_unsupported(void) {
    LiteNetwork net;
    size_t n;
    CHECK(LITE_make_default_network(&net) == 0);
    CHECK(LITE_use_tensorrt(net) != 0);
    CHECK(LITE_get_last_error_code() == LITE_MEGCC_NOT_SUPPORTED);
    CHECK(strstr(LITE_get_last_error(), "not supported by the megcc runtime") != NULL);
    LITE_clear_last_error();
    CHECK(LITE_get_last_error_code() == OK && LITE_get_last_error()[0] == '\0');
    CHECK(LITE_set_device_id(net, 1) != 0 && LITE_get_last_error_code() == LITE_MEGCC_NOT_SUPPORTED);
    CHECK(LITE_set_persistent_cache("cache", 1) != 0);
    CHECK(LITE_set_loader_lib_path("lib.so") != 0);
    CHECK(LITE_enable_global_layout_transform(net) != 0);
    CHECK(LITE_get_discrete_tensor(net, "x", 0, LITE_INPUT, NULL) != 0);
    CHECK(LITE_register_decryption_and_key("aes", NULL, NULL, 0) != 0);
    CHECK(LITE_get_device_count(LITE_CPU, &n) == 0 && n == 1);
    CHECK(LITE_get_device_count(LITE_CUDA, &n) == 0 && n == 0);
    CHECK(LITE_try_coalesce_all_free_memory() == 0);
    CHECK(LITE_forward(net) != 0 && LITE_get_last_error_code() == LITE_INTERNAL_ERROR);
    CHECK(LITE_load_model_from_path(net, "model.mge") != 0);
    { /* a file that is not a compiled model: the message says what to do */
        static const char mge[64] = "mgb0 a MegEngine model";
        CHECK(LITE_load_model_from_mem(net, (void *)mge, sizeof mge) != 0);
        CHECK(strstr(LITE_get_last_error(), "megcc compile") != NULL);
    }
    CHECK(LITE_destroy_network(net) == 0);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    CHECK(LITE_set_log_level(LITE_ERROR) == 0);
    test_host_tensors();
    test_network(argv[1], argv[2]);
    test_errors_and_unsupported();
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures != 0;
}
