/* The global part of MegEngine Lite's C API (lite-c/global_c.h), subset implemented by the
 * megcc runtime. */
#ifndef LITE_C_GLOBAL_H_
#define LITE_C_GLOBAL_H_

#include "macro.h"
#include "network_c.h"

#ifdef __cplusplus
extern "C" {
#endif

/*! Version of the megcc runtime (model format major.minor, patch 0). */
LITE_API int LITE_get_version(int* major, int* minor, int* patch);

/*! Message of the calling thread's last failed LITE_* call (one buffer per thread, as
 * megcc_last_error: see "Errors and threads" in megcc/megcc.h, including the bare-metal
 * fallback). Thread safety of this layer: calls on different networks may run in
 * different threads at once (LITE_make_default_network and friends write nothing shared);
 * the process-wide configuration below (log level, hooks) is written only by its setters:
 * set it before other threads use the layer. */
LITE_API const char* LITE_get_last_error(void);

/*! Log level of the Lite layer (process-wide configuration: set before other threads use
 * the layer). Errors are logged at LITE_ERROR. */
LITE_API int LITE_set_log_level(LiteLogLevel level);
LITE_API int LITE_get_log_level(LiteLogLevel* level);

/*! megcc extension: the platform hooks (alloc/free/log/time) used by networks made after
 * this call; required when the runtime is built with MEGCC_NO_LIBC_HOOKS. The struct is
 * copied. Process-wide configuration: set before other threads use the layer. Declared in
 * megcc/megcc.h. */
struct megcc_hooks;
LITE_API int LITE_megcc_set_hooks(const struct megcc_hooks* hooks);

#ifdef __cplusplus
}
#endif
#endif
