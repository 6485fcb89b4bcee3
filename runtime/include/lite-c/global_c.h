/* The global part of MegEngine Lite's C API (lite-c/global_c.h): every function of Lite
 * 1.13's, with Lite's names and signatures, on the megcc runtime.
 *
 * Calls that have no meaning on a CPU runtime whose kernels and memory plan were fixed at
 * compile time (GPU devices and memory pairs, TensorRT, algorithm caches, model
 * decryption, extern-operator loaders) return -1 with LITE_get_last_error_code() ==
 * LITE_MEGCC_NOT_SUPPORTED and a message saying so. */
#ifndef LITE_C_GLOBAL_H_
#define LITE_C_GLOBAL_H_

#include "macro.h"
#include "network_c.h"

#ifdef __cplusplus
extern "C" {
#endif

/*! Version of the megcc runtime (model format major.minor, patch 0). */
LITE_API int LITE_get_version(int* major, int* minor, int* patch);

/*! Error code of the calling thread's last failed LITE_* call; OK after a success only
 * if LITE_clear_last_error was called (as in Lite, successes do not reset it). */
LITE_API ErrorCode LITE_get_last_error_code(void);

/*! Clear the calling thread's last error code and message. */
LITE_API void LITE_clear_last_error(void);

/*! Message of the calling thread's last failed LITE_* call (one buffer per thread, as
 * megcc_last_error: see "Errors and threads" in megcc/megcc.h, including the bare-metal
 * fallback). Thread safety of this layer: calls on different networks may run in
 * different threads at once (LITE_make_default_network and friends write nothing shared);
 * the process-wide configuration below (log level, hooks) is written only by its setters:
 * set it before other threads use the layer. */
LITE_API const char* LITE_get_last_error(void);

/*! Devices of a type: 1 for LITE_CPU and LITE_DEVICE_DEFAULT, 0 for the others. */
LITE_API int LITE_get_device_count(LiteDeviceType device_type, size_t* count);

/*! Nothing to coalesce (the runtime keeps no free memory): returns 0. */
LITE_API int LITE_try_coalesce_all_free_memory(void);

/*! Model decryption function (Lite's type; decryption is not supported). */
typedef size_t (*LiteDecryptionFunc)(
        const void* input_data, size_t input_size, const uint8_t* key_data, size_t key_size,
        const void* output_data);

/*! Model information parser (Lite's type; model-packed JSON info is not supported). */
typedef int (*LiteParseInfoFunc)(
        const void* info_data, size_t info_size, const char* model_name, LiteConfig* config,
        LiteNetworkIO* network_io, int* device_id, size_t* nr_threads,
        int* is_cpu_inplace_mode, int* use_tensorrt);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): compiled models are not encrypted. */
LITE_API int LITE_register_decryption_and_key(
        const char* decrypt_name, const LiteDecryptionFunc func, const uint8_t* key_data,
        size_t key_size);
LITE_API int LITE_update_decryption_or_key(
        const char* decrypt_name, const LiteDecryptionFunc func, const uint8_t* key_data,
        size_t key_size);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): models carry no packed info. */
LITE_API int LITE_register_parse_info_func(
        const char* info_type, const LiteParseInfoFunc parse_func);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): no extern-operator libraries to load. */
LITE_API int LITE_set_loader_lib_path(const char* loader_path);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): kernels are chosen at compile time, there is
 * no algorithm cache. */
LITE_API int LITE_set_persistent_cache(const char* cache_path, int always_sync);
LITE_API int LITE_dump_persistent_cache(const char* cache_path);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): no TensorRT. */
LITE_API int LITE_set_tensor_rt_cache(const char* cache_path);
LITE_API int LITE_dump_tensor_rt_cache(void);

/*! Log level of the Lite layer (process-wide configuration: set before other threads use
 * the layer). Errors are logged at LITE_ERROR. */
LITE_API int LITE_set_log_level(LiteLogLevel level);
LITE_API int LITE_get_log_level(LiteLogLevel* level);

/*! Not supported (LITE_MEGCC_NOT_SUPPORTED): no device memory. */
LITE_API int LITE_register_memory_pair(
        void* vir_ptr, void* phy_ptr, size_t length, LiteDeviceType device,
        LiteBackend backend);
LITE_API int LITE_clear_memory_pair(
        void* vir_ptr, void* phy_ptr, LiteDeviceType device, LiteBackend backend);
LITE_API int LITE_lookup_physic_ptr(
        void* vir_ptr, void** phy_ptr, LiteDeviceType device, LiteBackend backend);

/*! megcc extension: the platform hooks (alloc/free/log/time) used by networks and tensors
 * made after this call; required when the runtime is built with MEGCC_NO_LIBC_HOOKS. The
 * struct is copied. Process-wide configuration: set before other threads use the layer.
 * Declared in megcc/megcc.h. */
struct megcc_hooks;
LITE_API int LITE_megcc_set_hooks(const struct megcc_hooks* hooks);

#ifdef __cplusplus
}
#endif
#endif
