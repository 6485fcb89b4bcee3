/* Lite-C compatibility test: written only against lite-c headers, as a MegEngine Lite
 * user would. lite_test B.tiny (plan 0: x(1,4) -> relu(x); plan 1: x(2,4) -> relu(2x)). */
#define _POSIX_C_SOURCE 200112L
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

static int run_plan(LiteNetwork net, size_t rows) {
    LiteTensor in, out;
    LiteLayout layout;
    float *x, *y;
    size_t i, bytes;
    int ok = 1;
    if (LITE_get_io_tensor(net, "x", LITE_INPUT, &in)) return 0;
    if (LITE_get_io_tensor(net, "out", LITE_OUTPUT, &out)) return 0;
    if (LITE_get_tensor_layout(in, &layout)) return 0;
    if (layout.ndim != 2 || layout.shapes[0] != rows || layout.shapes[1] != 4 ||
        layout.data_type != LITE_FLOAT)
        return 0;
    if (LITE_get_tensor_total_size_in_byte(in, &bytes) || bytes != rows * 16) return 0;
    if (LITE_get_tensor_memory(in, (void **)&x)) return 0;
    for (i = 0; i < rows * 4; i++) x[i] = (float)i - 3.0f;
    if (LITE_forward(net) || LITE_wait(net)) return 0;
    if (LITE_get_tensor_memory(out, (void **)&y)) return 0;
    for (i = 0; i < rows * 4; i++) {
        float v = (rows == 1 ? 1.0f : 2.0f) * x[i];
        if (y[i] != (v > 0 ? v : 0)) ok = 0;
    }
    return ok;
}

int main(int argc, char **argv) {
    LiteNetwork net, net2, net3;
    LiteTensor in;
    LiteLayout layout = default_layout;
    LiteLogLevel level;
    const char *names[4];
    const char *name;
    size_t n = 0, size;
    void *mem;
    FILE *f;
    float user_x[8], *p;
    int major, minor, patch;
    if (argc != 2) return 2;

    CHECK(LITE_set_log_level(ERROR) == 0);
    CHECK(LITE_get_log_level(&level) == 0 && level == LITE_ERROR);
    CHECK(LITE_get_version(&major, &minor, &patch) == 0 && major == 1);
    CHECK(LITE_make_network(&net, *default_config(), *default_network_io()) == 0);
    CHECK(LITE_load_model_from_path(net, argv[1]) == 0);
    CHECK(LITE_get_all_input_name(net, &n, NULL) == 0 && n == 1);
    CHECK(LITE_get_all_input_name(net, &n, names) == 0 && !strcmp(names[0], "x"));
    CHECK(LITE_get_all_output_name(net, &n, names) == 0 && n == 1 && !strcmp(names[0], "out"));
    CHECK(LITE_get_output_name(net, 0, &name) == 0 && !strcmp(name, "out"));
    CHECK(LITE_get_output_name(net, 1, &name) != 0);
    CHECK(LITE_get_io_tensor(net, "nope", LITE_IO, &in) != 0);
    CHECK(strstr(LITE_get_last_error(), "nope") != NULL);
    CHECK(run_plan(net, 1));

    /* switch plans through the input layout, and back */
    CHECK(LITE_get_io_tensor(net, "x", LITE_IO, &in) == 0);
    layout.ndim = 2;
    layout.shapes[0] = 2;
    layout.shapes[1] = 4;
    layout.data_type = LITE_FLOAT;
    CHECK(LITE_set_tensor_layout(in, layout) == 0);
    CHECK(run_plan(net, 2));
    layout.shapes[0] = 3;
    CHECK(LITE_set_tensor_layout(in, layout) != 0); /* no such plan */
    layout.shapes[0] = 1;
    CHECK(LITE_set_tensor_layout(in, layout) == 0);
    CHECK(run_plan(net, 1));

    /* zero-copy input */
    CHECK(LITE_reset_tensor_memory(in, user_x, sizeof user_x) == 0);
    CHECK(LITE_get_tensor_memory(in, &mem) == 0 && mem == (void *)user_x);
    CHECK(run_plan(net, 1));
    CHECK(LITE_destroy_tensor(in) == 0);

    /* shared weights from an aligned buffer, shared runtime memory between networks */
    f = fopen(argv[1], "rb");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    CHECK(posix_memalign(&mem, 64, size) == 0);
    CHECK(fread(mem, 1, size, f) == size);
    fclose(f);
    CHECK(LITE_make_default_network(&net2) == 0);
    CHECK(LITE_share_runtime_memroy(net, net2) == 0);
    CHECK(LITE_load_model_with_shared_mem(net2, mem, size) == 0);
    CHECK(run_plan(net2, 1));
    CHECK(run_plan(net, 1));
    CHECK(LITE_make_network_config(&net3, *default_config()) == 0);
    CHECK(LITE_load_model_from_mem(net3, mem, size) == 0);
    CHECK(LITE_share_runtime_memroy(net3, net) == 0); /* after load: net moves to net3's ring */
    CHECK(run_plan(net, 1));
    CHECK(run_plan(net3, 1));
    CHECK(run_plan(net2, 1));
    CHECK(LITE_get_tensor_memory(in, (void **)&p) == 0); /* handle survives ring moves */

    /* errors */
    ((unsigned char *)mem)[100] ^= 1;
    {
        LiteNetwork bad;
        CHECK(LITE_make_default_network(&bad) == 0);
        CHECK(LITE_load_model_from_mem(bad, mem, size) != 0);
        CHECK(strstr(LITE_get_last_error(), "CRC") != NULL);
        CHECK(LITE_forward(bad) != 0);
        CHECK(LITE_destroy_network(bad) == 0);
    }
    CHECK(LITE_destroy_network(net3) == 0);
    CHECK(LITE_destroy_network(net) == 0);
    CHECK(LITE_destroy_network(net2) == 0);
    free(mem);
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures != 0;
}
