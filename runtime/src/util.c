/* Small helpers so the core runtime needs nothing from libc but memcpy/memset. */
#include <string.h>

#include "internal.h"

/* The message of the last failed call that had no object to keep it in (load, create),
 * one per thread (MEGCC_THREAD_LOCAL, internal.h). Documented in megcc.h. */
static MEGCC_THREAD_LOCAL char g_last_error[MGC_ERROR_LEN];

const char *megcc_last_error(void) { return g_last_error; }

size_t mgc_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

int mgc_streq(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return *a == *b;
}

static void put(char *buf, size_t cap, size_t *n, char c) {
    if (*n + 1 < cap) buf[*n] = c;
    (*n)++;
}

static void put_uint(char *buf, size_t cap, size_t *n, uint64_t v, unsigned base) {
    char tmp[24];
    int k = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[k++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (k) put(buf, cap, n, tmp[--k]);
}

void mgc_vformat(char *buf, size_t cap, const char *fmt, va_list ap) {
    size_t n = 0;
    if (!cap) return;
    for (; *fmt; fmt++) {
        if (*fmt != '%') { put(buf, cap, &n, *fmt); continue; }
        switch (*++fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            while (*s && n + 1 < cap) put(buf, cap, &n, *s++); /* a name may be huge */
            break;
        }
        case 'u': put_uint(buf, cap, &n, va_arg(ap, uint32_t), 10); break;
        case 'z': put_uint(buf, cap, &n, va_arg(ap, size_t), 10); break;
        case 'x': put_uint(buf, cap, &n, va_arg(ap, uint32_t), 16); break;
        case 'X': { /* uint64_t as 16 hex digits */
            uint64_t v = va_arg(ap, uint64_t);
            int sh;
            for (sh = 60; sh >= 0; sh -= 4) put(buf, cap, &n, "0123456789abcdef"[(v >> sh) & 15]);
            break;
        }
        case 'd': {
            int v = va_arg(ap, int);
            uint64_t mag = v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v;
            if (v < 0) put(buf, cap, &n, '-');
            put_uint(buf, cap, &n, mag, 10);
            break;
        }
        case '%': put(buf, cap, &n, '%'); break;
        case '\0': fmt--; break; /* lone '%' at the end */
        default: put(buf, cap, &n, '?'); break;
        }
    }
    buf[n < cap ? n : cap - 1] = '\0';
}

void mgc_format(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mgc_vformat(buf, cap, fmt, ap);
    va_end(ap);
}

megcc_status mgc_fail_global(megcc_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mgc_vformat(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return status;
}

void mgc_log(const megcc_hooks *h, int level, const char *msg) {
    if (h->log) h->log(h->user, level, msg);
}

/* C99 has no aligned allocation: over-allocate through a malloc-like function, align, and
 * keep its pointer in the word just below the block handed out (mgc_unaligned_free). */
void *mgc_aligned_from(void *(*raw_alloc)(size_t), size_t size, size_t align) {
    unsigned char *raw, *p;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (size > (size_t)-1 - align - sizeof(void *)) return NULL;
    raw = (unsigned char *)raw_alloc(size + align + sizeof(void *));
    if (!raw) return NULL;
    p = raw + sizeof(void *);
    p += (align - (size_t)((uintptr_t)p % align)) % align;
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    return p;
}

void mgc_unaligned_free(void (*raw_free)(void *), void *ptr) {
    void *raw;
    if (!ptr) return;
    memcpy(&raw, (unsigned char *)ptr - sizeof(void *), sizeof raw);
    raw_free(raw);
}

void *mgc_alloc(const megcc_hooks *h, size_t size, size_t align) {
    /* Never ask the hook for 0 bytes: malloc(0) may return NULL legitimately. */
    return h->alloc(h->user, size ? size : 1, align);
}

void mgc_free(const megcc_hooks *h, void *p) {
    if (p) h->free(h->user, p);
}

const char *megcc_status_string(megcc_status status) {
    switch (status) {
    case MEGCC_OK: return "ok";
    case MEGCC_ERR_INVALID_ARG: return "invalid argument";
    case MEGCC_ERR_NO_MEMORY: return "out of memory";
    case MEGCC_ERR_IO: return "I/O error";
    case MEGCC_ERR_BAD_MAGIC: return "not a megcc model";
    case MEGCC_ERR_BAD_VERSION: return "unsupported model format version";
    case MEGCC_ERR_BAD_SIZE: return "model size mismatch";
    case MEGCC_ERR_BAD_CRC: return "model checksum mismatch";
    case MEGCC_ERR_KERNEL_MISMATCH: return "model compiled for other kernels";
    case MEGCC_ERR_CORRUPT: return "corrupt model";
    case MEGCC_ERR_ALIGNMENT: return "misaligned buffer";
    case MEGCC_ERR_ARENA_TOO_SMALL: return "arena too small";
    case MEGCC_ERR_KERNEL_FAILED: return "kernel failed";
    case MEGCC_ERR_UNSUPPORTED: return "unsupported";
    case MEGCC_ERR_NOT_FOUND: return "not found";
    case MEGCC_ERR_NO_OUTPUT: return "output read before forward";
    }
    return "unknown status";
}

size_t megcc_dtype_size(megcc_dtype dtype) {
    switch (dtype) {
    case MEGCC_FLOAT32: case MEGCC_INT32: case MEGCC_QINT32: case MEGCC_UINT32: return 4;
    case MEGCC_FLOAT16: case MEGCC_INT16: case MEGCC_UINT16: case MEGCC_BFLOAT16: return 2;
    case MEGCC_INT8: case MEGCC_UINT8: case MEGCC_BOOL: case MEGCC_QINT8: case MEGCC_QUINT8:
    case MEGCC_FLOAT8E4M3FN: case MEGCC_FLOAT8E4M3FNUZ: case MEGCC_FLOAT8E5M2:
    case MEGCC_FLOAT8E5M2FNUZ: case MEGCC_FLOAT8E8M0: case MEGCC_FLOAT4E2M1: case MEGCC_INT4:
    case MEGCC_UINT4: case MEGCC_INT2: case MEGCC_UINT2:
        return 1;
    case MEGCC_INT64: case MEGCC_FLOAT64: case MEGCC_UINT64: return 8;
    }
    return 0;
}

void mgc_info_from_record(const megcc_model *m, const uint8_t *rec, megcc_tensor_info *info) {
    uint32_t i, bits;
    memset(info, 0, sizeof *info);
    info->name = (const char *)(m->strings + mgc_rd32(rec));
    info->dtype = (megcc_dtype)rec[4];
    info->ndim = rec[5];
    info->layout = rec[7];
    for (i = 0; i < info->ndim; i++) info->dims[i] = (int32_t)mgc_rd32(rec + 8 + 4 * i);
    info->nbytes = mgc_t_nbytes(rec);
    bits = mgc_rd32(rec + 52);
    memcpy(&info->scale, &bits, sizeof info->scale); /* f32 bit pattern; host is LE */
    info->zero_point = (int32_t)mgc_rd32(rec + 56);
}
