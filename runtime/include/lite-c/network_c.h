/* The network part of MegEngine Lite's C API (lite-c/network_c.h), subset implemented by
 * the megcc runtime. Types and declarations match Lite's; options that only make sense
 * for MegEngine's graph runtime are accepted and ignored (kernels, layouts and memory are
 * fixed at compile time by megcc). */
#ifndef LITE_C_NETWORK_H_
#define LITE_C_NETWORK_H_

#include "tensor_c.h"

#ifdef __cplusplus
extern "C" {
#endif

/*! Inference options, as in Lite. Ignored: megcc decided all of them at compile time. */
typedef struct Options {
    int weight_preprocess;
    int fuse_preprocess;
    int fake_next_exec;
    int var_sanity_check_first_run;
    int const_shape;
    int force_dynamic_alloc;
    int force_output_dynamic_alloc;
    int force_output_use_user_specified_memory;
    int no_profiling_on_shape_change;
    int jit_level;
    int comp_node_seq_record_level;
    int graph_opt_level;
    int async_exec_level;

    /* layout transform options */
    int enable_nchw44;
    int enable_nchw44_dot;
    int enable_nchw88;
    int enable_nhwcd4;
    int enable_nchw4;
    int enable_nchw32;
    int enable_nchw64;
} LiteOptions;

extern LITE_API const LiteOptions default_option;

/*! Configuration when loading: device_type must be LITE_CPU or LITE_DEVICE_DEFAULT;
 * has_compression and bare_model_cryption_name must be 0/NULL/"". */
typedef struct LiteConfig {
    int has_compression;
    int device_id;
    LiteDeviceType device_type;
    LiteBackend backend;
    const char* bare_model_cryption_name;
    LiteOptions options;
} LiteConfig;

/*! Pointer to the calling thread's default config, reset on every call. */
LITE_API LiteConfig* default_config(void);

/*! One network input/output configuration (accepted, not needed by megcc). */
typedef struct LiteIO {
    const char* name;
    int is_host;
    LiteIOType io_type;
    LiteLayout config_layout;
} LiteIO;

extern LITE_API const LiteIO default_io;

typedef struct LiteNetworkIO {
    LiteIO* inputs;
    LiteIO* outputs;
    size_t input_size;
    size_t output_size;
} LiteNetworkIO;

/*! Pointer to the calling thread's empty NetworkIO, reset on every call. */
LITE_API LiteNetworkIO* default_network_io(void);

/*! The network: a model plus its runtime memory. */
typedef void* LiteNetwork;

LITE_API int LITE_make_default_network(LiteNetwork* network);
LITE_API int LITE_make_network(
        LiteNetwork* network, const LiteConfig config, const LiteNetworkIO network_io);
LITE_API int LITE_make_network_config(LiteNetwork* network, const LiteConfig config);

/*! Load from memory; the model is copied, the caller may free model_mem afterwards. */
LITE_API int LITE_load_model_from_mem(LiteNetwork network, void* model_mem, size_t size);

/*! Load from memory without copying: weights are used in place. model_mem must be
 * 64-byte aligned and stay valid (unchanged) until the network is destroyed; the runtime
 * does not free it. */
LITE_API int LITE_load_model_with_shared_mem(
        LiteNetwork network, void* model_mem, size_t size);

LITE_API int LITE_load_model_from_path(LiteNetwork network, const char* model_path);

LITE_API int LITE_destroy_network(LiteNetwork network);

/*! Run the network (synchronously). */
LITE_API int LITE_forward(const LiteNetwork network);

/*! Forward is synchronous, so this returns at once. */
LITE_API int LITE_wait(const LiteNetwork network);

/*! Get an input (phase LITE_INPUT), output (LITE_OUTPUT) or either (LITE_IO) by name.
 * The tensor belongs to the network and stays valid until LITE_destroy_network. */
LITE_API int LITE_get_io_tensor(
        LiteNetwork network, const char* io_name, LiteTensorPhase phase,
        LiteTensor* tensor);

LITE_API int LITE_get_input_name(const LiteNetwork network, size_t index, const char** name);
LITE_API int LITE_get_output_name(const LiteNetwork network, size_t index, const char** name);

/*! *size receives the count; if name is not NULL it receives that many names. */
LITE_API int LITE_get_all_input_name(
        const LiteNetwork network, size_t* size, const char** name);
LITE_API int LITE_get_all_output_name(
        const LiteNetwork network, size_t* size, const char** name);

/*! dst_network runs in src_network's activation memory (they must not run at the same
 * time). The shared block grows to the larger need; contents are not preserved. */
LITE_API int LITE_share_runtime_memroy(LiteNetwork src_network, LiteNetwork dst_network);

#ifdef __cplusplus
}
#endif
#endif
