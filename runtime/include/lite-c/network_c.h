/* The network part of MegEngine Lite's C API (lite-c/network_c.h): every function of
 * Lite 1.13's, with Lite's names, signatures and struct layouts, on the megcc runtime.
 * Options that only make sense for MegEngine's graph runtime are accepted and have no
 * effect (kernels, layouts and memory are fixed at compile time by megcc); calls that have
 * no meaning here return -1 with LITE_get_last_error_code() == LITE_MEGCC_NOT_SUPPORTED
 * (see global_c.h). */
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
    /*! Lite: pick options from the device heuristically. No effect: decided at compile time. */
    int auto_optimize_inference;
    /*! Lite: an input fed as several discrete tensors. Must be NULL or "". */
    const char* discrete_input_name;
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

/*! Memory allocator of a network (LITE_set_memory_allocator): device_type is LITE_CPU and
 * device_id 0 on this runtime. */
typedef void* (*LiteAllocate)(LiteDeviceType device_type, int device_id, size_t size,
                              size_t align);
typedef void (*LiteFree)(LiteDeviceType device_type, int device_id, void* ptr);

/*! Thread affinity callback (Lite's type; not supported on this runtime). */
typedef int (*LiteThreadAffinityCallback)(int thread_id);

/*! Called when an "async" forward finishes: on this runtime forward is synchronous, so
 * the callback runs at the end of LITE_forward, on the calling thread. */
typedef int (*LiteAsyncCallback)(void);
typedef int (*LiteAsyncCallbackWithData)(void* user_data);

/*! Called before (start) / after (finish) every forward with the network's inputs /
 * outputs: `size` LiteIO descriptions and the matching I/O tensors. A non-zero return
 * fails the forward. */
typedef int (*LiteStartCallback)(const LiteIO* inputs, const LiteTensor* input_tensors,
                                 size_t size);
typedef int (*LiteStartCallbackWithData)(const LiteIO* inputs, const LiteTensor* input_tensors,
                                         size_t size, void* user_data);
typedef int (*LiteFinishCallback)(const LiteIO* outputs, const LiteTensor* output_tensors,
                                  size_t size);
typedef int (*LiteFinishCallbackWithData)(const LiteIO* outputs,
                                          const LiteTensor* output_tensors, size_t size,
                                          void* user_data);

/*! Extra configuration (LITE_extra_configure). No effect on this runtime. */
typedef struct LiteExtraConfig {
    int disable_configure_by_model_info;
} LiteExtraConfig;

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

/*! dst_network loads src_network's model (already loaded), sharing its read-only weights
 * and tables; each network has its own activation memory. */
LITE_API int LITE_shared_weight_with_network(
        LiteNetwork dst_network, const LiteNetwork src_network);

/*! Lite's "CPU inplace mode" runs every kernel on the calling thread: the default here.
 * Setting it stops the network's worker threads (LITE_set_cpu_threads_number). */
LITE_API int LITE_set_cpu_inplace_mode(LiteNetwork network);
LITE_API int LITE_is_cpu_inplace_mode(const LiteNetwork network, int* is_cpu_inplace_mode);

/*! Threads the network's kernels run on (the calling thread plus nr_threads - 1 workers);
 * may be set before or after loading. Outputs are identical for every thread count. */
LITE_API int LITE_set_cpu_threads_number(LiteNetwork network, size_t nr_threads);
LITE_API int LITE_get_cpu_threads_number(const LiteNetwork network, size_t* nr_threads);

/*! The CPU is device 0 and stream 0: setting 0 (or -1, "any") succeeds, anything else is
 * not supported. */
LITE_API int LITE_set_device_id(LiteNetwork network, int device_id);
LITE_API int LITE_get_device_id(const LiteNetwork network, int* device_id);
LITE_API int LITE_set_stream_id(LiteNetwork network, int stream_id);
LITE_API int LITE_get_stream_id(const LiteNetwork network, int* stream_id);

/*! Always LITE_CPU. */
LITE_API int LITE_get_device_type(const LiteNetwork network, LiteDeviceType* device_type);

/*! Extra information packed in the model: none in a compiled model (info "" and size 0). */
LITE_API int LITE_get_model_extra_info(
        const LiteNetwork network, const char** info, int* info_size);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): no TensorRT. */
