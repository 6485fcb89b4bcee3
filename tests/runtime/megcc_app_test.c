/* A MegCC application's start-up, as MegCC's own examples write it: register the platform
 * callbacks (tinynn_callback.h), offer an extern-operator loader (extern_c_opr.h), then
 * run a model through Lite-C.   megcc_app_test B.tiny */
#define _POSIX_C_SOURCE 200112L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "extern_c_opr.h"
#include "lite-c/global_c.h"
#include "lite-c/network_c.h"
#include "lite-c/tensor_c.h"
#include "tinynn_callback.h"

static int failures, mallocs, frees, logs;
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            printf("FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond,      \
                   LITE_get_last_error());                                   \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static int count_log(const char *format, ...) {
    va_list ap;
    int n;
    logs++;
    va_start(ap, format);
    n = vfprintf(stdout, format, ap);
    va_end(ap);
    return n;
}

static void *count_malloc(size_t size) {
    mallocs++;
    return malloc(size);
}

static void count_free(void *p) {
    frees++;
    free(p);
}

static void now(int32_t *sec, int32_t *usec) {
    struct timeval t;
    gettimeofday(&t, NULL);
    *sec = (int32_t)t.tv_sec;
    *usec = (int32_t)t.tv_usec;
}

static MGBOprDesc *no_desc(size_t nr_input, const void *buf, size_t len) {
    (void)nr_input, (void)buf, (void)len;
    return NULL;
}

/* what a loader library's mgb_c_opr_init does */
static int loader_init(const MGBExternCOprApi *(*get_api)(int)) {
    static const MGBOprLoader loader = {"my_custom_op", no_desc};
    const MGBExternCOprApi *api = get_api(MGB_EXTERN_C_OPR_VERSION);
    return api && api->register_loader(&loader);
}

int main(int argc, char **argv) {
    TinyNnCallBack cb = {0};
    LiteNetwork model;
    LiteTensor in, out;
    float *x, *y;
    size_t i;
    if (argc != 2) return 2;
    cb.tinynn_log_cb = count_log;
    cb.tinynn_malloc_cb = count_malloc;
    cb.tinynn_free_cb = count_free;
    cb.tinynn_gettime_cb = now;
    register_tinynn_cb(TINYNN_CB_VERSION - 1, cb);
    CHECK(logs == 1); /* refused, and said so through the log callback */
    register_tinynn_cb(TINYNN_CB_VERSION, cb);

    CHECK(mgb_get_extern_c_opr_api_versioned(MGB_EXTERN_C_OPR_VERSION - 1) == NULL);
    CHECK(loader_init(mgb_get_extern_c_opr_api_versioned) == 0); /* nothing to register */
    CHECK(LITE_get_last_error_code() == LITE_MEGCC_NOT_SUPPORTED);
    CHECK(mgb_get_extern_c_opr_api()->unregister_loader("my_custom_op") == 0);

    LITE_set_log_level(WARN);
    CHECK(LITE_make_network(&model, *default_config(), *default_network_io()) == 0);
    CHECK(LITE_load_model_from_path(model, argv[1]) == 0);
    CHECK(mallocs > 0);
    CHECK(LITE_get_io_tensor(model, "x", LITE_INPUT, &in) == 0);
    CHECK(LITE_get_io_tensor(model, "out", LITE_OUTPUT, &out) == 0);
    CHECK(LITE_get_tensor_memory(in, (void **)&x) == 0);
    for (i = 0; i < 4; i++) x[i] = (float)i - 2.0f;
    CHECK(LITE_forward(model) == 0 && LITE_wait(model) == 0);
    CHECK(LITE_get_tensor_memory(out, (void **)&y) == 0);
    for (i = 0; i < 4; i++) CHECK(y[i] == (x[i] > 0 ? x[i] : 0));
    logs = 0;
    CHECK(LITE_get_io_tensor(model, "missing", LITE_IO, &in) != 0);
    CHECK(logs == 1); /* errors are logged through tinynn_log_cb */
    CHECK(LITE_destroy_network(model) == 0);
    CHECK(mallocs == frees);
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures != 0;
}
