/* Shared between the runtime's source files; not installed. */
#ifndef MEGCC_INTERNAL_H
#define MEGCC_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "megcc/kernel_abi.h"
#include "megcc/megcc.h"

#define MGC_HEADER_SIZE 64u
#define MGC_PLAN_SIZE 48u
#define MGC_TENSOR_SIZE 64u
#define MGC_INSTR_HEADER 16u
#define MGC_NONE 0xFFFFFFFFu
#define MGC_ERROR_LEN 256

enum { MGC_STORAGE_ARENA = 0, MGC_STORAGE_WEIGHT = 1, MGC_STORAGE_VIEW = 2 };

/* Storage class of the last-error buffers (one per thread; megcc.h "Errors and threads").
 * C11 _Thread_local, or the GNU/MSVC spelling under C99. Bare metal (MEGCC_NO_LIBC_HOOKS)
 * has no TLS runtime to rely on (and usually one thread): plain static storage there,
 * unless the build defines MEGCC_THREAD_LOCAL itself (e.g. to __thread). */
#ifndef MEGCC_THREAD_LOCAL
#if defined(MEGCC_NO_LIBC_HOOKS)
#define MEGCC_THREAD_LOCAL
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_THREADS__)
#define MEGCC_THREAD_LOCAL _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#define MEGCC_THREAD_LOCAL __thread
#elif defined(_MSC_VER)
#define MEGCC_THREAD_LOCAL __declspec(thread)
#else
#define MEGCC_THREAD_LOCAL
#endif
#endif

/* Little-endian reads that do not care about alignment: the loader reads an untrusted
 * buffer before knowing anything about it. */
static inline uint32_t mgc_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint16_t mgc_rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint64_t mgc_rd64(const uint8_t *p) {
    return (uint64_t)mgc_rd32(p) | ((uint64_t)mgc_rd32(p + 4) << 32);
}

/* One plan, after validation: pointers into the blob. */
typedef struct mgc_plan {
    const char *name;
    uint32_t arch;
    uint32_t arena_size;
    uint32_t n_tensors;
    const uint8_t *tensors;    /* n_tensors records of MGC_TENSOR_SIZE */
    uint32_t n_instrs;
    const uint8_t *instrs;     /* the validated instruction stream */
    uint32_t n_inputs, n_outputs;
    const uint8_t *inputs, *outputs; /* u32 tensor indices */
    uint32_t max_operands;     /* max n_in + n_out over the instructions */
    uint32_t n_control;        /* control-flow records (control.c) */
} mgc_plan;

struct megcc_model {
    megcc_hooks hooks;
    const uint8_t *data;       /* the blob (caller's, or `owned`) */
    size_t size;
    void *owned;               /* blob copy to free, or NULL */
    const char *name;
    const uint8_t *strings;    /* strings section (names are validated NUL-terminated) */
    const uint8_t *weights;
    uint32_t n_plans;
    mgc_plan *plans;           /* hook-allocated */
    uint32_t max_tensors, max_inputs, max_outputs, max_operands;
    uint32_t max_arena;
};

/* Tensor record field access (record validated at load). */
static inline uint32_t mgc_t_storage(const uint8_t *rec) { return rec[6]; }
static inline uint32_t mgc_t_offset(const uint8_t *rec) { return mgc_rd32(rec + 40); }
static inline uint32_t mgc_t_nbytes(const uint8_t *rec) { return mgc_rd32(rec + 44); }
static inline uint32_t mgc_t_base(const uint8_t *rec) { return mgc_rd32(rec + 48); }
static inline const uint8_t *mgc_tensor(const mgc_plan *p, uint32_t i) {
    return p->tensors + (size_t)i * MGC_TENSOR_SIZE;
}

/* Control flow (control.c): built-in instructions at reserved kernel indices. */
#define MGC_CTL_JUMP 0xFFFFFF00u
#define MGC_CTL_BRANCH_IF_ZERO 0xFFFFFF01u
static inline int mgc_is_control(uint32_t kernel) {
    return kernel == MGC_CTL_JUMP || kernel == MGC_CTL_BRANCH_IF_ZERO;
}
megcc_status mgc_check_control(const mgc_plan *p, uint32_t pi, uint32_t ii, const uint8_t *ins);
megcc_status mgc_check_jumps(const mgc_plan *p, uint32_t pi, const megcc_hooks *h);
int mgc_control_taken(uint32_t kernel, const uint8_t *operands, void *const *ptr);

/* Helpers (util.c). No libc beyond memcpy/memset. */
size_t mgc_strlen(const char *s);
int mgc_streq(const char *a, const char *b);
/* Tiny snprintf: %s, %u (uint32_t), %d (int), %z (size_t), %x (uint32_t, hex),
 * %X (uint64_t, 16 hex digits), %%.
 * Pass exactly these types: the args are read with va_arg. */
void mgc_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
void mgc_format(char *buf, size_t cap, const char *fmt, ...);
/* Write this thread's last-error buffer; returns `status` for tail calls. */
megcc_status mgc_fail_global(megcc_status status, const char *fmt, ...);
void mgc_log(const megcc_hooks *h, int level, const char *msg);
void *mgc_alloc(const megcc_hooks *h, size_t size, size_t align);
void mgc_free(const megcc_hooks *h, void *p);
void mgc_info_from_record(const megcc_model *m, const uint8_t *rec, megcc_tensor_info *info);

/* Validate a hook-allocated blob; on success the model owns (and later frees) `buf`. */
megcc_status mgc_load_owned(void *buf, size_t size, const megcc_hooks *hooks,
                            megcc_model **out);

uint32_t mgc_crc32(const uint8_t *data, size_t n);

/* The default thread pool of a network (threads.c): threads - 1 workers. Create reports
 * MEGCC_ERR_UNSUPPORTED in builds without one (bare metal, MEGCC_NO_THREADS). */
typedef struct mgc_pool mgc_pool;
megcc_status mgc_pool_create(const megcc_hooks *hooks, uint32_t threads, mgc_pool **out);
void mgc_pool_destroy(mgc_pool *pool);
const megcc_parallel *mgc_pool_parallel(const mgc_pool *pool);

#endif