LITE_API int LITE_use_tensorrt(LiteNetwork network);

/*! Accepted, no effect: megcc chose every kernel at compile time (by cost). */
LITE_API int LITE_set_network_algo_policy(LiteNetwork network, LiteAlgoSelectStrategy strategy);
LITE_API int LITE_set_network_algo_fastrun_config(
        LiteNetwork network, unsigned int shared_batch_size, int binary_equal_between_batch);
LITE_API int LITE_set_network_algo_workspace_limit(LiteNetwork network, size_t workspace_limit);

/*! Callbacks; see the typedefs above. NULL removes one. */
LITE_API int LITE_set_async_callback(LiteNetwork network, const LiteAsyncCallback async_callback);
LITE_API int LITE_set_async_callback_with_userdata(
        LiteNetwork network, const LiteAsyncCallbackWithData async_callback, void* user_data);
LITE_API int LITE_set_start_callback(LiteNetwork network, const LiteStartCallback start_callback);
LITE_API int LITE_set_start_callback_with_userdata(
        LiteNetwork network, const LiteStartCallbackWithData start_callback, void* user_data);
LITE_API int LITE_set_finish_callback(
        LiteNetwork network, const LiteFinishCallback finish_callback);
LITE_API int LITE_set_finish_callback_with_userdata(
        LiteNetwork network, const LiteFinishCallbackWithData finish_callback, void* user_data);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): the thread pool has no affinity hook. */
LITE_API int LITE_set_runtime_thread_affinity(
        LiteNetwork network, const LiteThreadAffinityCallback thread_affinity_callback);

/*! The allocator for the network's memory (tables and activations); before loading. */
LITE_API int LITE_set_memory_allocator(
        LiteNetwork network, const LiteAllocate allocate_fun, const LiteFree free_fun);

/*! After every forward, append the time of each instruction (kernel) to a JSON profile
 * written to `profile_json_file_path` when the network is destroyed. Needs stdio. */
LITE_API int LITE_enable_profile_performance(
        LiteNetwork network, const char* profile_json_file_path);

/*! After every forward, write the network's inputs and outputs: as text (name, layout and
 * values) appended to io_txt_out_file, or as raw binary files `<name>.bin` in
 * io_bin_out_dir. Intermediate tensors live in a reused arena and are not dumped. */
LITE_API int LITE_enable_io_txt_dump(LiteNetwork network, const char* io_txt_out_file);
LITE_API int LITE_enable_io_bin_dump(LiteNetwork network, const char* io_bin_out_dir);

/*! Write the compiled static memory plan (arena size, every tensor's offset and size) as
 * JSON to `<log_dir>/static_memory_alloc_info.json`. */
LITE_API int LITE_get_static_memory_alloc_info(LiteNetwork network, const char* log_dir);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): layouts are chosen at compile time
 * (`megcc compile --enable-nchw44`). */
LITE_API int LITE_enable_global_layout_transform(LiteNetwork network);
LITE_API int LITE_dump_layout_transform_model(LiteNetwork network, const char* dump_file_path);

/*! The model's inputs and outputs (plan 0) without making a network. The names and arrays
 * are valid until the calling thread's next call of either function. */
LITE_API int LITE_get_model_io_info_by_path(
        const char* model_path, const LiteConfig config, LiteNetworkIO* ios);
LITE_API int LITE_get_model_io_info_by_memory(
        const void* model_mem, size_t size, const LiteConfig config, LiteNetworkIO* ios);

/*! Accepted, no effect. */
LITE_API int LITE_extra_configure(LiteNetwork network, LiteExtraConfig extra_config);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): no discrete inputs. */
LITE_API int LITE_get_discrete_tensor(
        LiteNetwork network, const char* io_name, size_t n_idx, LiteTensorPhase phase,
        LiteTensor* tensor);

/*! dst_network runs in src_network's activation memory (they must not run at the same
 * time). The shared block grows to the larger need; contents are not preserved. */
LITE_API int LITE_share_runtime_memroy(LiteNetwork src_network, LiteNetwork dst_network);

#ifdef __cplusplus
}
#endif
#endif
