/* MegCC's platform callbacks (tinynn_callback.h), so MegCC applications that register
 * their libc-like functions build unchanged against the megcc runtime.
 *
 * register_tinynn_cb installs the callbacks as the Lite-C layer's hooks
 * (LITE_megcc_set_hooks): memory through tinynn_malloc_cb/tinynn_free_cb (blocks are
 * over-allocated and aligned here, since malloc-like functions give no alignment), log
 * messages through tinynn_log_cb, time through tinynn_gettime_cb. The file callbacks are
 * accepted and not used: models are read with LITE_load_model_from_mem on boards without
 * stdio. Register before making networks; a version other than TINYNN_CB_VERSION or a NULL
 * tinynn_log_cb/tinynn_malloc_cb/tinynn_free_cb is refused (logged when possible). */
#ifndef TINYNN_CALLBACK_H_
#define TINYNN_CALLBACK_H_

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TINYNN_CB_VERSION 0x18

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int (*tinynn_log_cb)(const char* format, ...);
    void* (*tinynn_malloc_cb)(size_t size);
    void (*tinynn_free_cb)(void*);
    /* seconds and microseconds */
    void (*tinynn_gettime_cb)(int32_t* sec, int32_t* usec);
    FILE* (*tinynn_fopen_cb)(const char* pathname, const char* mode);
    long (*tinynn_ftell_cb)(FILE* stream);
    int (*tinynn_fseek_cb)(FILE* stream, long offset, int whence);
    int (*tinynn_fclose_cb)(FILE* stream);
    size_t (*tinynn_fwrite_cb)(const void* ptr, size_t size, size_t nmemb, FILE* stream);
    size_t (*tinynn_fread_cb)(void* ptr, size_t size, size_t nmemb, FILE* stream);
} TinyNnCallBack;

void register_tinynn_cb(int cb_version, const TinyNnCallBack cb);

#ifdef __cplusplus
}
#endif
#endif
