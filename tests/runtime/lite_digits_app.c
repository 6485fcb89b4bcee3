/* An application written only against MegEngine Lite's C API, as Lite's examples do: load
 * a model, fill its first input from a file, forward, write its first output to a file.
 *   lite_digits_app MODEL INPUT.bin OUTPUT.bin */
#include <stdio.h>
#include <stdlib.h>

#include "lite-c/global_c.h"
#include "lite-c/network_c.h"
#include "lite-c/tensor_c.h"

#define LITE_CHECK(call)                                                    \
    do {                                                                    \
        if ((call) != 0) {                                                  \
            fprintf(stderr, "%s failed: %s\n", #call, LITE_get_last_error()); \
            return 1;                                                       \
        }                                                                   \
    } while (0)

int main(int argc, char **argv) {
    LiteNetwork network;
    LiteTensor input, output;
    LiteLayout layout;
    const char *input_name, *output_name;
    void *in_data, *out_data;
    size_t in_bytes, out_bytes;
    FILE *f;
    if (argc != 4) return 2;
    LITE_CHECK(LITE_make_network(&network, *default_config(), *default_network_io()));
    LITE_CHECK(LITE_load_model_from_path(network, argv[1]));
    LITE_CHECK(LITE_get_input_name(network, 0, &input_name));
    LITE_CHECK(LITE_get_output_name(network, 0, &output_name));
    LITE_CHECK(LITE_get_io_tensor(network, input_name, LITE_INPUT, &input));
    LITE_CHECK(LITE_get_io_tensor(network, output_name, LITE_OUTPUT, &output));
    LITE_CHECK(LITE_get_tensor_layout(input, &layout));
    LITE_CHECK(LITE_get_tensor_total_size_in_byte(input, &in_bytes));
    LITE_CHECK(LITE_get_tensor_memory(input, &in_data));
    f = fopen(argv[2], "rb");
    if (!f || fread(in_data, 1, in_bytes, f) != in_bytes) return 3;
    fclose(f);
    LITE_CHECK(LITE_forward(network));
    LITE_CHECK(LITE_wait(network));
    LITE_CHECK(LITE_get_tensor_memory(output, &out_data));
    LITE_CHECK(LITE_get_tensor_total_size_in_byte(output, &out_bytes));
    f = fopen(argv[3], "wb");
    if (!f || fwrite(out_data, 1, out_bytes, f) != out_bytes) return 4;
    fclose(f);
    printf("%s %zu dims -> %s %zu bytes\n", input_name, layout.ndim, output_name, out_bytes);
    LITE_CHECK(LITE_destroy_network(network));
    return 0;
}
