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

/*! Message of the last failed LITE_* call (process-wide, not thread-safe, as in Lite). */
LITE_API const char* LITE_get_last_error(void);

/*! Log level of the Lite layer (process-wide). Errors are logged at LITE_ERROR. */
LITE_API int LITE_set_log_level(LiteLogLevel level);
LITE_API int LITE_get_log_level(LiteLogLevel* level);

/*! megcc extension: the platform hooks (alloc/free/log/time) used by networks made after
 * this call; required when the runtime is built with MEGCC_NO_LIBC_HOOKS. The struct is
 * copied. Declared in megcc/megcc.h. */
struct megcc_hooks;
LITE_API int LITE_megcc_set_hooks(const struct megcc_hooks* hooks);

#ifdef __cplusplus
}
#endif
#endif
