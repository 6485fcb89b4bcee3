/* megcc_model_load_from_path: read a file through stdio into a hook-allocated, 64-byte
 * aligned buffer that the model then owns. Separate file so bare-metal builds
 * (MEGCC_NO_LIBC_HOOKS) link no stdio. */
#include "internal.h"

#ifdef MEGCC_NO_LIBC_HOOKS

megcc_status megcc_model_load_from_path_ex(const char *path, const megcc_hooks *hooks,
                                           megcc_model **out) {
    (void)path;
    (void)hooks;
    if (out) *out = NULL;
    return mgc_fail_global(MEGCC_ERR_UNSUPPORTED, "built without stdio (MEGCC_NO_LIBC_HOOKS)");
}

#else

#include <stdio.h>

megcc_status megcc_model_load_from_path_ex(const char *path, const megcc_hooks *hooks,
                                           megcc_model **out) {
    FILE *f;
    long len;
    void *buf;
    size_t got;
    megcc_status st;
    if (!out) return mgc_fail_global(MEGCC_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!path) return mgc_fail_global(MEGCC_ERR_INVALID_ARG, "path is NULL");
    if (!hooks || !hooks->alloc || !hooks->free)
        return mgc_fail_global(MEGCC_ERR_INVALID_ARG, "hooks need alloc and free");
    f = fopen(path, "rb");
    if (!f) return mgc_fail_global(MEGCC_ERR_IO, "cannot open '%s'", path);
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return mgc_fail_global(MEGCC_ERR_IO, "cannot determine the size of '%s'", path);
    }
    if ((unsigned long)len > 0xFFFFFFFFul) {
        fclose(f);
        return mgc_fail_global(MEGCC_ERR_BAD_SIZE, "'%s' is larger than 4 GiB", path);
    }
    buf = mgc_alloc(hooks, (size_t)len, MEGCC_ARENA_ALIGN);
    if (!buf) {
        fclose(f);
        return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory reading '%s'", path);
    }
    got = len ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    if (got != (size_t)len) {
        mgc_free(hooks, buf);
        return mgc_fail_global(MEGCC_ERR_IO, "short read on '%s'", path);
    }
    st = mgc_load_owned(buf, (size_t)len, hooks, out);
    if (st) mgc_free(hooks, buf);
    return st;
}

#endif

megcc_status megcc_model_load_from_path(const char *path, megcc_model **out) {
    megcc_hooks hooks;
    if (megcc_default_hooks(&hooks) != MEGCC_OK) {
        if (out) *out = NULL;
        return mgc_fail_global(MEGCC_ERR_UNSUPPORTED,
                               "no default hooks (MEGCC_NO_LIBC_HOOKS): use the _ex variant");
    }
    return megcc_model_load_from_path_ex(path, &hooks, out);
}
