/* MegCC runtime entry points that MegCC applications call besides Lite-C:
 * register_tinynn_cb (tinynn_callback.h) and the extern-operator loader API
 * (extern_c_opr.h). See the headers for what each does on this runtime. */
#include "extern_c_opr.h"
#include "lite_c_internal.h"
#include "tinynn_callback.h"

static TinyNnCallBack g_tinynn;

/* malloc-like callbacks give no alignment: util.c's aligned wrapper around them */
static void *tinynn_alloc(void *user, size_t size, size_t align) {
    (void)user;
    return mgc_aligned_from(g_tinynn.tinynn_malloc_cb, size, align);
}

static void tinynn_free(void *user, void *ptr) {
    (void)user;
    mgc_unaligned_free(g_tinynn.tinynn_free_cb, ptr);
}

static void tinynn_log(void *user, int level, const char *message) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    (void)user;
    g_tinynn.tinynn_log_cb("megcc %s: %s\n", (level >= 0 && level <= 3) ? names[level] : "log",
                           message);
}

static uint64_t tinynn_time_ns(void *user) {
    int32_t sec = 0, usec = 0;
    (void)user;
    g_tinynn.tinynn_gettime_cb(&sec, &usec);
    return (uint64_t)(uint32_t)sec * 1000000000u + (uint64_t)(uint32_t)usec * 1000u;
}

void register_tinynn_cb(int cb_version, const TinyNnCallBack cb) {
    megcc_hooks h;
    if (cb_version != TINYNN_CB_VERSION || !cb.tinynn_log_cb || !cb.tinynn_malloc_cb ||
        !cb.tinynn_free_cb) {
        if (cb.tinynn_log_cb)
            cb.tinynn_log_cb("megcc error: register_tinynn_cb: callbacks refused (version 0x%x, "
                             "this runtime has 0x%x; log, malloc and free are required)\n",
                             (unsigned)cb_version, (unsigned)TINYNN_CB_VERSION);
        return;
    }
    g_tinynn = cb;
    h.user = NULL;
    h.alloc = tinynn_alloc;
    h.free = tinynn_free;
    h.log = tinynn_log;
    h.time_ns = cb.tinynn_gettime_cb ? tinynn_time_ns : NULL;
    LITE_megcc_set_hooks(&h);
}

static int refuse_loader(const MGBOprLoader *loader) {
    lite_unsupported("extern C operator loaders",
                     "every operator of a compiled model is generated at build time");
    (void)loader;
    return 0;
}

static int no_loader(const char *name) {
    (void)name;
    return 0;
}

static const MGBExternCOprApi g_extern_api = {refuse_loader, no_loader};

const MGBExternCOprApi *mgb_get_extern_c_opr_api_versioned(int version) {
    return version == MGB_EXTERN_C_OPR_VERSION ? &g_extern_api : NULL;
}
